//go:build !windows

package bench

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/test/procnet"
)

var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "edgesync-bench-bin-")
	if err != nil {
		panic(err)
	}
	if binPath, err = procnet.Build(dir); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

var (
	benchAgents  = envInt("BENCH_AGENTS", 200)
	benchRecords = envInt("BENCH_RECORDS", 100000)
	recordBytes  = 1024
	batchRecords = 50
)

type site struct {
	central *procnet.Proc
	relays  []*procnet.Proc
	token   string
	urls    []string
}

// startSite starts a central node and a 3-node site as processes.
func startSite(b *testing.B, net *procnet.Net, name, transport string, startCentral bool) *site {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := net.Central(name+"-c1", true, "")
	if err != nil {
		b.Fatal(err)
	}
	s := &site{central: c}
	if startCentral {
		if err := c.Start(); err != nil {
			b.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		join := ""
		if i > 0 {
			join = s.relays[0].URL
		}
		r, err := net.Relay(name, fmt.Sprintf("%s-r%d", name, i+1), []string{c.SyncAddr(transport)}, transport, i == 0, join)
		if err != nil {
			b.Fatal(err)
		}
		if err := r.Start(); err != nil {
			b.Fatal(err)
		}
		s.relays = append(s.relays, r)
		s.urls = append(s.urls, r.URL)
		if i == 0 {
			if s.token, err = r.JoinToken(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Cleanup(func() {
		for _, r := range s.relays {
			r.Stop()
		}
		c.Stop()
	})
	err = procnet.Wait(ctx, func() error {
		var st procnet.RelayStatus
		if err := s.relays[0].Get(ctx, "/api/v1/cluster", &st); err != nil {
			return err
		}
		if len(st.Raft.Members) != 3 {
			return fmt.Errorf("%d members", len(st.Raft.Members))
		}
		for _, r := range s.relays {
			if err := r.Get(ctx, "/api/v1/cluster", &st); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatalf("site %s did not form: %v", name, err)
	}
	return s
}

func (s *site) leaderStatus(ctx context.Context) (procnet.RelayStatus, error) {
	var st procnet.RelayStatus
	for _, r := range s.relays {
		if err := r.Get(ctx, "/api/v1/cluster", &st); err == nil && st.Raft.State == "Leader" {
			return st, nil
		}
	}
	return st, fmt.Errorf("no leader")
}

// sampleRSS polls the relays' anonymous and file-backed RSS until the
// returned func is called, which gives the peaks seen on any one node.
func sampleRSS(relays []*procnet.Proc) func() (anon, file uint64) {
	stop := make(chan struct{})
	done := make(chan [2]uint64)
	go func() {
		var peak [2]uint64
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			for _, r := range relays {
				if a, f, err := r.RSS(); err == nil {
					peak[0], peak[1] = max(peak[0], a), max(peak[1], f)
				}
			}
			select {
			case <-stop:
				done <- peak
				return
			case <-t.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(stop)
		p := <-done
		return p[0], p[1]
	}
}

// cpuOf sums the CPU time of processes.
func cpuOf(ps []*procnet.Proc) time.Duration {
	var sum time.Duration
	for _, p := range ps {
		c, _ := p.CPU()
		sum += c
	}
	return sum
}

// selfCPU is this process's CPU time: the simulated agents' share.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// profileRelays takes a CPU profile of each relay process over the next
// BENCH_PROFILE_SECONDS (default 5) into BENCH_PROFILE_DIR/name-node.pprof,
// through the relay's admin /debug/pprof/profile; without BENCH_PROFILE_DIR
// it does nothing. The returned func waits for the profiles.
func profileRelays(b *testing.B, relays []*procnet.Proc, name string) func() {
	dir := os.Getenv("BENCH_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	secs := envInt("BENCH_PROFILE_SECONDS", 5)
	var wg sync.WaitGroup
	for _, r := range relays {
		wg.Go(func() {
			body, err := r.Fetch(context.Background(), fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs))
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, name+"-"+r.Name+".pprof"), body, 0o644)
			}
			if err != nil {
				b.Logf("profile %s: %v", r.Name, err)
			}
		})
	}
	return wg.Wait
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// BenchmarkIngest compares records/s acknowledged by a 3-node relay site
// (1 KiB records, fsync on, committed on a majority) with a single Badger
// DB doing the same writes with SyncWrites on and no replication.
func BenchmarkIngest(b *testing.B) {
	reports := benchRecords / benchAgents
	total := benchAgents * reports
	b.Run("site-3node", func(b *testing.B) {
		for range b.N {
			net, err := procnet.New(binPath, b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			s := startSite(b, net, "bench", "quic", true)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			stopSampling := sampleRSS(s.relays)
			cpu0 := cpuOf(s.relays)
			self0 := selfCPU()
			waitProfiles := profileRelays(b, s.relays, "ingest")
			defer waitProfiles()
			b.ResetTimer()
			res, err := agent.Simulate(ctx, agent.SimConfig{Relays: s.urls, JoinToken: s.token, Agents: benchAgents, Reports: reports,
				RecordBytes: recordBytes, BatchSize: batchRecords, Logger: quiet()})
			b.StopTimer()
			anon, file := stopSampling()
			b.ReportMetric((cpuOf(s.relays)-cpu0).Seconds()*1e6/float64(total), "relay-CPU-µs/record")
			b.ReportMetric((selfCPU()-self0).Seconds()*1e6/float64(total), "loadgen-CPU-µs/record")
			b.ReportMetric(float64(anon)/(1<<20), "relay-peak-anon-MB")
			b.ReportMetric(float64(file)/(1<<20), "relay-peak-file-MB")
			if err != nil {
				b.Fatalf("simulate: %v", err)
			}
			if int(res.Acked) != total {
				b.Fatalf("acked %d of %d", res.Acked, total)
			}
			b.ReportMetric(res.RecordsPerSec, "records/s")
			var peak uint64
			for _, r := range s.relays {
				rss, err := r.PeakRSS()
				if err != nil {
					b.Fatal(err)
				}
				peak = max(peak, rss)
			}
			b.ReportMetric(float64(peak)/(1<<20), "relay-peak-RSS-MB")
		}
	})
	b.Run("badger-1node-baseline", func(b *testing.B) {
		for range b.N {
			opts := badger.DefaultOptions(b.TempDir()).WithSyncWrites(true).WithLogger(nil)
			db, err := badger.Open(opts)
			if err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, recordBytes)
			rand.Read(payload)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for a := range benchAgents {
				wg.Go(func() {
					for first := 0; first < reports; first += batchRecords {
						err := db.Update(func(txn *badger.Txn) error {
							for s := first; s < min(first+batchRecords, reports); s++ {
								k := binary.BigEndian.AppendUint64([]byte(fmt.Sprintf("o/%04d/", a)), uint64(s))
								if err := txn.Set(k, payload); err != nil {
									return err
								}
							}
							return nil
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			el := time.Since(start)
			b.StopTimer()
			db.Close()
			b.ReportMetric(float64(total)/el.Seconds(), "records/s")
		}
	})
}

// BenchmarkUplinkDrain fills a site's outbox with central down, then starts
// central and measures how fast the backlog drains, over QUIC and, in the
// same run, over TCP+TLS.
func BenchmarkUplinkDrain(b *testing.B) {
	reports := benchRecords / benchAgents
	total := uint64(benchAgents * reports)
	for _, transport := range []string{"quic", "tcp"} {
		b.Run(transport, func(b *testing.B) {
			for range b.N {
				net, err := procnet.New(binPath, b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				s := startSite(b, net, "drain", transport, false)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				res, err := agent.Simulate(ctx, agent.SimConfig{Relays: s.urls, JoinToken: s.token, Agents: benchAgents, Reports: reports,
					RecordBytes: recordBytes, BatchSize: batchRecords, Logger: quiet()})
				if err != nil || res.Acked != total {
					b.Fatalf("fill outbox: acked %d, %v", res.Acked, err)
				}
				waitProfiles := profileRelays(b, s.relays, "drain-"+transport)
				defer waitProfiles()
				b.ResetTimer()
				start := time.Now()
				if err := s.central.Start(); err != nil {
					b.Fatal(err)
				}
				err = procnet.Wait(ctx, func() error {
					st, err := s.leaderStatus(ctx)
					if err != nil {
						return err
					}
					if st.Outbox.Depth != 0 {
						return fmt.Errorf("depth %d", st.Outbox.Depth)
					}
					return nil
				})
				el := time.Since(start)
				b.StopTimer()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(total)/el.Seconds(), "records/s")
				b.ReportMetric(float64(total)*float64(recordBytes)/el.Seconds()/(1<<20), "MiB/s")
			}
		})
	}
}
