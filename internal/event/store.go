package event

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// Append stores e under prefix + big-endian id inside a Raft Apply txn and
// keeps at most limit events, deleting the oldest; countKey holds the count.
// Deterministic: it reads only txn state.
func Append(txn *badger.Txn, prefix, countKey []byte, id uint64, e Event, limit uint64) error {
	e.ID = id
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := txn.Set(binary.BigEndian.AppendUint64(append([]byte{}, prefix...), id), b); err != nil {
		return err
	}
	var n uint64
	item, err := txn.Get(countKey)
	switch {
	case err == nil:
		if err := item.Value(func(v []byte) error {
			if len(v) == 8 {
				n = binary.BigEndian.Uint64(v)
			}
			return nil
		}); err != nil {
			return err
		}
	case !errors.Is(err, badger.ErrKeyNotFound):
		return err
	}
	n++
	if n > limit {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefix
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
	return txn.Set(countKey, binary.BigEndian.AppendUint64(nil, n))
}

// Newest calls fn with the events stored under prefix (by Append), newest
// first, until fn says no more or fails.
func Newest(txn *badger.Txn, prefix []byte, fn func(e Event) (more bool, err error)) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.Reverse = true
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(binary.BigEndian.AppendUint64(append([]byte{}, prefix...), ^uint64(0))); it.Valid(); it.Next() {
		var e Event
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
			return err
		}
		if more, err := fn(e); err != nil || !more {
			return err
		}
	}
	return nil
}
