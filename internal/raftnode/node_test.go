package raftnode

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"
)

const waitTimeout = 15 * time.Second

func testConfig(t testing.TB, id, dir, raftAddr, httpURL string) Config {
	t.Helper()
	cfg := DefaultConfig()
	cfg.NodeID = id
	cfg.Dir = dir
	cfg.RaftAddr = raftAddr
	cfg.HTTPAddr = httpURL
	cfg.Logger = testLogger(t).With("node", id)
	cfg.Registerer = prometheus.NewRegistry()
	cfg.HeartbeatTimeout = 200 * time.Millisecond
	cfg.ElectionTimeout = 200 * time.Millisecond
	cfg.LeaderLeaseTimeout = 100 * time.Millisecond
	cfg.CommitTimeout = 5 * time.Millisecond
	cfg.MetaCheckInterval = 100 * time.Millisecond
	cfg.ValueLogGCInterval = time.Second
	return cfg
}

// testNode is a Node plus its HTTP server on 127.0.0.1.
type testNode struct {
	*Node
	id, dir, raftAddr, url string
	sm                     *kvSM

	srv      *http.Server
	serveWG  sync.WaitGroup
	stopOnce sync.Once
}

// startNode starts a node; raftAddr "" picks a free port. The HTTP listener
// is opened first so HTTPAddr is known before New.
func startNode(t *testing.T, id, dir, raftAddr string, mod func(*Config)) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if raftAddr == "" {
		raftAddr = "127.0.0.1:0"
	}
	tn := &testNode{id: id, dir: dir, url: "http://" + ln.Addr().String(), sm: &kvSM{}}
	cfg := testConfig(t, id, dir, raftAddr, tn.url)
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg, tn.sm)
	if err != nil {
		ln.Close()
		t.Fatalf("New(%s): %v", id, err)
	}
	tn.Node = n
	tn.raftAddr = n.RaftAddr()
	mux := http.NewServeMux()
	mux.Handle("/raft/", n.Handler())
	tn.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	tn.serveWG.Go(func() { _ = tn.srv.Serve(ln) })
	t.Cleanup(tn.stop)
	return tn
}

// stop closes the node and its HTTP server (a crash from the peers' view).
func (tn *testNode) stop() {
	tn.stopOnce.Do(func() {
		_ = tn.srv.Close()
		tn.serveWG.Wait()
		_ = tn.Node.Close()
	})
}

type cluster struct {
	t     *testing.T
	nodes []*testNode
}

// newCluster bootstraps node 1 and joins the others through node 1's HTTP
// handler (or any live member).
func newCluster(t *testing.T, size int, mod func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t}
	for i := 1; i <= size; i++ {
		tn := startNode(t, fmt.Sprintf("n%d", i), filepath.Join(t.TempDir(), fmt.Sprintf("n%d", i)), "", mod)
		if i == 1 {
			if err := tn.Bootstrap(); err != nil {
				t.Fatalf("Bootstrap: %v", err)
			}
			if err := tn.WaitLeader(testCtx(t, waitTimeout)); err != nil {
				t.Fatal(err)
			}
		} else if err := tn.Join(testCtx(t, waitTimeout), c.nodes[i-2].url); err != nil {
			t.Fatalf("Join(%s): %v", tn.id, err)
		}
		c.nodes = append(c.nodes, tn)
	}
	c.waitMembers(size)
	return c
}

// waitMembers waits until every live node sees size members with HTTP
// addresses and agrees on one leader.
func (c *cluster) waitMembers(size int) {
	c.t.Helper()
	checkFor(c.t, waitTimeout, 20*time.Millisecond, func() error {
		var leader string
		for _, n := range c.live() {
			ms := n.Members()
			if len(ms) != size {
				return fmt.Errorf("%s sees %d members", n.id, len(ms))
			}
			for _, m := range ms {
				if m.HTTPAddr == "" {
					return fmt.Errorf("%s: member %s has no HTTP address", n.id, m.ID)
				}
			}
			id, _, h := n.Leader()
			if id == "" || h == "" {
				return fmt.Errorf("%s: no leader", n.id)
			}
			if leader != "" && id != leader {
				return fmt.Errorf("leader disagreement %s vs %s", leader, id)
			}
			leader = id
		}
		return nil
	})
}

func (c *cluster) live() []*testNode {
	var out []*testNode
	for _, n := range c.nodes {
		if !n.isClosing() {
			out = append(out, n)
		}
	}
	return out
}

func (c *cluster) leader() *testNode {
	c.t.Helper()
	var l *testNode
	checkFor(c.t, waitTimeout, 10*time.Millisecond, func() error {
		for _, n := range c.live() {
			if n.IsLeader() {
				l = n
				return nil
			}
		}
		return errors.New("no leader")
	})
	return l
}

func (c *cluster) follower() *testNode {
	c.t.Helper()
	l := c.leader()
	for _, n := range c.live() {
		if n != l {
			return n
		}
	}
	c.t.Fatal("no follower")
	return nil
}

func (c *cluster) node(id string) *testNode {
	for _, n := range c.nodes {
		if n.id == id {
			return n
		}
	}
	c.t.Fatalf("no node %s", id)
	return nil
}

func mustPropose(t *testing.T, n *testNode, cmd string) string {
	t.Helper()
	res, err := n.Propose(testCtx(t, waitTimeout), []byte(cmd))
	if err != nil {
		t.Fatalf("Propose(%q) on %s: %v", cmd, n.id, err)
	}
	return string(res)
}

// waitKey waits until n's local state has key=want.
func waitKey(t *testing.T, n *testNode, key, want string) {
	t.Helper()
	checkFor(t, waitTimeout, 10*time.Millisecond, func() error {
		got, err := getKey(t, n.View, key)
		if err != nil || got != want {
			return fmt.Errorf("%s: %s = %q, %v; want %q", n.id, key, got, err, want)
		}
		return nil
	})
}

func TestNode_ProposeAndConsistentView(t *testing.T) {
	c := newCluster(t, 3, nil)
	l, f := c.leader(), c.follower()

	if res := mustPropose(t, l, "set a 1"); res[:3] != "ok " {
		t.Errorf("leader result = %q", res)
	}
	// Forwarded from a follower; the result travels back over HTTP.
	res := mustPropose(t, f, "set b 2")
	if res[:3] != "ok " {
		t.Errorf("follower result = %q", res)
	}
	if got := counterValue(t, f.metrics.forwarded.WithLabelValues("apply")); got < 1 {
		t.Errorf("forwarded metric = %v", got)
	}
	for _, n := range c.nodes {
		waitKey(t, n, "a", "1")
		waitKey(t, n, "b", "2")
	}

	// A write acknowledged by the leader is visible to ConsistentView on
	// every follower immediately, with no waiting in between.
	for i := range 20 {
		key := fmt.Sprintf("c%d", i)
		mustPropose(t, l, "set "+key+" v")
		for _, n := range c.nodes {
			err := n.ConsistentView(testCtx(t, waitTimeout), func(txn *badger.Txn) error {
				_, err := txn.Get([]byte("k/" + key))
				return err
			})
			if err != nil {
				t.Fatalf("ConsistentView on %s (leader=%v) for %s: %v", n.id, n.IsLeader(), key, err)
			}
		}
	}

	// Oversized commands are rejected before raft.
	if _, err := f.Propose(testCtx(t, time.Second), make([]byte, MaxCommandSize+1)); !errors.Is(err, ErrBadRequest) {
		t.Errorf("oversized Propose err = %v, want ErrBadRequest", err)
	}
}

func TestNode_LeaderFailover(t *testing.T) {
	c := newCluster(t, 3, nil)
	old := c.leader()
	mustPropose(t, old, "set before 1")
	for _, n := range c.nodes {
		waitKey(t, n, "before", "1")
	}
	old.stop()

	nl := c.leader()
	if nl == old {
		t.Fatal("closed node still leader")
	}
	for _, n := range c.live() {
		mustPropose(t, n, "set after-"+n.id+" 1")
	}
	for _, n := range c.live() {
		for _, m := range c.live() {
			waitKey(t, n, "after-"+m.id, "1")
		}
		waitKey(t, n, "before", "1")
	}
	// Closed node: operations fail fast with ErrShutdown.
	if _, err := old.Propose(context.Background(), []byte("set x 1")); !errors.Is(err, ErrShutdown) {
		t.Errorf("Propose after Close = %v, want ErrShutdown", err)
	}
	if err := old.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestNode_RestartCatchesUp(t *testing.T) {
	c := newCluster(t, 3, nil)
	mustPropose(t, c.leader(), "set a 1")
	f := c.follower()
	waitKey(t, f, "a", "1")
	f.stop()

	mustPropose(t, c.leader(), "set b 2")

	// Restart from the same dirs and raft address; the HTTP port changes, so
	// the node must replicate its new address.
	r := startNode(t, f.id, f.dir, f.raftAddr, nil)
	c.nodes = append(c.nodes, r)
	if got, err := getKey(t, r.View, "a"); err != nil || got != "1" {
		t.Errorf("state after restart: a = %q, %v", got, err)
	}
	if err := r.Bootstrap(); err != nil { // no-op with existing state
		t.Errorf("Bootstrap on restarted node: %v", err)
	}
	if err := r.Join(testCtx(t, time.Second), c.leader().url); err != nil { // no-op: already a member
		t.Errorf("Join on restarted node: %v", err)
	}
	waitKey(t, r, "b", "2")
	mustPropose(t, r, "set c 3")
	waitKey(t, r, "c", "3")
	// Entries applied before the restart were skipped on replay.
	if calls := r.sm.calls.Load(); calls != 2 {
		t.Errorf("Apply calls after restart = %d, want 2 (b, c)", calls)
	}
	for _, n := range c.live() {
		waitKey(t, n, "c", "3")
	}
	checkFor(t, waitTimeout, 20*time.Millisecond, func() error {
		for _, m := range c.leader().Members() {
			if m.ID == r.id && m.HTTPAddr != r.url {
				return fmt.Errorf("member %s HTTPAddr = %s, want %s", m.ID, m.HTTPAddr, r.url)
			}
		}
		return nil
	})
}

func TestNode_SnapshotInstallOnJoin(t *testing.T) {
	small := func(c *Config) {
		c.TrailingLogs = 2
		c.SnapshotThreshold = 1 << 30 // only explicit snapshots
	}
	c := newCluster(t, 1, small)
	l := c.leader()
	for i := range 30 {
		mustPropose(t, l, fmt.Sprintf("set k%d v%d", i, i))
	}
	if err := l.Snapshot(); err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if st := l.Status(); st.LastSnapshotIndex == 0 {
		t.Fatalf("LastSnapshotIndex = 0 after Snapshot")
	}
	mustPropose(t, l, "set after-snap 1")

	nn := startNode(t, "n2", filepath.Join(t.TempDir(), "n2"), "", small)
	c.nodes = append(c.nodes, nn)
	if err := nn.Join(testCtx(t, waitTimeout), l.url); err != nil {
		t.Fatalf("Join: %v", err)
	}
	waitKey(t, nn, "k29", "v29")
	waitKey(t, nn, "after-snap", "1")
	waitKey(t, nn, "k0", "v0")
	if got := counterValue(t, nn.metrics.snapshotRestores); got < 1 {
		t.Errorf("snapshot restores on joiner = %v, want >= 1", got)
	}
	c.waitMembers(2)

	// The joiner restarts from its restored state dir.
	dir, addr := nn.dir, nn.raftAddr
	nn.stop()
	r := startNode(t, "n2", dir, addr, small)
	if got, err := getKey(t, r.View, "k7"); err != nil || got != "v7" {
		t.Errorf("after restart k7 = %q, %v", got, err)
	}
}

func TestNode_RestoreOnStartAfterStateLoss(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	n := startNode(t, "n1", dir, "", nil)
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, n, "set a 1")
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, n, "set b 2")
	addr := n.raftAddr
	n.stop()

	// Lose the state DB entirely (e.g. disk trouble): the snapshot and the
	// log after it rebuild it.
	matches, _ := filepath.Glob(filepath.Join(dir, "state*"))
	for _, m := range matches {
		if err := os.RemoveAll(m); err != nil {
			t.Fatal(err)
		}
	}
	r := startNode(t, "n1", dir, addr, nil)
	if got, err := getKey(t, r.View, "a"); err != nil || got != "1" {
		t.Errorf("a after restore-on-start = %q, %v", got, err)
	}
	if got := counterValue(t, r.metrics.snapshotRestores); got != 1 {
		t.Errorf("restores = %v, want 1", got)
	}
	waitKey(t, r, "b", "2")
	mustPropose(t, r, "set c 3")
}

func TestNode_RemoveAndTransfer(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	var fs []*testNode
	for _, n := range c.nodes {
		if n != l {
			fs = append(fs, n)
		}
	}

	// Transfer to a named follower, requested from the other follower.
	if err := fs[1].TransferLeadership(testCtx(t, waitTimeout), fs[0].id); err != nil {
		t.Fatalf("TransferLeadership: %v", err)
	}
	checkFor(t, waitTimeout, 10*time.Millisecond, func() error {
		if !fs[0].IsLeader() {
			return fmt.Errorf("%s not leader", fs[0].id)
		}
		return nil
	})
	// Transfer to any.
	if err := fs[0].TransferLeadership(testCtx(t, waitTimeout), ""); err != nil {
		t.Fatalf("TransferLeadership(any): %v", err)
	}
	checkFor(t, waitTimeout, 10*time.Millisecond, func() error {
		if fs[0].IsLeader() {
			return errors.New("leadership not moved")
		}
		return nil
	})
	if err := c.leader().TransferLeadership(testCtx(t, time.Second), "nope"); !errors.Is(err, ErrUnknownMember) {
		t.Errorf("transfer to unknown = %v", err)
	}

	// Remove a follower, requested through another node (forwarded).
	ld := c.leader()
	var victim, via *testNode
	for _, n := range c.nodes {
		switch {
		case n == ld:
		case victim == nil:
			victim = n
		default:
			via = n
		}
	}
	if err := via.Remove(testCtx(t, waitTimeout), victim.id); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := via.Remove(testCtx(t, waitTimeout), victim.id); err != nil {
		t.Errorf("second Remove (no-op) = %v", err)
	}
	victim.stop()
	c.waitMembers(2)
	mustPropose(t, via, "set after-remove 1")
	waitKey(t, ld, "after-remove", "1")
}

func TestNode_StatusAndLeaderCh(t *testing.T) {
	c := newCluster(t, 1, nil)
	n := c.nodes[0]
	select {
	case v := <-n.LeaderCh():
		if !v {
			t.Errorf("LeaderCh = false, want true")
		}
	case <-testCtx(t, waitTimeout).Done():
		t.Fatal("no LeaderCh signal")
	}
	mustPropose(t, n, "set a 1")
	st := n.Status()
	if st.NodeID != "n1" || st.State != "Leader" || st.Leader.ID != "n1" || st.Leader.HTTPAddr != n.url ||
		st.Leader.RaftAddr != n.raftAddr || st.Term == 0 || st.CommitIndex == 0 || st.AppliedIndex == 0 ||
		st.LastLogIndex < st.CommitIndex || len(st.Members) != 1 || !st.Members[0].Leader ||
		st.Members[0].Suffrage != "Voter" || st.Members[0].HTTPAddr != n.url {
		t.Errorf("unexpected status %+v", st)
	}
	if st.AppliedIndex != n.AppliedIndex() {
		t.Errorf("AppliedIndex mismatch")
	}

	// The status endpoint serves the same data as JSON.
	resp, err := http.Get(n.url + "/raft/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got Status
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if got.NodeID != "n1" || got.Leader.ID != "n1" || len(got.Members) != 1 {
		t.Errorf("status JSON = %+v", got)
	}
}
