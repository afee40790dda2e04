package raftnode

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Key prefixes in the log DB. Log keys are the prefix plus the big-endian
// index, so Badger's key order is index order.
const (
	logKeyPrefix    byte = 'l'
	stableKeyPrefix byte = 's'
	logEncVersion   byte = 1
)

// LogStore is a raft.LogStore and raft.StableStore backed by one Badger DB
// opened with SyncWrites=true: raft assumes an acknowledged append or vote
// survives power loss.
type LogStore struct {
	db *badger.DB
}

var (
	_ raft.LogStore    = (*LogStore)(nil)
	_ raft.StableStore = (*LogStore)(nil)
)

// OpenLogStore opens (creating if needed) the log store in dir.
func OpenLogStore(dir string, logger *slog.Logger) (*LogStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	db, err := openBadger(badgerOptions(dir, true, logDBMagic, logger))
	if err != nil {
		return nil, fmt.Errorf("open raft log: %w", err)
	}
	return &LogStore{db: db}, nil
}

// Close closes the DB.
func (s *LogStore) Close() error { return s.db.Close() }

func logKey(idx uint64) []byte {
	k := make([]byte, 9)
	k[0] = logKeyPrefix
	binary.BigEndian.PutUint64(k[1:], idx)
	return k
}

func stableKey(key []byte) []byte {
	k := make([]byte, 0, 1+len(key))
	return append(append(k, stableKeyPrefix), key...)
}

// IsMonotonic makes raft delete every log entry after it installs a snapshot
// from the leader (raft.MonotonicLogStore). Otherwise raft keeps up to
// TrailingLogs entries below the snapshot, and a follower that had appended
// entries the snapshot superseded would keep them: stale entries inside a
// range the node reports as applied, which it could later serve as leader.
// hashicorp/raft calls deleting them "always correct"; it skips it only for
// BoltDB's sake, and our DeleteRange walks just the keys that exist.
func (s *LogStore) IsMonotonic() bool { return true }

var _ raft.MonotonicLogStore = (*LogStore)(nil)

// FirstIndex returns the first index written, 0 for no entries.
func (s *LogStore) FirstIndex() (uint64, error) { return s.edgeIndex(false) }

// LastIndex returns the last index written, 0 for no entries.
func (s *LogStore) LastIndex() (uint64, error) { return s.edgeIndex(true) }

func (s *LogStore) edgeIndex(last bool) (uint64, error) {
	var idx uint64
	err := s.db.View(func(txn *badger.Txn) error {
		opts := badger.IteratorOptions{Prefix: []byte{logKeyPrefix}, Reverse: last}
		it := txn.NewIterator(opts)
		defer it.Close()
		if last {
			it.Seek([]byte{logKeyPrefix, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
		} else {
			it.Seek([]byte{logKeyPrefix})
		}
		if it.Valid() {
			idx = binary.BigEndian.Uint64(it.Item().Key()[1:])
		}
		return nil
	})
	return idx, err
}

// GetLog gets the entry at index, or raft.ErrLogNotFound.
func (s *LogStore) GetLog(index uint64, log *raft.Log) error {
	return s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(logKey(index))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return raft.ErrLogNotFound
		}
		if err != nil {
			return fmt.Errorf("get log %d: %w", index, err)
		}
		return item.Value(func(v []byte) error {
			if err := decodeLog(v, log); err != nil {
				return fmt.Errorf("decode log %d: %w", index, err)
			}
			log.Index = index
			return nil
		})
	})
}

// StoreLog stores one entry.
func (s *LogStore) StoreLog(log *raft.Log) error { return s.StoreLogs([]*raft.Log{log}) }

// StoreLogs stores entries. A batch larger than one Badger transaction is
// split into several commits, in order; each commit is fsynced, so after a
// crash a prefix of the batch is stored, which raft tolerates.
func (s *LogStore) StoreLogs(logs []*raft.Log) error {
	txn := s.db.NewTransaction(true)
	defer func() { txn.Discard() }()
	for _, l := range logs {
		e := badger.NewEntry(logKey(l.Index), encodeLog(l))
		err := txn.SetEntry(e)
		if errors.Is(err, badger.ErrTxnTooBig) {
			if err := txn.Commit(); err != nil {
				return fmt.Errorf("store logs: %w", err)
			}
			txn = s.db.NewTransaction(true)
			err = txn.SetEntry(e)
		}
		if err != nil {
			return fmt.Errorf("store log %d: %w", l.Index, err)
		}
	}
	if err := txn.Commit(); err != nil {
		return fmt.Errorf("store logs: %w", err)
	}
	return nil
}

// DeleteRange deletes entries min..max inclusive. It walks only the keys
// that exist (keys-only iteration, no value reads), so deleting a
// compacted prefix costs one delete per stored entry.
func (s *LogStore) DeleteRange(minIdx, maxIdx uint64) error {
	if minIdx > maxIdx {
		return nil
	}
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte{logKeyPrefix}})
		defer it.Close()
		for it.Seek(logKey(minIdx)); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if binary.BigEndian.Uint64(k[1:]) > maxIdx {
				break
			}
			keys = append(keys, k)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete range %d-%d: %w", minIdx, maxIdx, err)
	}
	if len(keys) >= 2 && failpointEnabled(fpLogTruncate) {
		if err := s.deleteKeys(keys[:len(keys)/2]); err != nil {
			return fmt.Errorf("delete range %d-%d: %w", minIdx, maxIdx, err)
		}
		failpoint(fpLogTruncate)
	}
	if err := s.deleteKeys(keys); err != nil {
		return fmt.Errorf("delete range %d-%d: %w", minIdx, maxIdx, err)
	}
	return nil
}

func (s *LogStore) deleteKeys(keys [][]byte) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// Set implements raft.StableStore.
func (s *LogStore) Set(key, val []byte) error {
	return s.db.Update(func(txn *badger.Txn) error {
		return txn.Set(stableKey(key), append([]byte(nil), val...))
	})
}

// Get implements raft.StableStore. A missing key returns an error whose text
// is exactly "not found", which is what raft checks for.
func (s *LogStore) Get(key []byte) ([]byte, error) {
	var out []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(stableKey(key))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return errStableNotFound
		}
		if err != nil {
			return err
		}
		out, err = item.ValueCopy(nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// SetUint64 implements raft.StableStore.
func (s *LogStore) SetUint64(key []byte, val uint64) error {
	return s.Set(key, binary.BigEndian.AppendUint64(nil, val))
}

// GetUint64 implements raft.StableStore; a missing key is 0 with no error,
// as in raft.InmemStore.
func (s *LogStore) GetUint64(key []byte) (uint64, error) {
	v, err := s.Get(key)
	if errors.Is(err, errStableNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("stable key %q: bad uint64 length %d", key, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

// encodeLog: version, term (uvarint), type, appendedAt flag+unix nanos
// (varint), data and extensions (uvarint length + bytes). Index is in the key.
func encodeLog(l *raft.Log) []byte {
	b := make([]byte, 0, 1+10+1+1+10+10+len(l.Data)+10+len(l.Extensions))
	b = append(b, logEncVersion)
	b = binary.AppendUvarint(b, l.Term)
	b = append(b, byte(l.Type))
	if l.AppendedAt.IsZero() {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		b = binary.AppendVarint(b, l.AppendedAt.UnixNano())
	}
	b = binary.AppendUvarint(b, uint64(len(l.Data)))
	b = append(b, l.Data...)
	b = binary.AppendUvarint(b, uint64(len(l.Extensions)))
	b = append(b, l.Extensions...)
	return b
}

var errShortLog = errors.New("truncated log entry")

func decodeLog(b []byte, l *raft.Log) error {
	if len(b) < 1 || b[0] != logEncVersion {
		return fmt.Errorf("unknown log encoding %v", b[:min(1, len(b))])
	}
	b = b[1:]
	term, n := binary.Uvarint(b)
	if n <= 0 || len(b) < n+2 {
		return errShortLog
	}
	b = b[n:]
	*l = raft.Log{Term: term, Type: raft.LogType(b[0])}
	flag := b[1]
	b = b[2:]
	if flag == 1 {
		ns, n := binary.Varint(b)
		if n <= 0 {
			return errShortLog
		}
		l.AppendedAt = time.Unix(0, ns)
		b = b[n:]
	}
	var err error
	if l.Data, b, err = readBytes(b); err != nil {
		return err
	}
	if l.Extensions, _, err = readBytes(b); err != nil {
		return err
	}
	return nil
}

func readBytes(b []byte) (out, rest []byte, err error) {
	ln, n := binary.Uvarint(b)
	if n <= 0 || uint64(len(b)-n) < ln {
		return nil, nil, errShortLog
	}
	if ln == 0 {
		return nil, b[n:], nil
	}
	out = make([]byte, ln)
	copy(out, b[n:n+int(ln)])
	return out, b[n+int(ln):], nil
}
