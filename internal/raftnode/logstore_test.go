package raftnode

import (
	"bytes"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

type logStableStore interface {
	raft.LogStore
	raft.StableStore
}

func storeImpls(t testing.TB) map[string]func() logStableStore {
	t.Helper()
	return map[string]func() logStableStore{
		"inmem": func() logStableStore { return raft.NewInmemStore() },
		"badger": func() logStableStore {
			s, err := OpenLogStore(t.TempDir(), testLogger(t))
			if err != nil {
				t.Fatalf("OpenLogStore: %v", err)
			}
			t.Cleanup(func() { _ = s.Close() })
			return s
		},
	}
}

func mkLog(idx uint64) *raft.Log {
	return &raft.Log{
		Index: idx, Term: idx/3 + 1, Type: raft.LogCommand,
		Data:       []byte{byte(idx), 1, 2, 3},
		Extensions: []byte("ext"),
		AppendedAt: time.Unix(1700000000, int64(idx)),
	}
}

func mkLogs(lo, hi uint64) []*raft.Log {
	var out []*raft.Log
	for i := lo; i <= hi; i++ {
		out = append(out, mkLog(i))
	}
	return out
}

func sameLog(a, b *raft.Log) bool {
	return a.Index == b.Index && a.Term == b.Term && a.Type == b.Type &&
		bytes.Equal(a.Data, b.Data) && bytes.Equal(a.Extensions, b.Extensions) &&
		a.AppendedAt.Equal(b.AppendedAt)
}

// TestLogStore_Conformance runs the same cases against raft.InmemStore and
// the Badger store.
func TestLogStore_Conformance(t *testing.T) {
	tests := []struct {
		name      string
		store     []*raft.Log
		del       [2]uint64 // DeleteRange args; zero = none
		wantFirst uint64
		wantLast  uint64
		present   []uint64
		absent    []uint64
	}{
		{name: "empty", absent: []uint64{0, 1, 2}},
		{name: "one", store: mkLogs(1, 1), wantFirst: 1, wantLast: 1, present: []uint64{1}, absent: []uint64{2}},
		{name: "many", store: mkLogs(1, 100), wantFirst: 1, wantLast: 100, present: []uint64{1, 50, 100}, absent: []uint64{0, 101}},
		{name: "not starting at one", store: mkLogs(40, 45), wantFirst: 40, wantLast: 45, present: []uint64{40, 45}, absent: []uint64{39, 46}},
		{name: "delete prefix", store: mkLogs(1, 10), del: [2]uint64{1, 5}, wantFirst: 6, wantLast: 10, present: []uint64{6, 10}, absent: []uint64{1, 5}},
		{name: "delete suffix", store: mkLogs(1, 10), del: [2]uint64{8, 10}, wantFirst: 1, wantLast: 7, present: []uint64{1, 7}, absent: []uint64{8, 10}},
		{name: "delete all", store: mkLogs(1, 10), del: [2]uint64{1, 10}, absent: []uint64{1, 10}},
		{name: "delete beyond range", store: mkLogs(5, 10), del: [2]uint64{1, 7}, wantFirst: 8, wantLast: 10, present: []uint64{8}, absent: []uint64{5, 7}},
		{name: "big index", store: []*raft.Log{mkLog(1 << 40), mkLog(1<<40 + 1)}, wantFirst: 1 << 40, wantLast: 1<<40 + 1, present: []uint64{1 << 40}},
	}
	for implName, open := range storeImpls(t) {
		for _, tt := range tests {
			t.Run(implName+"/"+tt.name, func(t *testing.T) {
				s := open()
				if len(tt.store) == 1 {
					if err := s.StoreLog(tt.store[0]); err != nil {
						t.Fatalf("StoreLog: %v", err)
					}
				} else if len(tt.store) > 0 {
					if err := s.StoreLogs(tt.store); err != nil {
						t.Fatalf("StoreLogs: %v", err)
					}
				}
				if tt.del != [2]uint64{} {
					if err := s.DeleteRange(tt.del[0], tt.del[1]); err != nil {
						t.Fatalf("DeleteRange: %v", err)
					}
				}
				if got, err := s.FirstIndex(); err != nil || got != tt.wantFirst {
					t.Errorf("FirstIndex() = %d, %v; want %d", got, err, tt.wantFirst)
				}
				if got, err := s.LastIndex(); err != nil || got != tt.wantLast {
					t.Errorf("LastIndex() = %d, %v; want %d", got, err, tt.wantLast)
				}
				for _, idx := range tt.present {
					var l raft.Log
					if err := s.GetLog(idx, &l); err != nil {
						t.Fatalf("GetLog(%d): %v", idx, err)
					}
					if want := mkLog(idx); !sameLog(&l, want) {
						t.Errorf("GetLog(%d) = %+v, want %+v", idx, l, *want)
					}
				}
				for _, idx := range tt.absent {
					var l raft.Log
					if err := s.GetLog(idx, &l); !errors.Is(err, raft.ErrLogNotFound) {
						t.Errorf("GetLog(%d) err = %v, want ErrLogNotFound", idx, err)
					}
				}
			})
		}
	}
}

func TestStableStore_Conformance(t *testing.T) {
	for implName, open := range storeImpls(t) {
		t.Run(implName, func(t *testing.T) {
			s := open()
			if _, err := s.Get([]byte("missing")); err == nil || err.Error() != "not found" {
				t.Errorf(`Get(missing) err = %v, want "not found"`, err)
			}
			if v, err := s.GetUint64([]byte("missing")); err != nil || v != 0 {
				t.Errorf("GetUint64(missing) = %d, %v; want 0, nil", v, err)
			}
			if err := s.Set([]byte("k"), []byte("v1")); err != nil {
				t.Fatal(err)
			}
			if err := s.Set([]byte("k"), []byte("v2")); err != nil {
				t.Fatal(err)
			}
			if v, err := s.Get([]byte("k")); err != nil || string(v) != "v2" {
				t.Errorf("Get(k) = %q, %v; want v2", v, err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 42); err != nil {
				t.Fatal(err)
			}
			if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 42 {
				t.Errorf("GetUint64 = %d, %v; want 42", v, err)
			}
			// raft's own existence check must work on our store.
			snaps := raft.NewInmemSnapshotStore()
			if has, err := raft.HasExistingState(s, s, snaps); err != nil || !has {
				t.Errorf("HasExistingState = %v, %v; want true", has, err)
			}
		})
	}
}

func TestLogStore_Reopen(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenLogStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(mkLogs(1, 20)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("term"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = OpenLogStore(dir, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if last, _ := s.LastIndex(); last != 20 {
		t.Errorf("LastIndex after reopen = %d, want 20", last)
	}
	if v, _ := s.GetUint64([]byte("term")); v != 7 {
		t.Errorf("term after reopen = %d, want 7", v)
	}
}

// TestLogStore_LargeBatch stores a batch bigger than one Badger transaction.
func TestLogStore_LargeBatch(t *testing.T) {
	s, err := OpenLogStore(t.TempDir(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var logs []*raft.Log
	for i := uint64(1); i <= 2000; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 4096)})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("StoreLogs: %v", err)
	}
	if last, _ := s.LastIndex(); last != 2000 {
		t.Fatalf("LastIndex = %d, want 2000", last)
	}
	var l raft.Log
	if err := s.GetLog(1999, &l); err != nil || l.Data[0] != byte(1999%256) || len(l.Data) != 4096 {
		t.Fatalf("GetLog(1999) = %v", err)
	}
}

func BenchmarkLogStore_StoreLogs(b *testing.B) {
	for _, size := range []int{256, 4096} {
		b.Run(byteSize(size), func(b *testing.B) {
			s, err := OpenLogStore(b.TempDir(), testLogger(b))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const batch = 32
			data := bytes.Repeat([]byte{7}, size)
			idx := uint64(1)
			b.SetBytes(int64(batch * size))
			b.ResetTimer()
			for b.Loop() {
				logs := make([]*raft.Log, batch)
				for i := range logs {
					logs[i] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
					idx++
				}
				if err := s.StoreLogs(logs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func byteSize(n int) string {
	if n >= 1024 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}
