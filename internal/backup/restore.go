package backup

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/raft"

	"github.com/edgesync/edgesync/internal/raftnode"
)

// ErrNotEmpty is returned when restoring into a data dir already in use.
var ErrNotEmpty = errors.New("backup: data dir is not empty (restore into a new one)")

// Restore checks the backup in src and installs it as the only snapshot of
// a new data dir for node nodeID at raftAddr. Started with --bootstrap on
// that dir, the node restores its state DB from it and forms a one-node
// cluster that holds exactly the backed-up state; others join it as usual.
func Restore(src io.ReadSeeker, dataDir, nodeID, raftAddr string) (Info, error) {
	info, err := Scan(src, nil) // refuse a newer format or a damaged file before touching the disk
	if err != nil {
		return info, err
	}
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return info, err
	}
	if entries, err := os.ReadDir(dataDir); err == nil && len(entries) > 0 {
		return info, fmt.Errorf("%w: %s", ErrNotEmpty, dataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return info, err
	}
	snapDir := filepath.Join(dataDir, "snapshots")
	if err := os.MkdirAll(snapDir, 0o700); err != nil {
		return info, err
	}
	store, err := raft.NewFileSnapshotStoreWithLogger(snapDir, 2, nil)
	if err != nil {
		return info, err
	}
	_, trans := raft.NewInmemTransport(raft.ServerAddress(raftAddr))
	conf := raft.Configuration{Servers: []raft.Server{{Suffrage: raft.Voter, ID: raft.ServerID(nodeID), Address: raft.ServerAddress(raftAddr)}}}
	idx := max(info.Index, 1)
	sink, err := store.Create(raft.SnapshotVersionMax, idx, 1, conf, idx, trans)
	if err != nil {
		return info, err
	}
	if _, err := io.Copy(sink, src); err != nil {
		sink.Cancel()
		return info, fmt.Errorf("backup: write snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return info, fmt.Errorf("backup: write snapshot: %w", err)
	}
	return info, nil
}

// Report is the result of checking a stopped node's data dir.
type Report struct {
	StateDir      string         `json:"state_dir"`
	AppliedIndex  uint64         `json:"applied_index"`
	Keys          uint64         `json:"keys"`
	ByKind        map[string]int `json:"by_kind"`
	LogFirst      uint64         `json:"log_first_index"`
	LogLast       uint64         `json:"log_last_index"`
	SnapshotIndex uint64         `json:"snapshot_index"`
	Snapshots     int            `json:"snapshots"`
	Problems      []string       `json:"problems,omitempty"`
}

// Verify checks the data dir of a stopped node: every state DB key readable
// (Badger verifies block checksums on read), JSON values decode, the applied
// index is covered by the Raft log or a snapshot, the log has no holes, and
// the latest snapshot reads back completely.
func Verify(dataDir string) (Report, error) {
	rep := Report{ByKind: map[string]int{}}
	problem := func(f string, a ...any) { rep.Problems = append(rep.Problems, fmt.Sprintf(f, a...)) }
	name := "state-0"
	if b, err := os.ReadFile(filepath.Join(dataDir, "state.current")); err == nil {
		name = strings.TrimSpace(string(b))
	}
	rep.StateDir = name
	if _, err := os.Stat(filepath.Join(dataDir, "raft")); err != nil {
		return rep, fmt.Errorf("%s is not a node data dir: %w", dataDir, err)
	}
	opts := badger.DefaultOptions(filepath.Join(dataDir, name)).WithReadOnly(true).WithExternalMagic(0xE502).
		WithLogger(nil).WithCompression(options.None).WithBlockCacheSize(0).WithIndexCacheSize(8 << 20).WithChecksumVerificationMode(options.OnTableRead)
	if _, err := os.Stat(opts.Dir); err == nil {
		db, err := badger.Open(opts)
		if err != nil {
			return rep, fmt.Errorf("open state DB (is the node stopped?): %w", err)
		}
		err = db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 64})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				item := it.Item()
				k := item.KeyCopy(nil)
				err := item.Value(func(v []byte) error {
					if bytes.Equal(k, appliedKey) && len(v) == 8 {
						rep.AppliedIndex = uint64(v[0])<<56 | uint64(v[1])<<48 | uint64(v[2])<<40 | uint64(v[3])<<32 | uint64(v[4])<<24 | uint64(v[5])<<16 | uint64(v[6])<<8 | uint64(v[7])
					}
					switch kind(k) {
					case "d/", "s/", "e/", "a/", "k/":
						if len(v) > 0 && v[0] == '{' && !json.Valid(v) {
							problem("key %q: value is not valid JSON", k)
						}
					}
					return nil
				})
				if err != nil {
					return fmt.Errorf("read key %q: %w", k, err)
				}
				rep.Keys++
				rep.ByKind[kind(k)]++
			}
			return nil
		})
		db.Close()
		if err != nil {
			problem("state DB: %v", err)
		}
	} else {
		problem("state DB %s missing (the node restores it from the latest snapshot on start)", name)
	}

	ls, err := raftnode.OpenLogStore(filepath.Join(dataDir, "raft"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return rep, fmt.Errorf("open raft log (is the node stopped?): %w", err)
	}
	rep.LogFirst, _ = ls.FirstIndex()
	rep.LogLast, _ = ls.LastIndex()
	var l raft.Log
	for i := rep.LogFirst; i > 0 && i <= rep.LogLast; i++ {
		if err := ls.GetLog(i, &l); err != nil {
			problem("raft log entry %d: %v", i, err)
			break
		}
	}
	ls.Close()

	snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dataDir, "snapshots"), 2, nil)
	if err == nil {
		list, _ := snaps.List()
		rep.Snapshots = len(list)
		if len(list) > 0 {
			rep.SnapshotIndex = list[0].Index
			_, rc, err := snaps.Open(list[0].ID)
			if err == nil {
				_, err = Scan(rc, nil)
				rc.Close()
			}
			if err != nil {
				problem("latest snapshot %s: %v", list[0].ID, err)
			}
		}
	}
	covered := max(rep.LogLast, rep.SnapshotIndex)
	if rep.AppliedIndex > covered {
		problem("applied index %d is beyond the raft log (%d) and snapshot (%d)", rep.AppliedIndex, rep.LogLast, rep.SnapshotIndex)
	}
	if rep.LogFirst > 0 && rep.SnapshotIndex+1 < rep.LogFirst && rep.AppliedIndex+1 < rep.LogFirst {
		problem("raft log starts at %d but state and snapshot stop at %d: entries are missing", rep.LogFirst, max(rep.AppliedIndex, rep.SnapshotIndex))
	}
	return rep, nil
}
