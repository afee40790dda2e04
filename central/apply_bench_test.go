package central

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/pki"
)

// BenchmarkCentralApply measures central applying agent records: a 1-node
// central (real Raft, fsync on, real Badger state DB) takes runs of 1024
// records of 1 KiB from one site, as the uplink sends them, and in the same
// run a Badger-only baseline writes the same bytes under the same keys with
// SyncWrites on in transactions of the same size. Run:
//
//	go test -run '^$' -bench BenchmarkCentralApply -benchtime 1x ./central/
//
// BENCH_CENTRAL_RECORDS (default 100000) sets the record count.
func BenchmarkCentralApply(b *testing.B) {
	total := 100000
	if v, err := strconv.Atoi(os.Getenv("BENCH_CENTRAL_RECORDS")); err == nil && v > 0 {
		total = v
	}
	const perRun, devices = 1024, 2000 // perRun: the uplink's default batch (sync/uplink DefaultConfig)
	recs := benchRecords(total, devices)
	b.Run("raft-1node", func(b *testing.B) {
		for range b.N {
			n := benchCentral(b)
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for first := 0; first < total; first += perRun {
				end := min(first+perRun, total)
				c, err := (*registry)(n).Accept(ctx, "bench", "bench-r1", uint64(first+1), recs[first:end])
				if err != nil {
					b.Fatal(err)
				}
				if c != uint64(end) {
					b.Fatalf("cursor %d after %d records", c, end)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(total)/el.Seconds(), "records/s")
		}
	})
	b.Run("badger-baseline", func(b *testing.B) {
		for range b.N {
			db, err := badger.Open(badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil))
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			start := time.Now()
			for first := 0; first < total; first += perRun {
				err := db.Update(func(txn *badger.Txn) error {
					for i := first; i < min(first+perRun, total); i++ {
						k := binary.BigEndian.AppendUint64([]byte("r/"), uint64(i))
						if err := txn.Set(k, recs[i]); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			el := time.Since(start)
			b.StopTimer()
			db.Close()
			b.ReportMetric(float64(total)/el.Seconds(), "records/s")
		}
	})
}

// benchRecords makes total inventory records of about 1 KiB spread over
// devices devices, numbered per device from 1.
func benchRecords(total, devices int) [][]byte {
	pad := make([]byte, 600)
	rand.Read(pad)
	now := time.Now().UTC()
	seqs := make([]uint64, devices)
	out := make([][]byte, total)
	for i := range out {
		d := i % devices
		seqs[d]++
		inv := record.Inventory{Hostname: fmt.Sprintf("host-%06d", d), OS: record.OS{Name: "Debian GNU/Linux", Version: "12"},
			Hardware: record.Hardware{Serial: fmt.Sprintf("SN%08d", d), Interfaces: []record.Interface{{Name: "eth0", MAC: fmt.Sprintf("02:00:00:00:%02x:%02x", d>>8&0xff, d&0xff)}}},
			Software: []record.Software{{Name: "pad", Version: fmt.Sprintf("%x", pad)}}}
		p, _ := json.Marshal(inv)
		rec := record.Record{DeviceID: fmt.Sprintf("%032x", d+1), Seq: seqs[d], Kind: record.KindInventory, CollectedAt: now.Add(time.Duration(seqs[d]) * time.Second),
			Schema: record.SchemaVersion, Payload: p, ReceivedAt: now, Channel: record.ChannelOnline, SiteID: "bench", RelayNode: "bench-r1"}
		out[i], _ = json.Marshal(rec)
	}
	return out
}

// benchCentral starts a 1-node central leader in a temp dir.
func benchCentral(b *testing.B) *Node {
	b.Helper()
	dir := b.TempDir()
	if err := pki.Init(filepath.Join(dir, "pki")); err != nil {
		b.Fatal(err)
	}
	if _, _, err := pki.Issue(filepath.Join(dir, "pki"), pki.IssueRequest{Role: pki.RoleCentral, Name: "c1", Hosts: []string{"127.0.0.1"}}); err != nil {
		b.Fatal(err)
	}
	bundle, err := pki.Load(filepath.Join(dir, "pki"), "c1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.PKI, cfg.Bootstrap, cfg.AdminToken = "c1", filepath.Join(dir, "c1"), bundle, true, "bench-token"
	cfg.RaftAddr, cfg.HTTPAddr, cfg.SyncAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	if err := n.raft.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for n.adminHash() == "" {
		if time.Now().After(deadline) {
			b.Fatal("admin secret not applied")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}
