package audit

import (
	"encoding/binary"
	"encoding/json"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/kv"
)

// Trail is where a node keeps its audit trail in its Badger state, and how
// it is bounded. Entries live at Prefix + the big-endian Raft index, as the
// Entry's JSON, so they list in index order. Exactly one bound applies:
//
//   - Limit (relay): at most Limit entries; the count lives at CountKey and
//     each Put beyond it drops the oldest entry.
//   - Window (central): each Put drops (up to 16) entries older than Window
//     Raft indexes, with no counter.
//
// Both are deterministic, so every replica keeps the same trail.
type Trail struct {
	Prefix   []byte
	CountKey []byte // with Limit
	Limit    uint64
	Window   uint64
}

// windowDrop bounds the entries one Put deletes under Window, so an Apply
// stays small after a long gap.
const windowDrop = 16

func (t Trail) key(index uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{}, t.Prefix...), index)
}

// Put stores e as the entry of Raft index index (its ID) and applies the
// trail's bound, in txn.
func (t Trail) Put(txn *badger.Txn, index uint64, e Entry) error {
	e.ID = index
	if err := kv.PutJSON(txn, t.key(index), e); err != nil {
		return err
	}
	switch {
	case t.Limit > 0:
		return t.count(txn)
	case t.Window > 0:
		return t.window(txn, index)
	}
	return nil
}

// count bumps the entry count and drops the oldest entry past Limit.
func (t Trail) count(txn *badger.Txn) error {
	n, err := kv.GetUint(txn, t.CountKey)
	if err != nil {
		return err
	}
	n++
	if n > t.Limit {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = t.Prefix
		it := txn.NewIterator(opts)
		it.Rewind()
		var oldest []byte
		if it.Valid() {
			oldest = it.Item().KeyCopy(nil)
		}
		it.Close()
		if oldest != nil {
			if err := txn.Delete(oldest); err != nil {
				return err
			}
			n--
		}
	}
	return kv.SetUint(txn, t.CountKey, n)
}

// window drops up to windowDrop entries older than index-Window.
func (t Trail) window(txn *badger.Txn, index uint64) error {
	if index <= t.Window {
		return nil
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = t.Prefix
	it := txn.NewIterator(opts)
	var old [][]byte
	for it.Rewind(); it.Valid() && len(old) < windowDrop; it.Next() {
		k := it.Item().KeyCopy(nil)
		if binary.BigEndian.Uint64(k[len(k)-8:]) >= index-t.Window {
			break
		}
		old = append(old, k)
	}
	it.Close()
	for _, k := range old {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// List returns up to limit entries, newest first (an empty, non-nil slice
// when there are none, so it serves as JSON []).
func (t Trail) List(txn *badger.Txn, limit int) ([]Entry, error) {
	out := []Entry{}
	opts := badger.DefaultIteratorOptions
	opts.Prefix = t.Prefix
	opts.Reverse = true
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(t.key(^uint64(0))); it.Valid() && len(out) < limit; it.Next() {
		var e Entry
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
			return out, err
		}
		out = append(out, e)
	}
	return out, nil
}
