package node_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"go.uber.org/goleak"

	"github.com/edgesync/edgesync/internal/node"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// counter is the smallest real state machine: it counts applied commands.
type counter struct{}

func (counter) Apply(txn *badger.Txn, index uint64, cmd []byte) []byte {
	if err := txn.Set([]byte("last"), cmd); err != nil {
		panic(err)
	}
	return cmd
}

func openBootstrap(t *testing.T) (*node.Node, *raftnode.Node) {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(filepath.Join(dir, "pki")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := pki.Issue(filepath.Join(dir, "pki"), pki.IssueRequest{Role: pki.RoleCentral, Name: "n1", Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	bundle, err := pki.Load(filepath.Join(dir, "pki"), "n1")
	if err != nil {
		t.Fatal(err)
	}
	rc := raftnode.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	n, err := node.Open(node.Config{Role: "test", NodeID: "n1", DataDir: filepath.Join(dir, "n1"), RaftAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0", PKI: bundle, Raft: rc, Bootstrap: true, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rn, err := n.OpenRaft(counter{})
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	n.Serve(rn.Handler())
	return n, rn
}

// TestRun_StopsInOrder: Run bootstraps, the parts run, beforeStop still has
// a working Raft, and on return every goroutine and the listener are gone.
func TestRun_StopsInOrder(t *testing.T) {
	n, rn := openBootstrap(t)
	ctx, cancel := context.WithCancel(context.Background())
	partStopped := make(chan struct{})
	var proposedAtStop error = errors.New("beforeStop not called")
	done := make(chan error, 1)
	go func() {
		done <- n.Run(ctx, func() {
			pctx, pcancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer pcancel()
			_, proposedAtStop = rn.Propose(pctx, []byte("stopping"))
		}, node.Loop("part", func(ctx context.Context) { <-ctx.Done(); close(partStopped) }))
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := rn.WaitLeader(wctx); err != nil {
		t.Fatalf("no leader after bootstrap: %v", err)
	}
	if out, err := rn.Propose(wctx, []byte("hello")); err != nil || string(out) != "hello" {
		t.Fatalf("propose: %q %v", out, err)
	}
	addr := n.Addr()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run returned %v on a clean stop", err)
	}
	if proposedAtStop != nil {
		t.Fatalf("beforeStop could not propose: %v", proposedAtStop)
	}
	select {
	case <-partStopped:
	default:
		t.Fatal("Run returned before its part stopped")
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("listener %s still accepts after Run returned", addr)
	}
}

// TestRun_FailingPartStopsTheNode: a part's error stops every other part and
// is what Run returns, named after the part.
func TestRun_FailingPartStopsTheNode(t *testing.T) {
	n, _ := openBootstrap(t)
	boom := errors.New("boom")
	otherStopped := make(chan struct{})
	err := n.Run(context.Background(), nil,
		node.Task{Name: "bad", Run: func(ctx context.Context) error { return boom }},
		node.Loop("other", func(ctx context.Context) { <-ctx.Done(); close(otherStopped) }))
	if !errors.Is(err, boom) || err.Error() != "bad: boom" {
		t.Fatalf("Run = %v, want bad: boom", err)
	}
	<-otherStopped
}

func TestRun_NeedsRaftAndHandler(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Open(node.Config{Role: "test", NodeID: "n1", DataDir: dir, HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Run(context.Background(), nil); err == nil {
		t.Fatal("Run without OpenRaft and Serve succeeded")
	}
}
