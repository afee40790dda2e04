package event

import (
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestAppendKeepsNewest(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id := uint64(1); id <= 5; id++ {
		if err := db.Update(func(txn *badger.Txn) error {
			return Append(txn, []byte("e/"), []byte("m/n"), id, Event{Number: int(id)}, 3)
		}); err != nil {
			t.Fatal(err)
		}
	}
	var ids []uint64
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("e/")})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			ids = append(ids, uint64(k[len(k)-1]))
		}
		return nil
	})
	if len(ids) != 3 || ids[0] != 3 || ids[2] != 5 {
		t.Fatalf("kept %v, want the newest three [3 4 5]", ids)
	}
}

// Newest reads newest first, stops when asked, and sees only its prefix.
func TestNewest(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for id := uint64(1); id <= 5; id++ {
		if err := db.Update(func(txn *badger.Txn) error {
			if err := Append(txn, []byte("e/"), []byte("m/n"), id, Event{Number: int(id)}, 10); err != nil {
				return err
			}
			return Append(txn, []byte("f/"), []byte("m/f"), id, Event{Number: 100 + int(id)}, 10)
		}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		stopAfter int
		want      []int
	}{{2, []int{5, 4}}, {10, []int{5, 4, 3, 2, 1}}} {
		var got []int
		if err := db.View(func(txn *badger.Txn) error {
			return Newest(txn, []byte("e/"), func(e Event) (bool, error) {
				got = append(got, e.Number)
				return len(got) < tc.stopAfter, nil
			})
		}); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("Newest stopping after %d = %v, want %v", tc.stopAfter, got, tc.want)
		}
	}
}
