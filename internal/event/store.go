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
