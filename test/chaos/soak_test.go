//go:build !windows

package chaos

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/faultnet"
)

// sample is one node's figures at one moment of a soak run.
type sample struct {
	At         float64 `json:"at_min"` // minutes since the load started
	Node       string  `json:"node"`
	RSSAnon    uint64  `json:"rss_anon_bytes"` // what the kernel cannot reclaim
	RSSFile    uint64  `json:"rss_file_bytes"` // Badger's mmapped tables and logs
	Goroutines float64 `json:"goroutines"`
	OpenFiles  int     `json:"open_files"`
	TableFiles int     `json:"badger_files"` // .sst, .vlog and .mem: Badger holds one fd per file
	LSMBytes   uint64  `json:"lsm_bytes"`    // .sst files of every Badger under the data dir
	VlogBytes  uint64  `json:"vlog_bytes"`   // .vlog files, allocated blocks
	Outbox     uint64  `json:"outbox_depth"`
	Acked      uint64  `json:"acked"` // records acknowledged to agents since the start
}

// SoakReport is what TestSoak writes to SOAK_REPORT.
type SoakReport struct {
	Seed     uint64         `json:"seed"`
	Duration string         `json:"duration"`
	Interval string         `json:"interval"`
	Faults   map[string]int `json:"faults"`
	Acked    uint64         `json:"records_acked"`
	Lost     int            `json:"lost"`
	Dup      int            `json:"duplicated"`
	Growth   []growth       `json:"growth"`
	Samples  []sample       `json:"samples"`
	Timeline []string       `json:"timeline"`
}

// TestSoak runs the chaos deployment for SOAK_DURATION under steady agent
// load with one fault every SOAK_FAULT_EVERY, samples every node every
// SOAK_INTERVAL, and fails when a figure grows without bound (see bounded)
// or an acknowledged record is lost. `make soak SOAK_DURATION=1h`.
func TestSoak(t *testing.T) {
	if os.Getenv("SOAK_DURATION") == "" {
		t.Skip("set SOAK_DURATION to run the soak (make soak SOAK_DURATION=1h)")
	}
	dur := envDuration(t, "SOAK_DURATION", time.Hour)
	interval := envDuration(t, "SOAK_INTERVAL", time.Minute)
	faultEvery := envDuration(t, "SOAK_FAULT_EVERY", 5*time.Minute)
	seed := envSeed(t, "SOAK_SEED", 1)
	t.Logf("soak seed %d for %s, a sample every %s, a fault every %s", seed, dur, interval, faultEvery)

	ctx, cancel := context.WithTimeout(context.Background(), dur+30*time.Minute)
	defer cancel()
	// Steady, not saturating: 40 devices, 5 records a second or so each.
	ld := &load{devices: 40, batch: 5, pause: time.Second}
	r := begin(ctx, t, seed, ld)
	d := r.d
	flog := newFaultLog()
	start := time.Now()

	runCtx, runCancel := context.WithTimeout(ctx, dur)
	defer runCancel()
	var wg sync.WaitGroup
	var samples []sample
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			samples = append(samples, d.sampleAll(time.Since(start), ld.acked.Load())...)
			select {
			case <-runCtx.Done():
				return
			case <-tick.C:
			}
		}
	})
	s := &scheduler{d: d, log: flog}
	var faultErr error
	wg.Go(func() { faultErr = s.softLane(runCtx, rand.New(rand.NewPCG(seed, 3)), faultEvery) })
	wg.Wait()
	if faultErr != nil {
		t.Errorf("fault schedule: %v", faultErr)
	}

	d.healAll()
	r.stop()
	if err := d.waitDrained(10 * time.Minute); err != nil {
		t.Errorf("drain: %v", err)
	}
	rep := SoakReport{Seed: seed, Duration: dur.String(), Interval: interval.String(), Faults: flog.counts,
		Acked: ld.acked.Load(), Samples: samples, Timeline: flog.timeline}
	var err error
	if rep.Lost, rep.Dup, _, err = d.checkRecords(ld.snapshot()); err != nil {
		t.Errorf("check records: %v", err)
	}
	if rep.Lost != 0 || rep.Dup != 0 {
		t.Errorf("%d acknowledged records lost, %d duplicated", rep.Lost, rep.Dup)
	}
	rep.Growth = analyse(samples, relayOrCentral)
	for _, g := range rep.Growth {
		if !g.Bounded {
			t.Errorf("%s %s grows without bound: %s", g.Node, g.Metric, g.Why)
		}
	}

	out, _ := json.MarshalIndent(rep, "", "  ")
	if p := os.Getenv("SOAK_REPORT"); p != "" {
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	if p := os.Getenv("SOAK_PLOT"); p != "" {
		if err := plotSamples(p, samples, rep.Growth); err != nil {
			t.Errorf("plot: %v", err)
		}
	}
	t.Logf("faults:\n  %s", strings.Join(flog.timeline, "\n  "))
	for _, g := range rep.Growth {
		t.Logf("%-4s %-12s median %12.0f  slope %+12.1f/h  bounded=%v %s", g.Node, g.Metric, g.Median, g.SlopePerHour, g.Bounded, g.Why)
	}
	t.Logf("SOAK seed %d %s: acked %d, lost %d, duplicated %d, %d samples", seed, dur, rep.Acked, rep.Lost, rep.Dup, len(samples))
}

func relayOrCentral(node string) bool { return strings.HasPrefix(node, "c") }

// softLane injects one fault every period, the kinds a site sees in a
// month (a node restarted, a leader stalled, a link cut, a bad WAN), each
// healed with both groups led again before the next.
func (s *scheduler) softLane(ctx context.Context, rng *rand.Rand, period time.Duration) error {
	for i := 0; sleepCtx(ctx, period); i++ {
		var err error
		switch i % 5 {
		case 0:
			err = s.kill(rng, s.d.relays, "relay")
		case 1:
			err = s.pause(rng, s.d.centrals, "central")
		case 2:
			err = s.partition(rng)
		case 3:
			err = s.kill(rng, s.d.centrals, "central")
		case 4:
			f := faultnet.UDPFaults{Drop: 0.1, Delay: 80 * time.Millisecond, Jitter: 20 * time.Millisecond}
			s.log.add("wan-degraded", "drop 10%% delay 80ms±20ms for 30s")
			for _, w := range s.d.wan {
				w.SetFaults(f)
			}
			sleepCtx(ctx, 30*time.Second)
			for _, w := range s.d.wan {
				w.SetFaults(faultnet.UDPFaults{})
			}
		}
		if err != nil {
			return err
		}
		if err := s.recovered(); err != nil {
			return err
		}
	}
	return nil
}

// sampleAll samples every node that is running now.
func (d *deployment) sampleAll(since time.Duration, acked uint64) []sample {
	var out []sample
	for _, n := range d.all() {
		if sm, err := d.sample(n); err == nil {
			sm.At, sm.Acked = since.Minutes(), acked
			out = append(out, sm)
		} else {
			d.t.Logf("sample %s at %s: %v", n.Name, since.Round(time.Second), err)
		}
	}
	return out
}

func (d *deployment) sample(n *node) (sample, error) {
	sm := sample{Node: n.Name}
	st, err := d.status(n) // also refuses a node that is down or stopped
	if err != nil {
		return sm, err
	}
	sm.Outbox = st.Outbox.Depth
	if sm.RSSAnon, sm.RSSFile, err = n.RSS(); err != nil {
		return sm, err
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", n.Pid()))
	if err != nil {
		return sm, err
	}
	sm.OpenFiles = len(fds)
	ctx, cancel := context.WithTimeout(d.ctx, 10*time.Second)
	defer cancel()
	body, err := n.Fetch(ctx, "/metrics")
	if err != nil {
		return sm, err
	}
	if sm.Goroutines, err = metricValue(body, "go_goroutines"); err != nil {
		return sm, err
	}
	sm.LSMBytes, sm.VlogBytes, sm.TableFiles, err = badgerBytes(n.Data)
	return sm, err
}

// metricValue reads an unlabelled gauge from Prometheus text format.
func metricValue(body []byte, name string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// badgerBytes sums the allocated size of the LSM tables and value logs of
// every Badger under dir (state and raft). Allocated blocks, not length:
// Badger preallocates its value-log files sparsely.
func badgerBytes(dir string) (lsm, vlog uint64, files int, err error) {
	err = filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // compaction removed it under the walk
			}
			return err
		}
		ext := filepath.Ext(p)
		if !e.IsDir() && ext == ".mem" {
			files++
		}
		if e.IsDir() || (ext != ".sst" && ext != ".vlog") {
			return nil
		}
		files++
		fi, err := e.Info()
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		size := uint64(fi.Size())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			size = uint64(st.Blocks) * 512
		}
		if ext == ".sst" {
			lsm += size
		} else {
			vlog += size
		}
		return nil
	})
	return lsm, vlog, files, err
}
