//go:build !windows

package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/edgesync/edgesync/internal/faultnet"
)

// faultLog is what the schedule did, for the report.
type faultLog struct {
	mu        sync.Mutex
	counts    map[string]int
	timeline  []string
	failovers map[string][]time.Duration // "relay"/"central" → time to a new leader
	diskSeen  int                        // disk faults during which the full node refused reports
	start     time.Time
}

func newFaultLog() *faultLog {
	return &faultLog{counts: map[string]int{}, failovers: map[string][]time.Duration{}, start: time.Now()}
}

func (f *faultLog) add(kind, format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.counts[kind]++
	f.timeline = append(f.timeline, fmt.Sprintf("%7.1fs %-14s %s", time.Since(f.start).Seconds(), kind, fmt.Sprintf(format, args...)))
}

func (f *faultLog) failover(group string, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failovers[group] = append(f.failovers[group], d)
	f.timeline = append(f.timeline, fmt.Sprintf("%7.1fs %-14s new %s leader after %s", time.Since(f.start).Seconds(), "failover", group, d.Round(time.Millisecond)))
}

// percentile of ds (sorted copy), p in [0,1].
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p*float64(len(s)) + 0.5)
	return s[min(max(i-1, 0), len(s)-1)]
}

// scheduler injects faults from a seeded source. Two lanes run at once:
// node faults (kill, pause, partition, disk) and WAN faults, so a WAN outage
// can overlap a relay failover, as it does in the field.
type scheduler struct {
	d   *deployment
	log *faultLog
}

// between returns a duration uniform in [lo, hi).
func between(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rng.Int64N(int64(hi-lo)))
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// nodeLane runs node faults until ctx ends; each fault is healed and the
// groups have a leader again before the next one.
func (s *scheduler) nodeLane(ctx context.Context, rng *rand.Rand) error {
	for sleepCtx(ctx, between(rng, 2*time.Second, 6*time.Second)) {
		var err error
		switch r := rng.IntN(100); {
		case r < 25:
			err = s.kill(rng, s.d.relays, "relay")
		case r < 40:
			err = s.kill(rng, s.d.centrals, "central")
		case r < 60:
			group, name := s.d.relays, "relay"
			if rng.IntN(3) == 0 {
				group, name = s.d.centrals, "central"
			}
			err = s.pause(rng, group, name)
		case r < 85:
			err = s.partition(rng)
		default:
			err = s.diskFull(ctx, rng)
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

// recovered is liveness: after every fault the site and central have a
// leader with their full membership again within 90 s.
func (s *scheduler) recovered() error {
	for _, g := range [][]*node{s.d.relays, s.d.centrals} {
		if err := waitFor(s.d.ctx, 90*time.Second, func() error {
			if s.d.leaderOf(g) == nil {
				return fmt.Errorf("%s group has no leader with full membership after a fault", g[0].Name)
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// victim picks the leader a third of the time, else any member.
func (s *scheduler) victim(rng *rand.Rand, group []*node) (n *node, leader bool) {
	l := s.d.leaderOf(group)
	if l != nil && rng.IntN(3) == 0 {
		return l, true
	}
	n = group[rng.IntN(len(group))]
	return n, n == l
}

func (s *scheduler) kill(rng *rand.Rand, group []*node, name string) error {
	n, leader := s.victim(rng, group)
	at := time.Now()
	s.d.kill(n)
	s.log.add("kill-"+name, "SIGKILL %s (leader=%v)", n.Name, leader)
	if leader {
		took, err := s.d.waitNewLeader(group, n, at, 60*time.Second)
		if err != nil {
			return fmt.Errorf("after SIGKILL of leader %s: %w", n.Name, err)
		}
		s.log.failover(name, took)
	}
	sleepCtx(s.d.ctx, between(rng, 500*time.Millisecond, 3*time.Second))
	s.d.restart(n)
	return nil
}

// pause SIGSTOPs the leader for 3-6 s, past its 500 ms lease and 1 s
// election timeout, so the others elect a new leader while the old one
// still believes it leads; SIGCONT brings it back as a stale leader.
func (s *scheduler) pause(rng *rand.Rand, group []*node, name string) error {
	l := s.d.leaderOf(group)
	if l == nil {
		return nil
	}
	at := time.Now()
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	if err := l.Signal(syscall.SIGSTOP); err != nil {
		return err
	}
	hold := between(rng, 3*time.Second, 6*time.Second)
	s.log.add("pause-"+name, "SIGSTOP leader %s for %s", l.Name, hold.Round(time.Millisecond))
	took, err := s.d.waitNewLeader(group, l, at, hold)
	if err == nil {
		s.log.failover(name, took)
	}
	sleepCtx(s.d.ctx, time.Until(at.Add(hold)))
	l.mu.Lock()
	l.stopped = false
	l.mu.Unlock()
	if err != nil {
		// Not a safety failure: a 2-core box may take longer than a short
		// hold to elect; the liveness wait after the fault still applies.
		s.log.add("note", "no new leader while %s was stopped %s", l.Name, hold.Round(time.Millisecond))
	}
	return l.Signal(syscall.SIGCONT)
}

// partition cuts one relay node off from the other two (the leader half
// the time), or one link only (asymmetric reachability), then heals.
func (s *scheduler) partition(rng *rand.Rand) error {
	rs := s.d.relays
	l := s.d.leaderOf(rs)
	v := rs[rng.IntN(len(rs))]
	if l != nil && rng.IntN(2) == 0 {
		v = l
	}
	hold := between(rng, 3*time.Second, 10*time.Second)
	at := time.Now()
	if rng.IntN(4) == 0 {
		// One link: v and one peer cannot talk, both still reach the third.
		o := rs[(indexOf(rs, v)+1+rng.IntN(len(rs)-1))%len(rs)]
		v.proxy.Block(o.raftIP)
		o.proxy.Block(v.raftIP)
		s.log.add("partition-link", "cut %s<->%s for %s", v.Name, o.Name, hold.Round(time.Millisecond))
	} else {
		for _, o := range rs {
			if o != v {
				v.proxy.Block(o.raftIP)
				o.proxy.Block(v.raftIP)
			}
		}
		s.log.add("partition-node", "isolate %s (leader=%v) for %s", v.Name, v == l, hold.Round(time.Millisecond))
		if v == l {
			if took, err := s.d.waitNewLeader(rs, v, at, hold+30*time.Second); err == nil {
				s.log.failover("relay", took)
			} else {
				return fmt.Errorf("isolated leader %s: %w", v.Name, err)
			}
		}
	}
	sleepCtx(s.d.ctx, time.Until(at.Add(hold)))
	for _, o := range rs {
		o.proxy.UnblockAll()
	}
	return nil
}

func indexOf(ns []*node, n *node) int {
	for i, x := range ns {
		if x == n {
			return i
		}
	}
	return -1
}

// diskFull fills the tmpfs of one relay node to below its critical
// threshold (64 MiB), checks the node refuses reports (503 with
// Retry-After reaches the agents, who keep the records), and frees it.
func (s *scheduler) diskFull(ctx context.Context, rng *rand.Rand) error {
	if s.d.diskDir == "" {
		return nil
	}
	n := s.d.relays[s.d.diskNode]
	free, err := fillDisk(s.d.diskDir, 24<<20)
	if err != nil {
		return err
	}
	hold := between(rng, 8*time.Second, 15*time.Second)
	s.log.add("disk-full", "%s down to 24 MiB free for %s", n.Name, hold.Round(time.Millisecond))
	// The full node refuses, and so does the rest of the site (the alarm is
	// site-wide: the leader must stop replicating into a full disk).
	refused := waitFor(s.d.ctx, hold, func() error {
		st, err := s.d.status(n)
		if err != nil || !st.Refusing && st.Disk != "critical" {
			return fmt.Errorf("%s disk %q refusing %v (%v)", n.Name, st.Disk, st.Refusing, err)
		}
		l := s.d.leaderOf(s.d.relays)
		if l == nil {
			return errors.New("no site leader")
		}
		if lst, err := s.d.status(l); err != nil || lst.DiskAlarm != n.Name {
			return fmt.Errorf("site leader %s disk_alarm %q (%v), want %s", l.Name, lst.DiskAlarm, err, n.Name)
		}
		return nil
	}, 250*time.Millisecond)
	if refused != nil {
		return fmt.Errorf("disk full on %s: backpressure did not engage: %w", n.Name, refused)
	}
	s.log.mu.Lock()
	s.log.diskSeen++
	s.log.mu.Unlock()
	sleepCtx(ctx, hold)
	if err := free(); err != nil {
		return err
	}
	// Recovery: the node takes reports again once space returns.
	return waitFor(s.d.ctx, 30*time.Second, func() error {
		st, err := s.d.status(n)
		if err != nil || st.Refusing || st.Disk != "ok" || st.DiskAlarm != "" {
			return fmt.Errorf("%s after freeing space: disk %q refusing %v alarm %q (%v)", n.Name, st.Disk, st.Refusing, st.DiskAlarm, err)
		}
		return nil
	}, 250*time.Millisecond)
}

// wanLane degrades the relay→central link: loss, delay with jitter,
// reordering and duplication, or a blackhole; then heals it.
func (s *scheduler) wanLane(ctx context.Context, rng *rand.Rand) {
	for sleepCtx(ctx, between(rng, 3*time.Second, 10*time.Second)) {
		var f faultnet.UDPFaults
		var hold time.Duration
		if rng.IntN(3) == 0 {
			f.Blackhole = true
			hold = between(rng, 5*time.Second, 30*time.Second)
			s.log.add("wan-blackhole", "relay<->central dark for %s", hold.Round(time.Millisecond))
		} else {
			f = faultnet.UDPFaults{
				Drop:      0.02 + rng.Float64()*0.25,
				Duplicate: rng.Float64() * 0.1,
				Reorder:   rng.Float64() * 0.2,
				Delay:     between(rng, 10*time.Millisecond, 150*time.Millisecond),
				Jitter:    between(rng, time.Millisecond, 60*time.Millisecond),
			}
			hold = between(rng, 5*time.Second, 20*time.Second)
			s.log.add("wan-degraded", "drop %.0f%% dup %.0f%% reorder %.0f%% delay %s±%s for %s",
				f.Drop*100, f.Duplicate*100, f.Reorder*100, f.Delay.Round(time.Millisecond), f.Jitter.Round(time.Millisecond), hold.Round(time.Millisecond))
		}
		for _, w := range s.d.wan {
			w.SetFaults(f)
		}
		sleepCtx(ctx, hold)
		for _, w := range s.d.wan {
			w.SetFaults(faultnet.UDPFaults{})
		}
	}
}
