package relay

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/audit"
)

// TestAuditApply: an audit command round-trips through Apply, is keyed by
// its Raft index and the trail keeps only the newest entries.
func TestAuditApply(t *testing.T) {
	db := newStateDB(t)
	at := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	want := AuditEntry{Time: at, Node: "r1", Who: "token:0123456789ab", Action: "POST /api/v1/cache/evict", From: "10.0.0.9", Result: "ok"}
	for i := uint64(1); i <= 5; i++ {
		if out := apply(t, db, 100+i, encodeAudit(want)); resultError(out) != nil {
			t.Fatalf("apply audit: %v", resultError(out))
		}
	}
	var ids []uint64
	var got AuditEntry
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAudit, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &got) })
			ids = append(ids, got.ID)
		}
		return nil
	})
	if len(ids) != 5 || ids[0] != 101 || ids[4] != 105 {
		t.Fatalf("audit ids %v, want 101..105", ids)
	}
	want.ID = 105
	if got != want {
		t.Fatalf("stored %+v, want %+v", got, want)
	}
	// The bound: with a limit of 3 the oldest entries go.
	db2 := newStateDB(t)
	for i := uint64(1); i <= 5; i++ {
		if err := db2.Update(func(txn *badger.Txn) error {
			return audit.Trail{Prefix: prefixAudit, CountKey: keyAuditCount, Limit: 3}.Put(txn, i, want)
		}); err != nil {
			t.Fatal(err)
		}
	}
	ids = nil
	db2.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixAudit})
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
