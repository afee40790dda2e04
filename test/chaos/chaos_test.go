//go:build !windows

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/faultnet"
	"github.com/edgesync/edgesync/internal/raftnode"
)

// Report is what a run prints and, with CHAOS_REPORT set, writes as JSON.
type Report struct {
	Seed          uint64                    `json:"seed"`
	Duration      string                    `json:"duration"`
	Faults        map[string]int            `json:"faults"`
	Acked         uint64                    `json:"records_acked"`
	SiteRecords   uint64                    `json:"site_records"`
	Sent          uint64                    `json:"record_sends"`
	AgentErrors   uint64                    `json:"agent_errors"`
	Lost          int                       `json:"lost"`
	Duplicated    int                       `json:"duplicated"`
	StaleCurrent  int                       `json:"stale_current_inventory"`
	Failover      map[string]failoverFigure `json:"failover"`
	DiskRefusals  int                       `json:"disk_faults_with_refusal"`
	UnexpectedExi map[string]int            `json:"unexpected_exits,omitempty"`
	Groups        map[string]groupCheck     `json:"raft_groups"`
	Terms         map[string]uint64         `json:"raft_terms_elapsed"` // elections (terms) during the run
	DrainTime     string                    `json:"drain_time"`
	Timeline      []string                  `json:"timeline"`
}

type failoverFigure struct {
	N   int    `json:"n"`
	P50 string `json:"p50"`
	P99 string `json:"p99"`
	Max string `json:"max"`
}

type groupCheck struct {
	LogFrom, LogTo uint64
	Applied        uint64
	StateKeys      int
	Agree          bool
}

func envDuration(t *testing.T, name string, def time.Duration) time.Duration {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return d
}

// envSeed reads a seed from the environment, def when unset.
func envSeed(t *testing.T, name string, def uint64) uint64 {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	seed, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return seed
}

// TestChaos is the fault-injection run; see the package doc.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos runs processes for a minute or more")
	}
	dur := envDuration(t, "CHAOS_DURATION", 60*time.Second)
	seed := envSeed(t, "CHAOS_SEED", rand.Uint64()%1_000_000)
	t.Logf("chaos seed %d, %s under faults (rerun: make chaos CHAOS_SEEDS=%d CHAOS_DURATION=%s)", seed, dur, seed, dur)

	ctx, cancel := context.WithTimeout(context.Background(), dur+25*time.Minute)
	defer cancel()
	ld := &load{devices: 40, batch: 5, pause: 400 * time.Millisecond}
	r := begin(ctx, t, seed, ld)
	d := r.d
	termsAtStart := map[string]uint64{"relay": d.term(d.relays), "central": d.term(d.centrals)}
	flog := newFaultLog()

	// Faults for dur, from two seeded lanes.
	faultCtx, faultCancel := context.WithTimeout(ctx, dur)
	s := &scheduler{d: d, log: flog}
	var lanes sync.WaitGroup
	var laneErr error
	lanes.Go(func() { laneErr = s.nodeLane(faultCtx, rand.New(rand.NewPCG(seed, 1))) })
	lanes.Go(func() { s.wanLane(faultCtx, rand.New(rand.NewPCG(seed, 2))) })
	lanes.Wait()
	faultCancel()
	if laneErr != nil {
		t.Errorf("fault schedule: %v", laneErr)
	}

	// Heal everything, then stop the load: what was acked is the oracle.
	d.healAll()
	r.stop()

	rep := Report{Seed: seed, Duration: dur.String(), Faults: flog.counts, Acked: ld.acked.Load(), Sent: ld.sent.Load(),
		AgentErrors: ld.errs.Load(), DiskRefusals: flog.diskSeen, Failover: map[string]failoverFigure{},
		UnexpectedExi: map[string]int{}, Groups: map[string]groupCheck{}, Timeline: flog.timeline}
	rep.Terms = map[string]uint64{"relay": d.term(d.relays) - termsAtStart["relay"], "central": d.term(d.centrals) - termsAtStart["central"]}
	for g, ds := range flog.failovers {
		rep.Failover[g] = failoverFigure{N: len(ds), P50: percentile(ds, 0.5).Round(time.Millisecond).String(),
			P99: percentile(ds, 0.99).Round(time.Millisecond).String(), Max: percentile(ds, 1).Round(time.Millisecond).String()}
	}
	for _, n := range d.all() {
		if n.exits > 0 {
			rep.UnexpectedExi[n.Name] = n.exits
		}
	}

	drainStart := time.Now()
	if err := d.waitDrained(10 * time.Minute); err != nil {
		t.Errorf("drain: %v", err)
	}
	rep.DrainTime = time.Since(drainStart).Round(time.Millisecond).String()
	// The site outbox holds each accepted record once: at least every acked
	// one, at most every distinct one sent (some sent were never acked).
	if l := d.leaderOf(d.relays); l != nil {
		if st, err := d.status(l); err == nil {
			var unique uint64
			for _, dl := range ld.snapshot() {
				unique += uint64(len(dl.collected))
			}
			rep.SiteRecords = st.Outbox.NextSeq - 1
			if rep.SiteRecords < rep.Acked || rep.SiteRecords > unique {
				t.Errorf("site outbox took %d records: acked %d, distinct sent %d (a record entered twice or an acked one is missing)", rep.SiteRecords, rep.Acked, unique)
			}
		}
	}
	for name, g := range map[string][]*node{"relay": d.relays, "central": d.centrals} {
		gc, err := d.checkGroup(g)
		rep.Groups[name] = gc
		if err != nil {
			t.Errorf("%s raft group: %v", name, err)
		}
	}
	var err error
	rep.Lost, rep.Duplicated, rep.StaleCurrent, err = d.checkRecords(ld.snapshot())
	if err != nil {
		t.Errorf("check records: %v", err)
	}

	out, _ := json.MarshalIndent(rep, "", "  ")
	if p := os.Getenv("CHAOS_REPORT"); p != "" {
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Errorf("write report: %v", err)
		}
	}
	t.Logf("faults injected:\n  %s", strings.Join(flog.timeline, "\n  "))
	t.Logf("chaos report:\n%s", out)
	t.Logf("SEED %d: acked %d, lost %d, duplicated %d, stale current inventory %d, failover relay p50 %s p99 %s, central p50 %s p99 %s",
		seed, rep.Acked, rep.Lost, rep.Duplicated, rep.StaleCurrent,
		rep.Failover["relay"].P50, rep.Failover["relay"].P99, rep.Failover["central"].P50, rep.Failover["central"].P99)
	if t.Failed() {
		d.keepData(seed)
	}
	if rep.Lost != 0 || rep.Duplicated != 0 || rep.StaleCurrent != 0 {
		t.Errorf("seed %d: %d acknowledged records lost, %d duplicated, %d devices with a stale current inventory", seed, rep.Lost, rep.Duplicated, rep.StaleCurrent)
	}
	if rep.Acked == 0 {
		t.Errorf("seed %d: no record was acknowledged under faults", seed)
	}
}

// running is a deployment under agent load with its supervisor, as TestChaos
// and TestSoak start it.
type running struct {
	d         *deployment
	joinToken string
	stopLoad  context.CancelFunc
	loadDone  chan error
	stopSup   context.CancelFunc
	sup       sync.WaitGroup
	t         *testing.T
}

// begin deploys the processes and their proxies, starts the supervisor and
// ld's agents against every relay node.
func begin(ctx context.Context, t *testing.T, seed uint64, ld *load) *running {
	var bg sync.WaitGroup
	bgCtx, bgCancel := context.WithCancel(ctx)
	// Stop the proxies last: the processes' t.Cleanup kills run after this
	// one is registered, so they run first.
	t.Cleanup(func() { bgCancel(); bg.Wait() })
	runProxy := func(run func(context.Context) error) {
		bg.Go(func() {
			if err := run(bgCtx); err != nil && bgCtx.Err() == nil {
				t.Errorf("proxy: %v", err)
			}
		})
	}
	r := &running{d: deploy(ctx, t, seed, runProxy), t: t, loadDone: make(chan error, 1)}
	var err error
	if r.joinToken, err = r.d.relays[0].JoinToken(ctx); err != nil {
		t.Fatal(err)
	}
	supCtx, supCancel := context.WithCancel(ctx)
	r.stopSup = supCancel
	r.sup.Go(func() { r.d.supervise(supCtx) })
	loadCtx, loadCancel := context.WithCancel(ctx)
	r.stopLoad = loadCancel
	var relayURLs []string
	for _, n := range r.d.relays {
		relayURLs = append(relayURLs, n.URL)
	}
	go func() { r.loadDone <- ld.run(loadCtx, seed, relayURLs, r.joinToken) }()
	return r
}

// stop ends the load (what was acked by then is the oracle) and the supervisor.
func (r *running) stop() {
	r.stopLoad()
	if err := <-r.loadDone; err != nil {
		r.t.Errorf("agents: %v", err)
	}
	r.stopSup()
	r.sup.Wait()
}

// healAll ends every fault: links, WAN, paused and killed processes, disk.
func (d *deployment) healAll() {
	for _, r := range d.relays {
		r.proxy.UnblockAll()
	}
	for _, w := range d.wan {
		w.SetFaults(faultnet.UDPFaults{})
	}
	for _, n := range d.all() {
		n.mu.Lock()
		stopped, down := n.stopped, n.down
		n.mu.Unlock()
		if stopped {
			n.mu.Lock()
			n.stopped = false
			n.mu.Unlock()
			_ = n.Signal(syscall.SIGCONT)
		}
		if down {
			d.restart(n)
		}
	}
	if d.diskDir != "" {
		_ = os.Remove(d.diskDir + "/chaos-ballast")
	}
	d.waitLeader(d.relays, 2*time.Minute)
	d.waitLeader(d.centrals, 2*time.Minute)
}

// waitDrained waits until the site outbox is empty and central holds every
// site seq the outbox ever had.
func (d *deployment) waitDrained(timeout time.Duration) error {
	return waitFor(d.ctx, timeout, func() error {
		l := d.leaderOf(d.relays)
		if l == nil {
			return errors.New("no site leader")
		}
		st, err := d.status(l)
		if err != nil {
			return err
		}
		var sites []central.SiteView
		ctx, cancel := context.WithTimeout(d.ctx, 5*time.Second)
		defer cancel()
		if err := d.centrals[0].Get(ctx, "/api/v1/sites", &sites); err != nil {
			return err
		}
		var atCentral uint64
		for _, s := range sites {
			if s.ID == site {
				atCentral = s.Records
			}
		}
		if st.Outbox.Depth != 0 || atCentral != st.Outbox.NextSeq-1 {
			return fmt.Errorf("outbox depth %d, central has %d of %d site records", st.Outbox.Depth, atCentral, st.Outbox.NextSeq-1)
		}
		return nil
	}, 250*time.Millisecond)
}

// checkGroup compares the members' raft logs over their common committed
// range and their state DBs at one applied index.
func (d *deployment) checkGroup(g []*node) (groupCheck, error) {
	var gc groupCheck
	digest := d.digest
	var last error
	for range 40 {
		var ds []raftnode.Digest
		var from, to uint64 = 0, ^uint64(0)
		for _, n := range g {
			dg, err := digest(n, 0, 1)
			if err != nil {
				return gc, err
			}
			from, to = max(from, dg.LogFirst), min(to, dg.Applied)
		}
		for _, n := range g {
			dg, err := digest(n, from, to)
			if err != nil {
				return gc, err
			}
			ds = append(ds, dg)
		}
		gc = groupCheck{LogFrom: from, LogTo: to, Applied: ds[0].Applied, StateKeys: ds[0].StateKeys}
		last = nil
		for _, dg := range ds[1:] {
			if dg.LogFrom != ds[0].LogFrom || dg.LogTo != ds[0].LogTo {
				last = fmt.Errorf("log range moved under the check (%d..%d vs %d..%d)", dg.LogFrom, dg.LogTo, ds[0].LogFrom, ds[0].LogTo)
				break
			}
			if dg.LogSHA256 != ds[0].LogSHA256 {
				// Committed entries never change: this is a real divergence.
				// Bisect to the first differing entry for the report.
				first := d.firstDifference(g[0], g[indexOfDigest(ds, dg)], from, to)
				return gc, fmt.Errorf("raft logs differ on %d..%d: %s %s, %s %s; %s; first %+v, other %+v",
					from, to, ds[0].Node, ds[0].LogSHA256, dg.Node, dg.LogSHA256, first, ds[0], dg)
			}
			if dg.Applied != ds[0].Applied {
				last = fmt.Errorf("applied %d on %s, %d on %s", ds[0].Applied, ds[0].Node, dg.Applied, dg.Node)
				break
			}
			if dg.StateSHA256 != ds[0].StateSHA256 {
				return gc, fmt.Errorf("state differs at applied index %d: %s %s (%d keys), %s %s (%d keys)",
					dg.Applied, ds[0].Node, ds[0].StateSHA256, ds[0].StateKeys, dg.Node, dg.StateSHA256, dg.StateKeys)
			}
		}
		if last == nil {
			gc.Agree = true
			return gc, nil
		}
		// Entries landed between the reads: retry the round (bounded by the loop).
		if !sleepCtx(d.ctx, 300*time.Millisecond) {
			break
		}
	}
	return gc, fmt.Errorf("no quiet moment to compare: %w", last)
}

// checkRecords reads every device back from central: each acknowledged seq
// exactly once, and the current inventory the latest collected_at.
func (d *deployment) checkRecords(devs map[string]devLog) (lost, dup, stale int, err error) {
	c := d.leaderOf(d.centrals)
	if c == nil {
		return 0, 0, 0, errors.New("no central leader")
	}
	for id, dl := range devs {
		ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
		var recs []record.Record
		var err error
		for after := uint64(0); ; {
			var page []record.Record
			if err = c.Get(ctx, fmt.Sprintf("/api/v1/devices/%s/records?after=%d&limit=10000", id, after), &page); err != nil || len(page) == 0 {
				break
			}
			recs = append(recs, page...)
			after = page[len(page)-1].Seq
		}
		var dev central.Device
		if err == nil {
			err = c.Get(ctx, "/api/v1/devices/"+id, &dev)
		}
		cancel()
		if err != nil {
			if dl.ackedSeq == 0 {
				continue // enrolled, nothing acked: central may not know it
			}
			return lost, dup, stale, err
		}
		seen := map[uint64]int{}
		var latest time.Time
		var latestSeq uint64
		for _, r := range recs {
			seen[r.Seq]++
			if r.Kind == record.KindInventory && r.CollectedAt.After(latest) {
				latest, latestSeq = r.CollectedAt, r.Seq
			}
		}
		for s := uint64(1); s <= dl.ackedSeq; s++ {
			if seen[s] == 0 {
				lost++
			}
		}
		for _, n := range seen {
			if n > 1 {
				dup += n - 1
			}
		}
		if dev.Records != uint64(len(recs)) {
			dup += int(max(dev.Records, uint64(len(recs))) - min(dev.Records, uint64(len(recs))))
		}
		if len(recs) > 0 && (!dev.InventoryAt.Equal(latest) || dev.InventorySeq != latestSeq) {
			stale++
		}
		if want, ok := dl.collected[latestSeq]; latestSeq != 0 && (!ok || !want.Equal(latest)) {
			stale++ // central holds a collected_at the agent never sent
		}
	}
	return lost, dup, stale, nil
}

func indexOfDigest(ds []raftnode.Digest, d raftnode.Digest) int {
	for i := range ds {
		if ds[i].Node == d.Node {
			return i
		}
	}
	return 0
}

// firstDifference bisects lo..hi with digests of a and b to the first index
// whose entries differ, and describes both entries' terms there.
func (d *deployment) firstDifference(a, b *node, lo, hi uint64) string {
	get := d.digest
	for lo < hi {
		mid := lo + (hi-lo)/2
		da, err1 := get(a, lo, mid)
		db, err2 := get(b, lo, mid)
		if err := errors.Join(err1, err2); err != nil {
			return "bisect: " + err.Error()
		}
		if da.LogSHA256 != db.LogSHA256 {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	da, err1 := get(a, lo, lo)
	db, err2 := get(b, lo, lo)
	return fmt.Sprintf("first differing entry %d: %s term %d (%v), %s term %d (%v)", lo, a.Name, da.LogToTerm, err1, b.Name, db.LogToTerm, err2)
}

// keepData copies the relay nodes' data dirs (stopped first) next to the
// report, so a failure can be looked at after t.TempDir is gone.
func (d *deployment) keepData(seed uint64) {
	dst := os.Getenv("CHAOS_KEEP_DATA")
	if dst == "" {
		return
	}
	for _, n := range d.all() {
		n.Stop()
		to := filepath.Join(dst, fmt.Sprintf("chaos-%d-data", seed), n.Name)
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			d.t.Logf("keep data: %v", err)
			return
		}
		if out, err := exec.Command("cp", "-a", n.Data, to).CombinedOutput(); err != nil {
			d.t.Logf("keep data of %s: %v: %s", n.Name, err, out)
		}
	}
	d.t.Logf("data dirs kept under %s", filepath.Join(dst, fmt.Sprintf("chaos-%d-data", seed)))
}

// digest fetches n's raft log digest over from..to and its state digest.
func (d *deployment) digest(n *node, from, to uint64) (raftnode.Digest, error) {
	var dg raftnode.Digest
	ctx, cancel := context.WithTimeout(d.ctx, time.Minute)
	defer cancel()
	err := n.Get(ctx, fmt.Sprintf("/api/v1/cluster/digest?from=%d&to=%d", from, to), &dg)
	return dg, err
}
