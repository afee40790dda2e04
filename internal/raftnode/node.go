package raftnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Node is one member of a raft group: raft, its Badger log store, the FSM
// state DB, the transport and the HTTP endpoints peers use to forward.
type Node struct {
	cfg     Config
	logger  *slog.Logger
	sm      StateMachine
	metrics *metrics

	raft     *raft.Raft
	fsm      *fsm
	logs     raft.LogStore
	stable   raft.StableStore
	logDB    *LogStore // nil with InmemLogStore
	snaps    *raft.FileSnapshotStore
	trans    *raft.NetworkTransport
	observer *raft.Observer
	obsCh    chan raft.Observation

	httpTransport *http.Transport
	client        *http.Client

	leaderCh chan bool     // to the one LeaderCh consumer; cap 1, latest value wins
	metaKick chan struct{} // cap 1: ask metaLoop to check our replicated HTTP address

	// clusterID is the ID of the cluster this node belongs to, "" while
	// unknown (Config.ClusterID, then SetClusterID).
	clusterID atomic.Pointer[string]

	// readyTerm is the term in which a barrier committed under our
	// leadership, so CommitIndex is known to be current for read-index.
	readyTerm atomic.Uint64

	ctx    context.Context // canceled by Close; parent of background work
	cancel context.CancelFunc

	// lifeMu guards closing and orders wg.Add against wg.Wait in Close.
	lifeMu  sync.Mutex
	closing bool
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Status is a point-in-time view of the node, for `cluster status`.
type Status struct {
	NodeID            string     `json:"node_id"`
	ClusterID         string     `json:"cluster_id,omitempty"` // "" when unknown (and from older nodes)
	State             string     `json:"state"`
	Leader            LeaderInfo `json:"leader"`
	Term              uint64     `json:"term"`
	CommitIndex       uint64     `json:"commit_index"`
	AppliedIndex      uint64     `json:"applied_index"`
	LastLogIndex      uint64     `json:"last_log_index"`
	LastSnapshotIndex uint64     `json:"last_snapshot_index"`
	Members           []Member   `json:"members"`
}

// LeaderInfo identifies the current leader; empty fields when unknown.
type LeaderInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
}

// Member is one server in the raft configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// New opens the stores, restores state from the latest snapshot if the
// state DB is behind it, listens on RaftAddr and creates raft. It does not
// bootstrap or join.
func New(cfg Config, sm StateMachine) (_ *Node, retErr error) {
	if err := applyEnv(&cfg); err != nil { // failpoint.go: test tuning
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if sm == nil {
		return nil, errors.New("raftnode: nil StateMachine")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("node", cfg.NodeID)
	n := &Node{
		cfg:      cfg,
		logger:   logger,
		sm:       sm,
		leaderCh: make(chan bool, 1),
		metaKick: make(chan struct{}, 1),
		obsCh:    make(chan raft.Observation, 16),
	}
	n.SetClusterID(cfg.ClusterID)
	var closers []func() error
	defer func() {
		if retErr != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				_ = closers[i]()
			}
		}
	}()

	var err error
	if n.metrics, err = newMetrics(cfg.Registerer); err != nil {
		return nil, fmt.Errorf("raftnode: register metrics: %w", err)
	}
	for _, d := range []string{cfg.Dir, filepath.Join(cfg.Dir, "raft"), filepath.Join(cfg.Dir, "snapshots")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("raftnode: create %s: %w", d, err)
		}
	}
	hlog := newHCLog(logger, "raft")
	// integrity.go: refuse damaged data before Badger opens (and silently
	// truncates) it; drop snapshots a crash left half-written.
	if err := CheckDir(cfg.Dir); err != nil {
		return nil, err
	}
	if err := removeSnapshotTemps(snapshotStoreDir(cfg.Dir)); err != nil {
		return nil, fmt.Errorf("raftnode: remove interrupted snapshots: %w", err)
	}

	if cfg.InmemLogStore {
		s := raft.NewInmemStore()
		n.logs, n.stable = s, s
	} else {
		if n.logDB, err = OpenLogStore(filepath.Join(cfg.Dir, "raft"), logger); err != nil {
			return nil, fmt.Errorf("raftnode: %w", err)
		}
		closers = append(closers, n.logDB.Close)
		n.logs, n.stable = n.logDB, n.logDB
	}
	if n.snaps, err = raft.NewFileSnapshotStoreWithLogger(filepath.Join(cfg.Dir, "snapshots"), 2, hlog.Named("snapshots")); err != nil {
		return nil, fmt.Errorf("raftnode: open snapshot store: %w", err)
	}
	if n.fsm, err = openFSM(cfg.Dir, sm, logger, n.metrics); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}
	closers = append(closers, func() error { n.fsm.close(); return nil })
	if err := n.restoreOnStart(); err != nil {
		return nil, fmt.Errorf("raftnode: %w", err)
	}

	layer := cfg.Layer
	if layer == nil {
		if layer, err = NewTCPLayer(cfg.RaftAddr, cfg.TLS); err != nil {
			return nil, fmt.Errorf("raftnode: %w", err)
		}
		if cfg.RaftAdvertise != "" {
			layer = advertisedLayer{Layer: layer, addr: cfg.RaftAdvertise}
		}
	}
	n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  newStreamLayer(layer),
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  hlog.Named("transport"),
	})
	closers = append(closers, n.trans.Close)

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.Logger = hlog
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.MaxAppendEntries = cfg.MaxAppendEntries
	rc.BatchApplyCh = true
	// See doc.go: restoreOnStart above already brought the state DB up to
	// the latest snapshot when needed; raft then replays only newer logs.
	rc.NoSnapshotRestoreOnStart = true
	if n.raft, err = raft.NewRaft(rc, n.fsm, n.logs, n.stable, n.snaps, serialHeartbeats{n.trans}); err != nil {
		return nil, fmt.Errorf("raftnode: start raft: %w", err)
	}

	n.httpTransport = &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     60 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	if cfg.TLS != nil {
		n.httpTransport.TLSClientConfig = cfg.TLS.Clone()
	}
	n.client = &http.Client{Transport: n.httpTransport}

	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.wg.Go(n.leaderLoop)
	n.wg.Go(n.metaLoop)
	n.wg.Go(n.gcLoop)
	return n, nil
}

// restoreOnStart restores the latest snapshot into the state DB when the
// DB is behind it (state DB writes are not synced, so a crash can lose the
// tail; raft with NoSnapshotRestoreOnStart replays only logs after the
// snapshot, and logs before it may be compacted away).
func (n *Node) restoreOnStart() error {
	list, err := n.snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return nil
	}
	id := list[0].ID
	_, rc, err := n.snaps.Open(id)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", id, err)
	}
	idx, err := readSnapshotHeader(rc)
	_ = rc.Close()
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	applied := n.fsm.applied.Load()
	if applied >= idx {
		return nil
	}
	n.logger.Warn("State behind latest snapshot, restoring", "applied", applied, "snapshotIndex", idx, "snapshot", id)
	_, rc, err = n.snaps.Open(id)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", id, err)
	}
	defer rc.Close()
	if err := n.fsm.restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", id, err)
	}
	return nil
}

// goTracked runs fn in a goroutine Close waits for; false after Close began.
func (n *Node) goTracked(fn func()) bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	if n.closing {
		return false
	}
	n.wg.Go(fn)
	return true
}

func (n *Node) isClosing() bool {
	n.lifeMu.Lock()
	defer n.lifeMu.Unlock()
	return n.closing
}

// Close shuts raft down and closes the transport and stores. Idempotent.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.lifeMu.Lock()
		n.closing = true
		n.lifeMu.Unlock()
		var errs []error
		if err := n.raft.Shutdown().Error(); err != nil {
			errs = append(errs, fmt.Errorf("shutdown raft: %w", err))
		}
		n.raft.DeregisterObserver(n.observer)
		n.cancel()
		n.wg.Wait()
		if err := n.trans.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close transport: %w", err))
		}
		n.httpTransport.CloseIdleConnections()
		n.fsm.close()
		if n.logDB != nil {
			if err := n.logDB.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close raft log: %w", err))
			}
		}
		n.closeErr = errors.Join(errs...)
	})
	return n.closeErr
}

// ClusterID is the ID of the cluster this node belongs to; "" when unknown.
func (n *Node) ClusterID() string { return *n.clusterID.Load() }

// SetClusterID records the cluster this node belongs to (its owner keeps
// it on disk; raftnode only answers it to joiners and in Status).
func (n *Node) SetClusterID(id string) { n.clusterID.Store(&id) }

// HasState reports whether the node has raft state (a log, a term or a
// snapshot): it was bootstrapped or has joined a cluster.
func (n *Node) HasState() (bool, error) {
	has, err := raft.HasExistingState(n.logs, n.stable, n.snaps)
	if err != nil {
		return false, fmt.Errorf("raftnode: read raft state: %w", err)
	}
	return has, nil
}

// Bootstrap makes this node a single-voter cluster if it has no raft state
// yet; with existing state it is a no-op.
func (n *Node) Bootstrap() error {
	has, err := raft.HasExistingState(n.logs, n.stable, n.snaps)
	if err != nil {
		return fmt.Errorf("raftnode: bootstrap: %w", err)
	}
	if has {
		return nil
	}
	if _, err := os.Stat(filepath.Join(n.cfg.Dir, RejoinMarker)); err == nil {
		return fmt.Errorf("raftnode: bootstrap: %w", ErrRejoinPending)
	}
	err = n.raft.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
		Suffrage: raft.Voter, ID: raft.ServerID(n.cfg.NodeID), Address: n.trans.LocalAddr(),
	}}}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("raftnode: bootstrap: %w", n.translate(err))
	}
	return nil
}

// RaftAddr is the address this node advertises to raft peers.
func (n *Node) RaftAddr() string { return string(n.trans.LocalAddr()) }

// IsLeader reports whether this node is the leader.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the current leader; empty strings when unknown. httpAddr
// is empty until the leader's address has been replicated.
func (n *Node) Leader() (id, raftAddr, httpAddr string) {
	addr, sid := n.raft.LeaderWithID()
	if sid == "" {
		return "", "", ""
	}
	return string(sid), string(addr), n.fsm.memberHTTP(string(sid))
}

// LeaderCh delivers true when this node gains leadership and false when it
// loses it. It is meant for one consumer; it is buffered and only the latest
// value is kept, so a slow consumer never blocks raft.
func (n *Node) LeaderCh() <-chan bool { return n.leaderCh }

// WaitLeader waits until some leader is known.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrNoLeader, ctx.Err())
		case <-n.ctx.Done():
			return ErrShutdown
		case <-t.C:
		}
	}
}

// AppliedIndex is the last log index applied to the local state DB.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// View runs fn in a read-only transaction on the local state, which may lag
// the leader. fn must not keep txn.
func (n *Node) View(fn func(txn *badger.Txn) error) error { return n.fsm.view(fn) }

// Propose replicates cmd and returns StateMachine.Apply's result. On a
// follower the command is forwarded to the leader over HTTP(S). While no
// leader is reachable, Propose retries until ctx is done (it retries only
// when the command was certainly not appended). ctx's deadline bounds the
// whole call; without one ApplyTimeout bounds raft's enqueue.
func (n *Node) Propose(ctx context.Context, cmd []byte) ([]byte, error) {
	if len(cmd) > MaxCommandSize {
		return nil, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrBadRequest, len(cmd), MaxCommandSize)
	}
	return n.propose(ctx, frameApp(cmd))
}

func (n *Node) propose(ctx context.Context, entry []byte) ([]byte, error) {
	var res []byte
	err := n.retry(ctx, func() error {
		var err error
		if n.IsLeader() {
			res, err = n.applyLocal(ctx, entry)
		} else {
			res, err = n.forward(ctx, http.MethodPost, "/raft/v1/apply", entry, "apply")
		}
		return err
	})
	return res, err
}

// retryable errors mean the operation certainly did not happen.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader)
}

// retry runs op until it succeeds, fails permanently, or ctx is done.
func (n *Node) retry(ctx context.Context, op func() error) error {
	wait := 10 * time.Millisecond
	for {
		if n.isClosing() {
			return ErrShutdown
		}
		err := op()
		if err == nil || !retryable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (%w)", err, ctx.Err())
		case <-n.ctx.Done():
			t.Stop()
			return ErrShutdown
		case <-t.C:
		}
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// applyLocal appends entry on this (leader) node and waits for the result.
func (n *Node) applyLocal(ctx context.Context, entry []byte) ([]byte, error) {
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
		if timeout <= 0 {
			return nil, ctx.Err()
		}
	}
	f := n.raft.Apply(entry, timeout)
	if err := n.waitFuture(ctx, f); err != nil {
		return nil, err
	}
	res, _ := f.Response().(applyResult)
	return res.data, nil
}

// waitFuture waits for f or ctx, translating raft errors.
func (n *Node) waitFuture(ctx context.Context, f raft.Future) error {
	if ctx.Done() == nil {
		return n.translate(f.Error())
	}
	done := make(chan error, 1)
	if !n.goTracked(func() { done <- f.Error() }) {
		return ErrShutdown
	}
	select {
	case err := <-done:
		return n.translate(err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// translate maps raft's errors to ours (STYLE rule 7).
func (n *Node) translate(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrNotVoter):
		_, _, httpAddr := n.Leader()
		return &NotLeaderError{Leader: httpAddr}
	case errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: leadership transfer in progress", ErrNoLeader)
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrAbortedByRestore):
		return fmt.Errorf("%w: %w", ErrLeadershipLost, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return ErrTimeout
	}
	return err
}

// leaderHTTP returns the leader's HTTP base URL, or ErrNoLeader.
func (n *Node) leaderHTTP() (string, error) {
	id, _, httpAddr := n.Leader()
	switch {
	case id == "":
		return "", ErrNoLeader
	case id == n.cfg.NodeID:
		return "", fmt.Errorf("%w: leadership changing", ErrNoLeader)
	case httpAddr == "":
		return "", fmt.Errorf("%w: leader %s has no known HTTP address yet", ErrNoLeader, id)
	}
	return httpAddr, nil
}

// ConsistentView runs fn on local state that includes every write
// acknowledged before the call: the leader confirms its leadership and read
// index (raft's read-index protocol); a follower asks the leader for it over
// HTTP(S) and waits until its own state has applied that far.
func (n *Node) ConsistentView(ctx context.Context, fn func(txn *badger.Txn) error) error {
	var idx uint64
	err := n.retry(ctx, func() error {
		var err error
		if n.IsLeader() {
			idx, err = n.leaderReadIndex(ctx)
		} else {
			idx, err = n.remoteReadIndex(ctx)
		}
		return err
	})
	if err != nil {
		return err
	}
	if err := n.waitApplied(ctx, idx); err != nil {
		return err
	}
	return n.View(fn)
}

// leaderReadIndex returns an applied index of this leader's FSM that covers
// every entry committed before the call. Entries raft does not hand to the
// FSM (no-op, barrier) are skipped, so the result is the index of an FSM
// entry, which every replica's AppliedIndex will reach exactly.
func (n *Node) leaderReadIndex(ctx context.Context) (uint64, error) {
	if !n.IsLeader() {
		_, _, h := n.Leader()
		return 0, &NotLeaderError{Leader: h}
	}
	// CommitIndex is only current once an entry of this term has committed.
	term := n.raft.CurrentTerm()
	if n.readyTerm.Load() != term {
		if err := n.waitFuture(ctx, n.raft.Barrier(n.cfg.ApplyTimeout)); err != nil {
			return 0, err
		}
		n.readyTerm.Store(term)
	}
	commit := n.raft.CommitIndex()
	if err := n.waitFuture(ctx, n.raft.VerifyLeader()); err != nil {
		return 0, err
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		ch := n.fsm.appliedCh()
		applied := n.fsm.applied.Load()
		if applied >= commit || n.noFSMEntries(applied+1, commit) {
			return applied, nil
		}
		select {
		case <-ch:
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-n.ctx.Done():
			return 0, ErrShutdown
		}
	}
}

// noFSMEntries reports whether no entry in lo..hi will reach the FSM.
func (n *Node) noFSMEntries(lo, hi uint64) bool {
	if hi-lo > 4096 {
		return false
	}
	var l raft.Log
	for i := lo; i <= hi; i++ {
		if err := n.logs.GetLog(i, &l); err != nil {
			return false // compacted or racing: wait for the FSM instead
		}
		if l.Type == raft.LogCommand || l.Type == raft.LogConfiguration {
			return false
		}
	}
	return true
}

func (n *Node) waitApplied(ctx context.Context, idx uint64) error {
	for {
		ch := n.fsm.appliedCh()
		if n.fsm.applied.Load() >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-n.ctx.Done():
			return ErrShutdown
		}
	}
}

// Status returns a snapshot of the node's raft state.
func (n *Node) Status() Status {
	id, raftAddr, httpAddr := n.Leader()
	snapIdx, _ := strconv.ParseUint(n.raft.Stats()["last_snapshot_index"], 10, 64)
	return Status{
		NodeID:            n.cfg.NodeID,
		ClusterID:         n.ClusterID(),
		State:             n.raft.State().String(),
		Leader:            LeaderInfo{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr},
		Term:              n.raft.CurrentTerm(),
		CommitIndex:       n.raft.CommitIndex(),
		AppliedIndex:      n.AppliedIndex(),
		LastLogIndex:      n.raft.LastIndex(),
		LastSnapshotIndex: snapIdx,
		Members:           n.Members(),
	}
}

// Snapshot asks raft to take a snapshot now (tests, operators).
func (n *Node) Snapshot() error {
	if err := n.raft.Snapshot().Error(); err != nil {
		return fmt.Errorf("raftnode: snapshot: %w", n.translate(err))
	}
	return nil
}

// leaderLoop relays raft's leadership signal to LeaderCh and kicks metaLoop.
func (n *Node) leaderLoop() {
	raftCh := n.raft.LeaderCh()
	for {
		select {
		case <-n.ctx.Done():
			return
		case v := <-raftCh:
			n.logger.Info("Leadership changed", "leader", v)
			select {
			case <-n.leaderCh: // drop the stale value
			default:
			}
			n.leaderCh <- v // cannot block: we are the only sender and just drained
			n.kickMeta()
		case <-n.obsCh:
			n.kickMeta()
		}
	}
}

func (n *Node) kickMeta() {
	select {
	case n.metaKick <- struct{}{}:
	default:
	}
}

// metaLoop keeps this node's replicated HTTP address equal to cfg.HTTPAddr.
func (n *Node) metaLoop() {
	t := time.NewTicker(n.cfg.MetaCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.metaKick:
		case <-t.C:
		}
		n.ensureMeta()
	}
}

func (n *Node) ensureMeta() {
	if n.fsm.memberHTTP(n.cfg.NodeID) == n.cfg.HTTPAddr {
		return
	}
	if _, ok := n.configServer(n.cfg.NodeID); !ok {
		return // not a member yet; the join handler replicates our address
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
	defer cancel()
	_, err := n.propose(ctx, encodeMeta(metaCmd{op: opSetMeta, id: n.cfg.NodeID, httpAddr: n.cfg.HTTPAddr}))
	if err != nil {
		if n.ctx.Err() == nil {
			n.logger.Warn("Replicating HTTP address failed", "httpAddr", n.cfg.HTTPAddr, "error", err)
		}
		return
	}
	n.logger.Info("HTTP address replicated", "httpAddr", n.cfg.HTTPAddr)
}

// gcLoop runs Badger value-log GC on both DBs.
func (n *Node) gcLoop() {
	t := time.NewTicker(n.cfg.ValueLogGCInterval)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		if n.logDB != nil {
			runValueLogGC(n.logDB.db, n.logger)
		}
		h := n.fsm.acquire()
		runValueLogGC(h.db, n.logger)
		h.release()
	}
}
