package fuzzx

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

// Machine is the state machine under test.
type Machine struct {
	Apply  func(txn *badger.Txn, index uint64, cmd []byte) []byte
	Result func(out []byte) error // Apply's answer as an error (nil: applied)
}

// State opens an in-memory Badger DB (closed at cleanup), commits seeds at
// Raft indexes 1, 2, ... (each must apply without an error result) and
// returns it with its Dump.
func (m Machine) State(tb testing.TB, seeds [][]byte) (*badger.DB, string) {
	tb.Helper()
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	for i, cmd := range seeds {
		if err := db.Update(func(txn *badger.Txn) error {
			return m.Result(m.Apply(txn, uint64(i+1), cmd))
		}); err != nil {
			tb.Fatalf("seed %d: %v", i, err)
		}
	}
	return db, Dump(db.NewTransaction(false))
}

// Check applies cmd at index to db's state twice, in transactions it
// discards. An error result must leave the state as base; both runs must
// agree on the result and the state.
func (m Machine) Check(t *testing.T, db *badger.DB, base string, index uint64, cmd []byte) {
	t.Helper()
	run := func() ([]byte, string) {
		txn := db.NewTransaction(true)
		out := m.Apply(txn, index, cmd)
		return out, Dump(txn)
	}
	out, after := run()
	if err := m.Result(out); err != nil && after != base {
		t.Fatalf("error result %v, yet the state changed", err)
	}
	if out2, after2 := run(); !bytes.Equal(out, out2) || after != after2 {
		t.Fatal("the same entry applied to the same state diverged")
	}
}

// Dump renders every key and value txn sees (pending writes included) and
// discards txn.
func Dump(txn *badger.Txn) string {
	defer txn.Discard()
	var buf bytes.Buffer
	it := txn.NewIterator(badger.DefaultIteratorOptions)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		v, _ := it.Item().ValueCopy(nil)
		fmt.Fprintf(&buf, "%q=%q\n", it.Item().Key(), v)
	}
	return buf.String()
}
