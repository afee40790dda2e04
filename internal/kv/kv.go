package kv

import (
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/dgraph-io/badger/v4"
)

// GetUint reads a big-endian uint64; absent (or not 8 bytes) reads as 0.
func GetUint(txn *badger.Txn, k []byte) (uint64, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		if len(b) == 8 {
			v = binary.BigEndian.Uint64(b)
		}
		return nil
	})
	return v, err
}

// SetUint writes v big-endian, so keys sort and read back the same.
func SetUint(txn *badger.Txn, k []byte, v uint64) error {
	return txn.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

// GetJSON decodes the value at k into v; false when k is absent.
func GetJSON(txn *badger.Txn, k []byte, v any) (bool, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error { return json.Unmarshal(b, v) })
}

// PutJSON stores v as JSON at k.
func PutJSON(txn *badger.Txn, k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return txn.Set(k, b)
}
