package audit

import (
	"encoding/binary"
	"slices"
	"testing"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/kv"
)

// mustOpenDB opens a Badger DB on disk under t.TempDir().
func mustOpenDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// keys lists the Raft indexes the trail holds, oldest first.
func keys(t *testing.T, db *badger.DB, tr Trail) []uint64 {
	t.Helper()
	var ids []uint64
	err := db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: tr.Prefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			ids = append(ids, binary.BigEndian.Uint64(k[len(k)-8:]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestTrail_Put(t *testing.T) {
	counted := Trail{Prefix: []byte("a/"), CountKey: []byte("m/acount"), Limit: 3}
	windowed := Trail{Prefix: []byte("a/"), Window: 10}
	tests := []struct {
		name      string
		trail     Trail
		indexes   []uint64
		want      []uint64
		wantCount uint64 // with CountKey
	}{
		{"counted under the limit", counted, []uint64{1, 2}, []uint64{1, 2}, 2},
		{"counted drops the oldest", counted, []uint64{1, 2, 3, 4, 5}, []uint64{3, 4, 5}, 3},
		{"windowed keeps the window", windowed, []uint64{1, 5, 10}, []uint64{1, 5, 10}, 0},
		{"windowed drops older", windowed, []uint64{1, 5, 12, 16}, []uint64{12, 16}, 0},
		{"windowed keeps the edge", windowed, []uint64{2, 12}, []uint64{2, 12}, 0},
		{"windowed drops 16 at a time", Trail{Prefix: []byte("a/"), Window: 100}, append(seq(1, 20), 200), append(seq(17, 20), 200), 0},
		{"unbounded", Trail{Prefix: []byte("x/")}, []uint64{1, 2, 3}, []uint64{1, 2, 3}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := mustOpenDB(t)
			for _, i := range tt.indexes {
				if err := db.Update(func(txn *badger.Txn) error { return tt.trail.Put(txn, i, relayEntry) }); err != nil {
					t.Fatalf("put %d: %v", i, err)
				}
			}
			if got := keys(t, db, tt.trail); !slices.Equal(got, tt.want) {
				t.Fatalf("kept %v, want %v", got, tt.want)
			}
			if tt.trail.CountKey != nil {
				var n uint64
				db.View(func(txn *badger.Txn) (err error) { n, err = kv.GetUint(txn, tt.trail.CountKey); return err })
				if n != tt.wantCount {
					t.Fatalf("count %d, want %d", n, tt.wantCount)
				}
			}
		})
	}
}

func seq(from, to uint64) []uint64 {
	var s []uint64
	for i := from; i <= to; i++ {
		s = append(s, i)
	}
	return s
}

func TestTrail_List(t *testing.T) {
	tr := Trail{Prefix: []byte("a/")}
	db := mustOpenDB(t)
	for _, i := range []uint64{3, 7, 9} {
		if err := db.Update(func(txn *badger.Txn) error { return tr.Put(txn, i, relayEntry) }); err != nil {
			t.Fatal(err)
		}
	}
	// A key of another prefix that sorts right after the trail's.
	db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("b/x"), []byte("{}")) })
	tests := []struct {
		name  string
		limit int
		want  []uint64
	}{
		{"all, newest first", 10, []uint64{9, 7, 3}},
		{"limited", 2, []uint64{9, 7}},
		{"none", 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Entry
			if err := db.View(func(txn *badger.Txn) (err error) { got, err = tr.List(txn, tt.limit); return err }); err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("List returned nil, want an empty slice (JSON [])")
			}
			var ids []uint64
			for _, e := range got {
				ids = append(ids, e.ID)
				if e.Who != relayEntry.Who || !e.Time.Equal(relayEntry.Time) {
					t.Fatalf("entry %+v", e)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Fatalf("ids %v, want %v", ids, tt.want)
			}
		})
	}
}
