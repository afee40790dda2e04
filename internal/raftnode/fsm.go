package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// StateMachine is implemented by relay and central. Apply must be
// deterministic: no clock, randomness or map-order dependence.
//
// Apply writes its effects through txn; raftnode stores the applied index in
// the same txn, so effects and index commit atomically. The returned bytes
// travel back to the proposer (possibly over HTTP when forwarded).
//
// Apply must not swallow txn errors: when txn.Set/Delete/Get fails, Apply
// must panic with that error (wrapping is fine). raftnode recovers a panic
// whose value is an error matching badger.ErrTxnTooBig: it discards the txn,
// commits the entries before this one and re-runs Apply for this entry in a
// fresh txn. Because of that re-run, Apply must have no effects outside txn.
// Any other panic crashes the node, which is intended: a replica that cannot
// apply an entry must not diverge. Keys starting with 0x00 are reserved.
type StateMachine interface {
	Apply(txn *badger.Txn, index uint64, cmd []byte) []byte
}

// Reserved keys (prefix 0x00) in the FSM DB.
var (
	appliedKey = []byte{0x00, 'a'} // big-endian uint64 applied index
	metaPrefix = []byte{0x00, 'm'} // + member ID -> HTTP base URL
)

const (
	reservedByte    = 0x00
	stateDirPrefix  = "state-"
	stateCurrentPtr = "state.current"
)

func metaKey(id string) []byte { return append(append([]byte(nil), metaPrefix...), id...) }

// applyResult is what the FSM returns through raft's ApplyFuture.
type applyResult struct{ data []byte }

// stateHandle is one opened state DB. refs counts the "current" reference plus
// outstanding snapshots and GC runs, so a DB swapped out by Restore is closed
// (and its directory removed) only after the last user is done.
type stateHandle struct {
	db     *badger.DB
	dir    string
	refs   atomic.Int64
	remove atomic.Bool
	logger *slog.Logger
}

func (h *stateHandle) release() {
	if h.refs.Add(-1) != 0 {
		return
	}
	if err := h.db.Close(); err != nil {
		h.logger.Warn("Close state DB failed", "dir", h.dir, "error", err)
	}
	if h.remove.Load() {
		if err := os.RemoveAll(h.dir); err != nil {
			h.logger.Warn("Remove old state DB failed", "dir", h.dir, "error", err)
		}
	}
}

// fsm implements raft.BatchingFSM over the state DB.
type fsm struct {
	dir     string // node data dir
	sm      StateMachine
	logger  *slog.Logger
	metrics *metrics

	// mu guards cur. Read-locked by View, Apply and Snapshot; write-locked only
	// to swap in a restored DB. Lock order: Node has no lock held across fsm.mu.
	mu     sync.RWMutex
	cur    *stateHandle
	closed bool

	applied atomic.Uint64 // last index applied to the state DB

	// notifyMu guards notify, which is closed and replaced after every commit
	// to wake waitApplied callers.
	notifyMu sync.Mutex
	notify   chan struct{}
}

var _ raft.BatchingFSM = (*fsm)(nil)

func openFSM(dir string, sm StateMachine, logger *slog.Logger, m *metrics) (*fsm, error) {
	f := &fsm{dir: dir, sm: sm, logger: logger, metrics: m, notify: make(chan struct{})}
	name, err := readStatePointer(dir)
	if err != nil {
		return nil, err
	}
	h, err := f.openState(filepath.Join(dir, name))
	if err != nil {
		return nil, err
	}
	f.cur = h
	idx, err := readApplied(h.db)
	if err != nil {
		h.release()
		return nil, err
	}
	f.applied.Store(idx)
	// Remove leftovers of an interrupted restore.
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), stateDirPrefix) && e.Name() != name {
			logger.Info("Removing stale state DB", "dir", e.Name())
			_ = os.RemoveAll(filepath.Join(dir, e.Name()))
		}
	}
	return f, nil
}

func (f *fsm) openState(path string) (*stateHandle, error) {
	// SyncWrites=false: see doc.go. Durability of state comes from the raft
	// log (replayed above the stored applied index) and from Sync before
	// every snapshot.
	// Values above 512 bytes (agent records in a relay outbox, records at
	// central) go to the value log: the LSM then holds only pointers, and
	// compaction stops rewriting records that are written once and deleted
	// when central acks them. Measured: relay CPU per record -37% and
	// anonymous RSS -33% under the ingest benchmark (docs/benchmarks.md).
	db, err := openBadger(badgerOptions(path, false, stateDBMagic, f.logger).WithValueThreshold(stateValueThreshold))
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	h := &stateHandle{db: db, dir: path, logger: f.logger}
	h.refs.Store(1)
	return h, nil
}

// acquire returns the current handle with an extra reference.
func (f *fsm) acquire() *stateHandle {
	f.mu.RLock()
	defer f.mu.RUnlock()
	h := f.cur
	h.refs.Add(1)
	return h
}

func (f *fsm) close() {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return
	}
	f.closed = true
	h := f.cur
	f.mu.Unlock()
	h.release()
}

func (f *fsm) view(fn func(txn *badger.Txn) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return ErrShutdown
	}
	return f.cur.db.View(fn)
}

func readApplied(db *badger.DB) (uint64, error) {
	var idx uint64
	err := db.View(func(txn *badger.Txn) error {
		var err error
		idx, err = txnApplied(txn)
		return err
	})
	return idx, err
}

func txnApplied(txn *badger.Txn) (uint64, error) {
	item, err := txn.Get(appliedKey)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read applied index: %w", err)
	}
	var idx uint64
	err = item.Value(func(v []byte) error {
		if len(v) != 8 {
			return fmt.Errorf("applied index has %d bytes", len(v))
		}
		idx = binary.BigEndian.Uint64(v)
		return nil
	})
	return idx, err
}

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

// ApplyBatch implements raft.BatchingFSM: all logs go into one Badger txn
// together with the applied index. When the txn grows too big it is split.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	resps := make([]any, len(logs))
	f.mu.RLock()
	defer f.mu.RUnlock()
	db := f.cur.db

	// Skip entries already in the state DB (log replay after restart).
	applied := f.applied.Load()
	start := 0
	for start < len(logs) && logs[start].Index <= applied {
		start++
	}
	todo := logs[start:]
	if len(todo) == 0 {
		return resps
	}
	f.metrics.applyBatchSize.Observe(float64(len(todo)))
	out := resps[start:]
	for len(todo) > 0 {
		n := f.applyChunk(db, todo, out)
		todo, out = todo[n:], out[n:]
	}
	return resps
}

// applyChunk applies as many logs as fit into one txn, commits, and returns
// how many it applied (at least one).
func (f *fsm) applyChunk(db *badger.DB, logs []*raft.Log, out []any) int {
	txn := db.NewTransaction(true)
	for i, l := range logs {
		resp, tooBig := f.applyOne(txn, l)
		if !tooBig {
			out[i] = resp
			continue
		}
		txn.Discard()
		if i == 0 {
			panic(fmt.Sprintf("raftnode: entry %d does not fit in one Badger transaction", l.Index))
		}
		// The txn holds partial effects of logs[i]: redo logs[:i] alone.
		f.metrics.applyTxnSplits.Inc()
		txn = db.NewTransaction(true)
		for j, l := range logs[:i] {
			resp, tooBig := f.applyOne(txn, l)
			if tooBig {
				panic(fmt.Sprintf("raftnode: re-applying entry %d: transaction too big", l.Index))
			}
			out[j] = resp
		}
		f.commit(txn, logs[i-1].Index, i)
		return i
	}
	f.commit(txn, logs[len(logs)-1].Index, len(logs))
	return len(logs)
}

func (f *fsm) commit(txn *badger.Txn, last uint64, n int) {
	if err := txn.Commit(); err != nil {
		// The state DB failed underneath us; continuing would diverge.
		panic(fmt.Sprintf("raftnode: commit state up to index %d: %v", last, err))
	}
	f.setApplied(last)
	f.metrics.appliedEntries.Add(float64(n))
}

func (f *fsm) setApplied(idx uint64) {
	f.applied.Store(idx)
	f.notifyMu.Lock()
	close(f.notify)
	f.notify = make(chan struct{})
	f.notifyMu.Unlock()
}

// appliedCh returns a channel closed at the next applied-index change.
func (f *fsm) appliedCh() <-chan struct{} {
	f.notifyMu.Lock()
	defer f.notifyMu.Unlock()
	return f.notify
}

// applyOne writes one log's effects and the applied index into txn.
// tooBig reports badger.ErrTxnTooBig; txn then holds partial effects.
func (f *fsm) applyOne(txn *badger.Txn, l *raft.Log) (resp applyResult, tooBig bool) {
	defer func() {
		if r := recover(); r != nil {
			if err, ok := r.(error); ok && errors.Is(err, badger.ErrTxnTooBig) {
				tooBig = true
				return
			}
			panic(r)
		}
	}()
	if l.Type == raft.LogCommand {
		if len(l.Data) == 0 {
			panic(fmt.Sprintf("raftnode: empty command at index %d", l.Index))
		}
		switch entryType(l.Data[0]) {
		case entryApp:
			resp.data = f.sm.Apply(txn, l.Index, l.Data[1:])
		case entryInternal:
			applyInternal(txn, l)
		default:
			panic(fmt.Sprintf("raftnode: unknown entry type %d at index %d", l.Data[0], l.Index))
		}
	}
	// Other types (LogConfiguration) only advance the applied index.
	if err := txn.Set(appliedKey, binary.BigEndian.AppendUint64(nil, l.Index)); err != nil {
		if errors.Is(err, badger.ErrTxnTooBig) {
			return applyResult{}, true
		}
		panic(fmt.Sprintf("raftnode: set applied index %d: %v", l.Index, err))
	}
	return resp, false
}

func applyInternal(txn *badger.Txn, l *raft.Log) {
	m, err := decodeMeta(l.Data[1:])
	if err != nil {
		panic(fmt.Sprintf("raftnode: internal command at index %d: %v", l.Index, err))
	}
	switch m.op {
	case opSetMeta:
		err = txn.Set(metaKey(m.id), []byte(m.httpAddr))
	case opDeleteMeta:
		err = txn.Delete(metaKey(m.id))
	}
	if err != nil {
		panic(fmt.Errorf("raftnode: apply member meta at index %d: %w", l.Index, err))
	}
}

// memberMeta reads all member HTTP addresses.
func (f *fsm) memberMeta() map[string]string {
	out := map[string]string{}
	_ = f.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: metaPrefix, PrefetchValues: true, PrefetchSize: 16})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			v, err := item.ValueCopy(nil)
			if err != nil {
				return err
			}
			out[string(item.Key()[len(metaPrefix):])] = string(v)
		}
		return nil
	})
	return out
}

func (f *fsm) memberHTTP(id string) string {
	var addr string
	_ = f.view(func(txn *badger.Txn) error {
		item, err := txn.Get(metaKey(id))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		addr = string(v)
		return err
	})
	return addr
}

// Snapshot implements raft.FSM. It syncs the state DB (raft truncates the
// log up to the snapshot index afterwards, so state up to here must be
// durable) and pins a read txn; Persist streams it.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	h := f.acquire()
	if err := h.db.Sync(); err != nil {
		h.release()
		return nil, fmt.Errorf("sync state before snapshot: %w", err)
	}
	txn := h.db.NewTransaction(false)
	idx, err := txnApplied(txn)
	if err != nil {
		txn.Discard()
		h.release()
		return nil, err
	}
	return &fsmSnapshot{h: h, txn: txn, index: idx, logger: f.logger, metrics: f.metrics}, nil
}

// Restore implements raft.FSM (InstallSnapshot and user restore).
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	return f.restore(rc)
}

// restore loads a snapshot stream into a fresh DB in a new directory, makes
// it durable, records it as current and swaps it in.
func (f *fsm) restore(r io.Reader) error {
	f.mu.RLock()
	curDir := f.cur.dir
	f.mu.RUnlock()
	next, err := nextStateDir(curDir)
	if err != nil {
		return err
	}
	path := filepath.Join(f.dir, next)
	if err := os.RemoveAll(path); err != nil {
		return fmt.Errorf("restore: clear %s: %w", path, err)
	}
	h, err := f.openState(path)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	idx, err := readSnapshot(r, h.db)
	if err == nil {
		err = h.db.Sync()
	}
	if err == nil {
		err = writeStatePointer(f.dir, next)
	}
	if err != nil {
		h.remove.Store(true)
		h.release()
		return fmt.Errorf("restore: %w", err)
	}
	f.mu.Lock()
	old := f.cur
	f.cur = h
	f.mu.Unlock()
	old.remove.Store(true)
	old.release()
	f.setApplied(idx)
	f.metrics.snapshotRestores.Inc()
	f.logger.Info("State restored from snapshot", "index", idx, "dir", next)
	return nil
}

func nextStateDir(cur string) (string, error) {
	n, err := strconv.ParseUint(strings.TrimPrefix(filepath.Base(cur), stateDirPrefix), 10, 64)
	if err != nil {
		return "", fmt.Errorf("bad state dir name %q: %w", cur, err)
	}
	return stateDirPrefix + strconv.FormatUint(n+1, 10), nil
}

func readStatePointer(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateCurrentPtr))
	if errors.Is(err, os.ErrNotExist) {
		return stateDirPrefix + "0", nil
	}
	if err != nil {
		return "", fmt.Errorf("read state pointer: %w", err)
	}
	name := strings.TrimSpace(string(b))
	if _, err := nextStateDir(name); err != nil {
		return "", fmt.Errorf("read state pointer: %w", err)
	}
	return name, nil
}

// writeStatePointer atomically records name as the current state dir:
// write a temp file, fsync, rename, fsync the directory.
func writeStatePointer(dir, name string) error {
	tmp := filepath.Join(dir, stateCurrentPtr+".tmp")
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("write state pointer: %w", err)
	}
	_, err = fh.WriteString(name + "\n")
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, stateCurrentPtr))
	}
	if err != nil {
		return fmt.Errorf("write state pointer: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync data dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync data dir: %w", err)
	}
	return nil
}
