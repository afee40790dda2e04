package raftnode

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// recordingFSM keeps the commands applied to it, in order.
type recordingFSM struct {
	mu      sync.Mutex
	applied [][]byte
}

func (f *recordingFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, append([]byte(nil), l.Data...))
	return nil
}

func (f *recordingFSM) has(cmd []byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.applied {
		if bytes.Equal(a, cmd) {
			return true
		}
	}
	return false
}

func (f *recordingFSM) Snapshot() (raft.FSMSnapshot, error) {
	return nil, errors.New("no snapshots here")
}
func (f *recordingFSM) Restore(io.ReadCloser) error { return errors.New("no snapshots here") }

// TestDeposedLeaderStampsNewTerm is finding C (docs/reliability.md), made
// deterministic. A leader of term T idles in its leader loop; a heartbeat
// of term T+1 arrives from the new leader; then a client command. On
// hashicorp/raft's heartbeat fast path the heartbeat is handled on the
// transport goroutine: it makes the node a follower at term T+1 without
// waking the leader loop, which then takes the command and writes it at
// (next index, T+1), an index the real leader of T+1 uses for its own
// entry. When that leader replicates with prevLog (index, T+1) the node
// finds a match, keeps its own entry and applies it: a command no leader
// committed, applied on one member only. serialHeartbeats (node.go) sends
// heartbeats through the main loop, which steps down before it reads the
// next command: the command is refused, nothing is stamped, the append is
// refused and the log repaired the normal way.
//
// The fast-path case asserts the upstream bug (hashicorp/raft#695, fix
// proposed in #701, open in v1.8.0): when it stops reproducing, upstream
// has fixed it and serialHeartbeats can go.
func TestDeposedLeaderStampsNewTerm(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fastPath bool
	}{
		{"hashicorp/raft fast path", true},
		{"serialHeartbeats", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stamped, appliedOnFollower := deposedLeaderApply(t, tc.fastPath)
			if tc.fastPath && (!stamped || !appliedOnFollower) {
				t.Fatalf("fast path: command stamped with the new term %v, applied though no leader committed it %v; "+
					"want both (upstream bug); if hashicorp/raft fixed it, drop serialHeartbeats", stamped, appliedOnFollower)
			}
			if !tc.fastPath && (stamped || appliedOnFollower) {
				t.Fatalf("serialHeartbeats: command stamped with the new term %v, applied though no leader committed it %v; want neither",
					stamped, appliedOnFollower)
			}
		})
	}
}

// deposedLeaderApply runs the scenario on a single-voter raft node over the
// real TCP transport and Badger log store; the "new leader" is a second
// transport sending raft RPCs by hand.
func deposedLeaderApply(t *testing.T, fastPath bool) (stamped, appliedOnFollower bool) {
	t.Helper()
	layer, err := NewTCPLayer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: newStreamLayer(layer), MaxPool: 2, Timeout: 5 * time.Second})
	var rt raft.Transport = serialHeartbeats{trans}
	if fastPath {
		rt = trans
	}
	logs, err := OpenLogStore(t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	snaps, err := raft.NewFileSnapshotStore(t.TempDir(), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rc := raft.DefaultConfig()
	rc.LocalID = "old-leader"
	// The leader loop wakes by itself only for its lease check: make that
	// rare next to the milliseconds between the heartbeat and the command.
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 2*time.Second, 2*time.Second, 2*time.Second
	rc.BatchApplyCh = true
	rc.Logger = newHCLog(testLogger(t), "raft")
	fsm := &recordingFSM{}
	r, err := raft.NewRaft(rc, fsm, logs, logs, snaps, rt)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Shutdown().Error(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		trans.Close()
	}()
	if err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: trans.LocalAddr()}}}).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.LeaderCh():
	case <-time.After(30 * time.Second):
		t.Fatal("no leader")
	}
	if err := r.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Apply([]byte("before"), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}

	// The new leader of term T+1 sends its first heartbeat.
	peerLayer, err := NewTCPLayer("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	peer := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: newStreamLayer(peerLayer), MaxPool: 2, Timeout: 5 * time.Second})
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(done); wg.Wait(); peer.Close() }()
	wg.Go(func() { // the peer's inbound RPCs (none expected) must not block it
		for {
			select {
			case rpc := <-peer.Consumer():
				rpc.Respond(nil, errors.New("not a raft node"))
			case <-done:
				return
			}
		}
	})
	term := r.CurrentTerm()
	next, err := logs.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	next++
	newLeader := peer.EncodePeer("new-leader", peer.LocalAddr())
	hb := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("new-leader"), Addr: newLeader}, Term: term + 1}
	var hbResp raft.AppendEntriesResponse
	if err := peer.AppendEntries(rc.LocalID, trans.LocalAddr(), hb, &hbResp); err != nil {
		t.Fatal(err)
	}
	// Then a client command, at once.
	cmd := []byte("stamped by a deposed leader")
	applyErr := r.Apply(cmd, 5*time.Second).Error()
	t.Logf("apply after the newer heartbeat: %v", applyErr)

	var got raft.Log
	if err := logs.GetLog(next, &got); err == nil && bytes.Equal(got.Data, cmd) && got.Term == term+1 {
		stamped = true
	}
	// The new leader's own entry at next (its no-op) has term T+1 too; it
	// replicates the one after with prevLog (next, T+1) and commits both.
	app := &raft.AppendEntriesRequest{RPCHeader: raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("new-leader"), Addr: newLeader}, Term: term + 1,
		PrevLogEntry: next, PrevLogTerm: term + 1,
		Entries:           []*raft.Log{{Index: next + 1, Term: term + 1, Type: raft.LogNoop}},
		LeaderCommitIndex: next + 1}
	var appResp raft.AppendEntriesResponse
	if err := peer.AppendEntries(rc.LocalID, trans.LocalAddr(), app, &appResp); err != nil {
		t.Fatal(err)
	}
	t.Logf("append with prevLog (%d, %d): success %v", next, term+1, appResp.Success)
	if appResp.Success {
		// Applied asynchronously after the commit index moves: poll.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !fsm.has(cmd); {
			time.Sleep(10 * time.Millisecond)
		}
		appliedOnFollower = fsm.has(cmd)
	}
	return stamped, appliedOnFollower
}
