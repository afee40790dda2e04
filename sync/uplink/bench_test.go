package uplink_test

import (
	"testing"
	"time"

	"github.com/edgesync/edgesync/sync/uplink"
)

// BenchmarkDrain measures draining a backlog of 1 KB records from an outbox into central over a
// real loopback link: one b.N is one record.
func BenchmarkDrain(b *testing.B) {
	for _, transport := range []string{uplink.TransportQUIC, uplink.TransportTCP} {
		b.Run(transport, func(b *testing.B) {
			f := newFixture(b)
			reg := newMemRegistry()
			c := startCentral(b, f.central.ServerTLS(), reg)
			ob := newMemOutbox(b.N, recordSize)
			cfg := testConfig(transport, c.addr(transport))
			cfg.TLS = f.relay.ClientTLS()
			cfg.Logger = testLogger(b)
			cfg.BatchRecords, cfg.BatchBytes = 256, 256*recordSize+4096
			u := mustNew(b, cfg, ob)
			b.SetBytes(recordSize)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			stop := runUplink(b, u)
			reg.waitCursor(b, uint64(b.N), 5*time.Minute)
			elapsed := time.Since(start)
			b.StopTimer()
			stop()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(b.N)*recordSize/elapsed.Seconds()/1e6, "MB/s")
			st := u.Status()
			b.ReportMetric(float64(st.BytesSent)/float64(b.N*recordSize), "wire/raw")
		})
	}
}
