package raftnode

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// kvSM is the test state machine. Commands:
//
//	set <key> <value>          -> "ok <index>"
//	fill <prefix> <n> <size>   writes n keys of size bytes
type kvSM struct {
	calls atomic.Int64
}

func (s *kvSM) Apply(txn *badger.Txn, index uint64, cmd []byte) []byte {
	s.calls.Add(1)
	f := strings.Fields(string(cmd))
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	switch {
	case len(f) == 3 && f[0] == "set":
		must(txn.Set([]byte("k/"+f[1]), []byte(f[2])))
	case len(f) == 4 && f[0] == "fill":
		n, _ := strconv.Atoi(f[2])
		size, _ := strconv.Atoi(f[3])
		for i := range n {
			must(txn.Set(fmt.Appendf(nil, "k/%s/%06d", f[1], i), bytes.Repeat([]byte{'x'}, size)))
		}
	default:
		return []byte("bad command")
	}
	return fmt.Appendf(nil, "ok %d", index)
}

func getKey(t testing.TB, view func(func(*badger.Txn) error) error, key string) (string, error) {
	t.Helper()
	var val string
	err := view(func(txn *badger.Txn) error {
		item, err := txn.Get([]byte("k/" + key))
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		val = string(v)
		return err
	})
	return val, err
}

func newTestFSM(t testing.TB, dir string) (*fsm, *kvSM) {
	t.Helper()
	m, err := newMetrics(nil)
	if err != nil {
		t.Fatal(err)
	}
	sm := &kvSM{}
	f, err := openFSM(dir, sm, testLogger(t), m)
	if err != nil {
		t.Fatalf("openFSM: %v", err)
	}
	t.Cleanup(f.close)
	return f, sm
}

func cmdLog(idx uint64, cmd string) *raft.Log {
	return &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: frameApp([]byte(cmd))}
}

func TestFSM_ApplyBatch(t *testing.T) {
	f, sm := newTestFSM(t, t.TempDir())
	logs := []*raft.Log{
		cmdLog(1, "set a 1"),
		{Index: 2, Term: 1, Type: raft.LogConfiguration},
		cmdLog(3, "set b 2"),
		{Index: 4, Term: 1, Type: raft.LogCommand, Data: encodeMeta(metaCmd{op: opSetMeta, id: "n1", httpAddr: "http://x"})},
	}
	resps := f.ApplyBatch(logs)
	if got := string(resps[0].(applyResult).data); got != "ok 1" {
		t.Errorf("resp[0] = %q", got)
	}
	if got := string(resps[2].(applyResult).data); got != "ok 3" {
		t.Errorf("resp[2] = %q", got)
	}
	if f.applied.Load() != 4 {
		t.Errorf("applied = %d, want 4", f.applied.Load())
	}
	if v, err := getKey(t, f.view, "b"); err != nil || v != "2" {
		t.Errorf("b = %q, %v", v, err)
	}
	if got := f.memberHTTP("n1"); got != "http://x" {
		t.Errorf("memberHTTP = %q", got)
	}
	// Replay (as after a restart) is skipped up to the stored applied index.
	calls := sm.calls.Load()
	resps = f.ApplyBatch([]*raft.Log{cmdLog(3, "set b 3"), cmdLog(5, "set c 5")})
	if resps[0] != nil {
		t.Errorf("replayed entry got response %v", resps[0])
	}
	if d := sm.calls.Load() - calls; d != 1 {
		t.Errorf("Apply calls = %d, want 1", d)
	}
	if v, _ := getKey(t, f.view, "b"); v != "2" {
		t.Errorf("b after replay = %q, want 2", v)
	}
}

// TestFSM_ApplyBatchSplitsTooBig applies a batch whose effects exceed one
// Badger transaction; every entry must land exactly once.
func TestFSM_ApplyBatchSplitsTooBig(t *testing.T) {
	dir := t.TempDir()
	f, _ := newTestFSM(t, dir)
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		// ~3000 * 150 B = ~450 KB of txn per entry; 20 entries >> 2.4 MB.
		logs = append(logs, cmdLog(i, fmt.Sprintf("fill p%d 3000 100", i)))
	}
	resps := f.ApplyBatch(logs)
	for i, r := range resps {
		if got, want := string(r.(applyResult).data), fmt.Sprintf("ok %d", i+1); got != want {
			t.Fatalf("resp[%d] = %q, want %q", i, got, want)
		}
	}
	if splits := counterValue(t, f.metrics.applyTxnSplits); splits < 1 {
		t.Errorf("splits = %v, want >= 1", splits)
	}
	if f.applied.Load() != 20 {
		t.Errorf("applied = %d", f.applied.Load())
	}
	var n int
	_ = f.view(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("k/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			n++
		}
		return nil
	})
	if n != 20*3000 {
		t.Errorf("keys = %d, want %d", n, 20*3000)
	}
	if got := counterValue(t, f.metrics.appliedEntries); got != 20 {
		t.Errorf("applied entries metric = %v, want 20", got)
	}
}

// memSink is a raft.SnapshotSink in memory.
type memSink struct {
	bytes.Buffer
	canceled, closed bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.canceled = true; return nil }
func (s *memSink) Close() error  { s.closed = true; return nil }

func persist(t testing.TB, f *fsm) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.canceled {
		t.Fatalf("sink closed=%v canceled=%v", sink.closed, sink.canceled)
	}
	return sink.Bytes()
}

func TestSnapshot_RoundTrip(t *testing.T) {
	src, _ := newTestFSM(t, t.TempDir())
	src.ApplyBatch([]*raft.Log{cmdLog(1, "set a 1"), cmdLog(2, "fill big 10 100000"), cmdLog(3, "set b 2")})
	data := persist(t, src)
	// Writes after Snapshot() must not leak into the persisted view.
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	src.ApplyBatch([]*raft.Log{cmdLog(4, "set late 1")})
	var sink memSink
	if err := snap.Persist(&sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dir := t.TempDir()
	dst, _ := newTestFSM(t, dir)
	dst.ApplyBatch([]*raft.Log{cmdLog(1, "set stale 1")})
	if err := dst.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if dst.applied.Load() != 3 {
		t.Errorf("applied = %d, want 3", dst.applied.Load())
	}
	if v, _ := getKey(t, dst.view, "b"); v != "2" {
		t.Errorf("b = %q", v)
	}
	if _, err := getKey(t, dst.view, "stale"); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Errorf("stale key survived restore: %v", err)
	}
	if v, _ := getKey(t, dst.view, "big/000009"); len(v) != 100000 {
		t.Errorf("big value len = %d", len(v))
	}
	if name, _ := readStatePointer(dir); name != "state-1" {
		t.Errorf("state pointer = %q, want state-1", name)
	}

	// The second snapshot was taken before "late" was applied.
	dst2, _ := newTestFSM(t, t.TempDir())
	if err := dst2.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if _, err := getKey(t, dst2.view, "late"); !errors.Is(err, badger.ErrKeyNotFound) {
		t.Errorf("late write visible in earlier snapshot: %v", err)
	}
}

func TestSnapshot_RejectsBadInput(t *testing.T) {
	src, _ := newTestFSM(t, t.TempDir())
	src.ApplyBatch([]*raft.Log{cmdLog(1, "set a 1"), cmdLog(2, "set b 2")})
	good := persist(t, src)
	tests := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"bad magic", append([]byte("XXXX"), good[4:]...)},
		{"bad version", append(append(append([]byte(nil), good[:4]...), 9), good[5:]...)},
		{"truncated", good[:len(good)-5]},
		{"header only", good[:snapHeaderLen]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dst, _ := newTestFSM(t, dir)
			dst.ApplyBatch([]*raft.Log{cmdLog(1, "set keep 1")})
			err := dst.Restore(io.NopCloser(bytes.NewReader(tt.data)))
			if err == nil {
				t.Fatal("Restore succeeded on bad input")
			}
			if v, _ := getKey(t, dst.view, "keep"); v != "1" {
				t.Errorf("state changed by failed restore: keep=%q", v)
			}
			if name, _ := readStatePointer(dir); name != "state-0" {
				t.Errorf("pointer moved to %q", name)
			}
		})
	}
}

func FuzzReadSnapshot(f *testing.F) {
	src, _ := newTestFSM(f, f.TempDir())
	src.ApplyBatch([]*raft.Log{cmdLog(1, "set a 1")})
	f.Add(persist(f, src))
	f.Add([]byte("ESRS\x01\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		_, _ = readSnapshot(bytes.NewReader(data), db)
	})
}

// counterValue reads a counter (prometheus/testutil would need a go.sum
// entry outside this package's remit).
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
