package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/node"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

// harness starts real nodes (Raft over Badger, HTTPS on 127.0.0.1) under
// one CA. Each node keeps its ports across restarts, as a real one does.
type harness struct {
	t      *testing.T
	pkiDir string
	root   string
	nodes  map[string]node.Config
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, pkiDir: filepath.Join(t.TempDir(), "pki"), root: t.TempDir(), nodes: map[string]node.Config{}}
	if err := pki.Init(h.pkiDir); err != nil {
		t.Fatal(err)
	}
	return h
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// config returns node id's base config (no Bootstrap, no JoinURL).
func (h *harness) config(id string) node.Config {
	h.t.Helper()
	if cfg, ok := h.nodes[id]; ok {
		return cfg
	}
	if _, _, err := pki.Issue(h.pkiDir, pki.IssueRequest{Role: pki.RoleCentral, Name: id, Hosts: []string{"127.0.0.1"}}); err != nil {
		h.t.Fatal(err)
	}
	bundle, err := pki.Load(h.pkiDir, id)
	if err != nil {
		h.t.Fatal(err)
	}
	rc := raftnode.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	rc.MetaCheckInterval = 100 * time.Millisecond
	cfg := node.Config{Role: "test", Site: "s1", NodeID: id, DataDir: filepath.Join(h.root, id), RaftAddr: freeAddr(h.t),
		HTTPAddr: freeAddr(h.t), PKI: bundle, Raft: rc, Logger: slog.New(slog.DiscardHandler)}
	h.nodes[id] = cfg
	return cfg
}

// running is a node inside Run.
type running struct {
	n      *node.Node
	rn     *raftnode.Node
	cancel context.CancelFunc
	done   chan error
}

// open opens cfg as relay and central do; the error is Open's or OpenRaft's.
func open(cfg node.Config) (*node.Node, *raftnode.Node, error) {
	n, err := node.Open(cfg)
	if err != nil {
		return nil, nil, err
	}
	rn, err := n.OpenRaft(counter{})
	if err != nil {
		n.Close()
		return nil, nil, err
	}
	n.Serve(rn.Handler())
	return n, rn, nil
}

func (h *harness) start(cfg node.Config) (*running, error) {
	n, rn, err := open(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{n: n, rn: rn, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx, nil) }()
	h.t.Cleanup(func() { r.stop() })
	return r, nil
}

func (h *harness) mustStart(cfg node.Config) *running {
	h.t.Helper()
	r, err := h.start(cfg)
	if err != nil {
		h.t.Fatalf("start %s: %v", cfg.NodeID, err)
	}
	return r
}

// stop ends Run and returns its error; repeated calls return nil.
func (r *running) stop() error {
	if r.cancel == nil {
		return nil
	}
	r.cancel()
	r.cancel = nil
	return <-r.done
}

func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond) // poll interval, not a stand-in for the condition
	}
}

func (r *running) waitMembers(t *testing.T, size int) {
	t.Helper()
	waitFor(t, "cluster of "+fmt.Sprint(size), func() error {
		st := r.rn.Status()
		if st.Leader.ID == "" || len(st.Members) != size {
			return fmt.Errorf("leader %q, %d members", st.Leader.ID, len(st.Members))
		}
		for _, m := range st.Members {
			if m.HTTPAddr == "" {
				return fmt.Errorf("member %s has no HTTP address yet", m.ID)
			}
		}
		return nil
	})
}

func propose(t *testing.T, rn *raftnode.Node, cmd string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := rn.Propose(ctx, []byte(cmd)); err != nil || string(out) != cmd {
		t.Fatalf("propose %q: %q %v", cmd, out, err)
	}
}

func readIdentity(t *testing.T, dir string) node.Identity {
	t.Helper()
	id, ok, err := node.ReadIdentity(dir)
	if err != nil || !ok {
		t.Fatalf("ReadIdentity(%s) = %v, %v", dir, ok, err)
	}
	return id
}

// twoNodes bootstraps n1 and joins n2 through it.
func (h *harness) twoNodes() (r1, r2 *running) {
	h.t.Helper()
	c1 := h.config("n1")
	c1.Bootstrap = true
	r1 = h.mustStart(c1)
	c2 := h.config("n2")
	c2.JoinURL = r1.n.URL()
	r2 = h.mustStart(c2)
	r1.waitMembers(h.t, 2)
	return r1, r2
}

// TestRestart_WithoutFlags: a bootstrapped node and a joined node both
// restart with neither --bootstrap nor --join, rejoin their cluster and
// keep its state; the identity file says how each was created, with the
// one cluster ID, and only the founder is Founder.
func TestRestart_WithoutFlags(t *testing.T) {
	h := newHarness(t)
	r1, r2 := h.twoNodes()
	propose(t, r1.rn, "before")
	id1, id2 := readIdentity(t, h.config("n1").DataDir), readIdentity(t, h.config("n2").DataDir)
	if id1.ClusterID == "" || id1.Created != node.CreatedBootstrap || id1.NodeID != "n1" || id1.Role != "test" || id1.Site != "s1" {
		t.Fatalf("n1 identity %+v", id1)
	}
	waitFor(t, "n2 identity", func() error {
		var err error
		if id2, err = readIdentityErr(h.config("n2").DataDir); err != nil {
			return err
		}
		return nil
	})
	if id2.ClusterID != id1.ClusterID || id2.Created != node.CreatedJoin {
		t.Fatalf("n2 identity %+v, n1 %+v", id2, id1)
	}
	if !r1.n.Founder() || r2.n.Founder() {
		t.Fatalf("Founder: n1 %v, n2 %v", r1.n.Founder(), r2.n.Founder())
	}
	for _, r := range []*running{r2, r1} {
		if err := r.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	r1 = h.mustStart(h.config("n1"))
	r2 = h.mustStart(h.config("n2"))
	r1.waitMembers(t, 2)
	if !r1.n.Founder() || r2.n.Founder() {
		t.Fatalf("Founder after restart: n1 %v, n2 %v", r1.n.Founder(), r2.n.Founder())
	}
	propose(t, r2.rn, "after")
	if st := r2.rn.Status(); st.ClusterID != id1.ClusterID {
		t.Fatalf("n2 status cluster %q, want %q", st.ClusterID, id1.ClusterID)
	}
}

func readIdentityErr(dir string) (node.Identity, error) {
	id, ok, err := node.ReadIdentity(dir)
	if err == nil && !ok {
		err = errors.New("no identity file yet")
	}
	return id, err
}

// TestBootstrap_AgainIsHarmless: the old unit file with --bootstrap keeps
// working on the data dir it bootstrapped: same cluster, same state.
func TestBootstrap_AgainIsHarmless(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n1")
	cfg.Bootstrap = true
	r := h.mustStart(cfg)
	propose(t, r.rn, "one")
	before := readIdentity(t, cfg.DataDir)
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	r = h.mustStart(cfg)
	propose(t, r.rn, "two")
	if after := readIdentity(t, cfg.DataDir); after != before {
		t.Fatalf("identity changed by a second --bootstrap: %+v, was %+v", after, before)
	}
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestFreshDataDir_NeedsAFlag: an empty data dir with neither flag is
// refused before Run, with the message operators see.
func TestFreshDataDir_NeedsAFlag(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n1")
	_, err := h.start(cfg)
	if !errors.Is(err, node.ErrNoClusterState) {
		t.Fatalf("start = %v, want ErrNoClusterState", err)
	}
	want := fmt.Sprintf("data directory %s holds no cluster state: give --bootstrap or --join", cfg.DataDir)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("message %q lacks %q", err, want)
	}
	if _, ok, _ := node.ReadIdentity(cfg.DataDir); ok {
		t.Fatal("a refused start wrote an identity")
	}
}

// TestBootstrap_OnJoinedNodeRefused: --bootstrap on a node that joined is
// refused, and the message says what the data dir belongs to.
func TestBootstrap_OnJoinedNodeRefused(t *testing.T) {
	h := newHarness(t)
	r1, r2 := h.twoNodes()
	waitFor(t, "n2 identity", func() error { _, err := readIdentityErr(h.config("n2").DataDir); return err })
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	c2 := h.config("n2")
	c2.Bootstrap = true
	_, err := h.start(c2)
	if !errors.Is(err, node.ErrDataDirMismatch) {
		t.Fatalf("--bootstrap on a joined node = %v, want ErrDataDirMismatch", err)
	}
	wantParts(t, err, readIdentity(t, h.config("n1").DataDir).ClusterID, "node n2", "role test", "site s1", "which it joined")
	_ = r1
}

func wantParts(t *testing.T, err error, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("message %q lacks %q", err, p)
		}
	}
}

// TestJoin_OtherClusterRefused: a member of cluster A restarted with --join
// naming a member of cluster B is refused by Run (the restart check); a
// data dir of A wiped to rejoin is refused by B's member (the wire code).
func TestJoin_OtherClusterRefused(t *testing.T) {
	h := newHarness(t)
	_, r2 := h.twoNodes()
	cb := h.config("b1")
	cb.Bootstrap = true
	rb := h.mustStart(cb)
	rb.waitMembers(t, 1)
	waitFor(t, "n2 identity", func() error { _, err := readIdentityErr(h.config("n2").DataDir); return err })
	if err := r2.stop(); err != nil {
		t.Fatal(err)
	}
	clusterA := readIdentity(t, h.config("n1").DataDir).ClusterID
	clusterB := readIdentity(t, cb.DataDir).ClusterID

	c2 := h.config("n2")
	c2.JoinURL = rb.n.URL()
	r, err := h.start(c2)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-r.done:
		r.cancel = nil
	case <-time.After(30 * time.Second):
		t.Fatal("a node of cluster A ran with --join of cluster B")
	}
	if !errors.Is(err, node.ErrDataDirMismatch) {
		t.Fatalf("Run = %v, want ErrDataDirMismatch", err)
	}
	wantParts(t, err, clusterA, clusterB, "node n2", "role test")

	if _, err := raftnode.Wipe(c2.DataDir, time.Now()); err != nil {
		t.Fatal(err)
	}
	if r, err = h.start(c2); err != nil {
		t.Fatal(err)
	}
	select {
	case err = <-r.done:
		r.cancel = nil
	case <-time.After(30 * time.Second):
		t.Fatal("a wiped node of cluster A joined cluster B")
	}
	if !errors.Is(err, node.ErrDataDirMismatch) || !errors.Is(err, raftnode.ErrWrongCluster) {
		t.Fatalf("Run = %v, want ErrDataDirMismatch from ErrWrongCluster", err)
	}
	wantParts(t, err, clusterA, clusterB)
	if n := len(rb.rn.Members()); n != 1 {
		t.Fatalf("cluster B has %d members after the refused join", n)
	}
}

// TestOpen_OtherIdentityRefused: another node ID, role or site than the data
// dir was created with is refused before Raft opens.
func TestOpen_OtherIdentityRefused(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n1")
	cfg.Bootstrap = true
	r := h.mustStart(cfg)
	propose(t, r.rn, "x")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		mod  func(*node.Config)
	}{
		{"node id", func(c *node.Config) { c.NodeID = "n9" }},
		{"role", func(c *node.Config) { c.Role = "other" }},
		{"site", func(c *node.Config) { c.Site = "s2" }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := cfg
			c.Bootstrap = false
			tt.mod(&c)
			_, err := h.start(c)
			if !errors.Is(err, node.ErrDataDirMismatch) {
				t.Fatalf("start = %v, want ErrDataDirMismatch", err)
			}
			wantParts(t, err, "node n1", "role test", "site s1", cfg.DataDir)
		})
	}
}

// TestOlderDataDir_OpensAndCloses: a data dir of a release without the
// identity file restarts without flags, gets an identity with an unknown
// cluster ID, and opens and closes cleanly, with and without Run (goleak
// in TestMain checks no goroutine is left).
func TestOlderDataDir_OpensAndCloses(t *testing.T) {
	h := newHarness(t)
	cfg := h.config("n1")
	cfg.Bootstrap = true
	r := h.mustStart(cfg)
	propose(t, r.rn, "x")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, node.IdentityFile)); err != nil {
		t.Fatal(err)
	}
	cfg.Bootstrap = false
	n, _, err := open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { n.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(20 * time.Second):
		t.Fatal("Close hung on an older data dir")
	}
	id := readIdentity(t, cfg.DataDir)
	if id.ClusterID != "" || id.Created != "" || id.NodeID != "n1" {
		t.Fatalf("identity of an older data dir: %+v", id)
	}
	if err := os.Remove(filepath.Join(cfg.DataDir, node.IdentityFile)); err != nil {
		t.Fatal(err)
	}
	r = h.mustStart(cfg)
	propose(t, r.rn, "y")
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(cfg.DataDir, node.IdentityFile))
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["node_id"] != "n1" || raw["role"] != "test" || raw["site"] != "s1" {
		t.Fatalf("%s = %s (%v)", node.IdentityFile, b, err)
	}
}
