//go:build !windows

package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/faultnet"
	"github.com/edgesync/edgesync/relay"
	"github.com/edgesync/edgesync/test/procnet"
)

const site = "chaos"

// node is one process and how the harness reaches it.
type node struct {
	*procnet.Proc
	central bool
	raftIP  string             // relays: the loopback IP it dials from
	proxy   *faultnet.TCPProxy // relays: in front of its raft listener
	mu      sync.Mutex         // guards down, stopped
	down    bool               // killed by the harness, not yet restarted
	stopped bool               // SIGSTOPped
	exits   int                // exits the harness did not cause
	exitCh  <-chan struct{}    // current process's exit
}

// deployment is the processes, proxies and the data dirs they use.
type deployment struct {
	t        *testing.T
	net      *procnet.Net
	centrals []*node
	relays   []*node
	wan      []*faultnet.UDPProxy // one per central node, relays dial these
	diskDir  string               // tmpfs data dir of relays[diskNode], "" when unavailable
	diskNode int
	ctx      context.Context
}

func buildBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "edgesync-chaos-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, err := procnet.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// deploy starts 3 central nodes, WAN proxies in front of them, and 3 relay
// nodes each with its raft listener behind a partitioning proxy.
func deploy(ctx context.Context, t *testing.T, seed uint64, runProxy func(func(context.Context) error)) *deployment {
	dir := t.TempDir()
	pn, err := procnet.New(buildBinary(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	switch p := os.Getenv("CHAOS_NODE_LOG"); {
	case os.Getenv("EDGESYNC_TEST_LOG") != "":
		pn.Log = os.Stderr
	case p != "":
		pn.LogLevel = "info" // raft's snapshot installs and compactions are info
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		pn.Log = f
	}
	d := &deployment{t: t, net: pn, ctx: ctx, diskNode: 2}
	for i := range 3 {
		join := ""
		if i > 0 {
			join = d.centrals[0].URL
		}
		p, err := pn.Central("c"+strconv.Itoa(i+1), i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		n := &node{Proc: p, central: true}
		d.start(n)
		d.centrals = append(d.centrals, n)
		if i == 0 {
			d.waitLeader(d.centrals, 60*time.Second)
		}
		wp, err := faultnet.NewUDPProxy("127.0.0.1:0", p.SyncAddr("quic"), seed+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		runProxy(wp.Run)
		d.wan = append(d.wan, wp)
	}
	var wanAddrs []string
	for _, w := range d.wan {
		wanAddrs = append(wanAddrs, w.Addr())
	}
	for i := range 3 {
		ip := "127.0.0." + strconv.Itoa(11+i)
		join := ""
		if i > 0 {
			join = d.relays[0].URL
		}
		p, err := pn.RelayAt(ip, site, "r"+strconv.Itoa(i+1), wanAddrs, "quic", i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		px, err := faultnet.NewTCPProxy(ip+":0", p.Arg("--raft-addr"))
		if err != nil {
			t.Fatal(err)
		}
		runProxy(px.Run)
		p.Args = append(p.Args, "--raft-advertise", px.Addr())
		n := &node{Proc: p, raftIP: ip, proxy: px}
		if i == d.diskNode {
			d.diskDir = mountSmallDisk(t, p.Data)
		}
		d.start(n)
		d.relays = append(d.relays, n)
		if i == 0 {
			d.waitLeader(d.relays, 60*time.Second)
		}
	}
	d.waitLeader(d.relays, 90*time.Second)
	d.waitLeader(d.centrals, 90*time.Second)
	return d
}

// mountSmallDisk puts dir on a 1 GiB tmpfs so the disk-full fault is a real
// full filesystem. It needs root (CI and this machine have it); without it
// the disk fault is skipped and the report says so.
func mountSmallDisk(t *testing.T, dir string) string {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1g,mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Logf("disk-full fault off: cannot mount a tmpfs (%v: %s)", err, out)
		return ""
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Logf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

func (d *deployment) all() []*node { return append(append([]*node{}, d.centrals...), d.relays...) }

func (d *deployment) start(n *node) {
	d.t.Helper()
	if err := n.Start(); err != nil {
		d.t.Fatal(err)
	}
	n.mu.Lock()
	n.down, n.stopped, n.exitCh = false, false, n.Exited()
	n.mu.Unlock()
	d.t.Cleanup(n.Kill)
}

// kill SIGKILLs n; restart starts it again.
func (d *deployment) kill(n *node) {
	n.mu.Lock()
	n.down = true
	n.mu.Unlock()
	if n.stopped {
		_ = n.Signal(syscall.SIGCONT)
	}
	n.Kill()
}

func (d *deployment) restart(n *node) {
	if err := n.Start(); err != nil {
		d.t.Errorf("restart %s: %v", n.Name, err)
		return
	}
	n.mu.Lock()
	n.down, n.stopped, n.exitCh = false, false, n.Exited()
	n.mu.Unlock()
}

// supervise restarts a node that exited by itself, as systemd would, and
// counts it: an unexpected exit is reported (and is a finding to explain).
func (d *deployment) supervise(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, n := range d.all() {
			n.mu.Lock()
			exited := false
			if !n.down && n.exitCh != nil {
				select {
				case <-n.exitCh:
					exited = true
				default:
				}
			}
			n.mu.Unlock()
			if exited {
				n.exits++
				d.t.Logf("%s exited by itself; restarting it (data dir %s)", n.Name, n.Data)
				n.Kill() // reap
				d.restart(n)
			}
		}
	}
}

// leaderOf returns the member that reports itself leader with the whole
// membership, or nil.
func (d *deployment) leaderOf(group []*node) *node {
	for _, n := range group {
		if st, err := d.status(n); err == nil && st.State == "Leader" && st.Members == len(group) {
			return n
		}
	}
	return nil
}

// raftStatus is the raft part of a node's /api/v1/cluster.
type raftStatus struct {
	State        string
	Term         uint64
	Members      int
	AppliedIndex uint64
	LastLogIndex uint64
	Outbox       relay.Outbox
	Refusing     bool
	Disk         string
	DiskAlarm    string
}

func (d *deployment) status(n *node) (raftStatus, error) {
	n.mu.Lock()
	unavailable := n.down || n.stopped
	n.mu.Unlock()
	if unavailable {
		return raftStatus{}, errors.New(n.Name + " is down")
	}
	ctx, cancel := context.WithTimeout(d.ctx, 2*time.Second)
	defer cancel()
	if n.central {
		var st central.Status
		if err := n.Get(ctx, "/api/v1/cluster", &st); err != nil {
			return raftStatus{}, err
		}
		return raftStatus{State: st.Raft.State, Term: st.Raft.Term, Members: len(st.Raft.Members), AppliedIndex: st.Raft.AppliedIndex, LastLogIndex: st.Raft.LastLogIndex}, nil
	}
	var st relay.Status
	if err := n.Get(ctx, "/api/v1/cluster", &st); err != nil {
		return raftStatus{}, err
	}
	return raftStatus{State: st.Raft.State, Term: st.Raft.Term, Members: len(st.Raft.Members), AppliedIndex: st.Raft.AppliedIndex,
		LastLogIndex: st.Raft.LastLogIndex, Outbox: st.Outbox, Refusing: st.Refusing, Disk: st.Disk, DiskAlarm: st.DiskAlarm}, nil
}

// term is the group leader's raft term (0 without a leader): the number of
// elections a run caused is the difference between two readings.
func (d *deployment) term(group []*node) uint64 {
	if l := d.leaderOf(group); l != nil {
		if st, err := d.status(l); err == nil {
			return st.Term
		}
	}
	return 0
}

func (d *deployment) waitLeader(group []*node, timeout time.Duration) *node {
	d.t.Helper()
	var l *node
	err := waitFor(d.ctx, timeout, func() error {
		if l = d.leaderOf(group); l == nil {
			return errors.New("no leader with full membership")
		}
		return nil
	})
	if err != nil {
		d.t.Fatalf("%s group: %v", group[0].Name, err)
	}
	return l
}

// waitNewLeader polls every 20 ms until a member other than old is leader
// and returns how long that took from since.
func (d *deployment) waitNewLeader(group []*node, old *node, since time.Time, timeout time.Duration) (time.Duration, error) {
	err := waitFor(d.ctx, timeout, func() error {
		for _, n := range group {
			if n == old {
				continue
			}
			if st, err := d.status(n); err == nil && st.State == "Leader" {
				return nil
			}
		}
		return errors.New("no new leader")
	}, 20*time.Millisecond)
	return time.Since(since), err
}

// waitFor polls cond (every 100 ms unless an interval is given) until it
// returns nil, timeout passes, or ctx ends.
func waitFor(ctx context.Context, timeout time.Duration, cond func() error, interval ...time.Duration) error {
	every := 100 * time.Millisecond
	if len(interval) > 0 {
		every = interval[0]
	}
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ctx.Err(), err)
		case <-time.After(every):
		}
	}
}

// fillDisk writes a ballast file leaving about leave bytes free on dir's
// filesystem; the returned func removes it.
func fillDisk(dir string, leave uint64) (func() error, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return nil, err
	}
	free := st.Bavail * uint64(st.Bsize)
	if free <= leave {
		return func() error { return nil }, nil
	}
	path := filepath.Join(dir, "chaos-ballast")
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, int64(free-leave))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("ballast: %w", err)
	}
	return func() error { return os.Remove(path) }, nil
}
