package kv

import (
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func TestRoundTrips(t *testing.T) {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	type doc struct{ A string }
	err = db.Update(func(txn *badger.Txn) error {
		if v, err := GetUint(txn, []byte("u")); err != nil || v != 0 {
			t.Errorf("absent uint = %d, %v", v, err)
		}
		if ok, err := GetJSON(txn, []byte("j"), &doc{}); ok || err != nil {
			t.Errorf("absent json = %v, %v", ok, err)
		}
		if err := SetUint(txn, []byte("u"), 1<<40+7); err != nil {
			return err
		}
		if err := txn.Set([]byte("short"), []byte{1, 2}); err != nil {
			return err
		}
		return PutJSON(txn, []byte("j"), doc{A: "x"})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(txn *badger.Txn) error {
		if v, err := GetUint(txn, []byte("u")); err != nil || v != 1<<40+7 {
			t.Errorf("uint = %d, %v", v, err)
		}
		if v, err := GetUint(txn, []byte("short")); err != nil || v != 0 {
			t.Errorf("a value that is not 8 bytes = %d, %v; want 0", v, err)
		}
		var d doc
		if ok, err := GetJSON(txn, []byte("j"), &d); !ok || err != nil || d.A != "x" {
			t.Errorf("json = %+v %v %v", d, ok, err)
		}
		if err := txn.Set(nil, nil); err == nil {
			t.Error("a write in a read-only transaction succeeded")
		}
		if _, err := GetJSON(txn, []byte("short"), &d); err == nil {
			t.Error("decoding bad JSON succeeded")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
