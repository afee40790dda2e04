package raftnode

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/y"
)

// buildDataDir runs a one-node cluster that writes state with values in
// both the LSM and the value logs (state DB and raft log DB), takes a
// snapshot and stops cleanly. It returns the data dir.
func buildDataDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "n1")
	n := startNode(t, "n1", dir, "", nil)
	if err := n.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitLeader(testCtx(t, waitTimeout)); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, n, "fill small 200 64")                     // LSM values
	mustPropose(t, n, "fill big 200 2048")                     // state value log (> 512 B)
	mustPropose(t, n, "set huge "+strings.Repeat("h", 80<<10)) // raft log value log (> 64 KiB)
	if err := n.Snapshot(); err != nil {
		t.Fatal(err)
	}
	mustPropose(t, n, "set after 1")
	n.stop()
	return dir
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// pickFile returns the largest file in dir/sub matching suffix.
func pickFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	var best string
	var size int64
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, suffix) {
			if fi, err := d.Info(); err == nil && fi.Size() > size {
				best, size = p, fi.Size()
			}
		}
		return nil
	})
	if best == "" {
		t.Fatalf("no %s file under %s", suffix, dir)
	}
	return best
}

func flipByte(t *testing.T, path string, at float64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := int(float64(len(b)) * at)
	b[i] ^= 0x5a
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func stateDir(t *testing.T, dir string) string {
	t.Helper()
	name, err := readStatePointer(dir)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, name)
}

// TestCheckDir_DetectsCorruption damages one file at a time and checks
// that the node refuses to start with an error naming it.
func TestCheckDir_DetectsCorruption(t *testing.T) {
	base := buildDataDir(t)
	if err := CheckDir(base); err != nil {
		t.Fatalf("CheckDir on a clean dir: %v", err)
	}
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the damaged file
	}{
		{"state sst", func(t *testing.T, dir string) string {
			p := pickFile(t, stateDir(t, dir), ".sst")
			flipByte(t, p, 0.3)
			return p
		}},
		{"state vlog", func(t *testing.T, dir string) string {
			p := pickFile(t, stateDir(t, dir), ".vlog")
			flipByte(t, p, 0.5)
			return p
		}},
		{"state MANIFEST", func(t *testing.T, dir string) string {
			p := filepath.Join(stateDir(t, dir), "MANIFEST")
			flipByte(t, p, 0.6)
			return p
		}},
		{"raft log sst", func(t *testing.T, dir string) string {
			p := pickFile(t, filepath.Join(dir, "raft"), ".sst")
			flipByte(t, p, 0.3)
			return p
		}},
		{"raft log vlog", func(t *testing.T, dir string) string {
			p := pickFile(t, filepath.Join(dir, "raft"), ".vlog")
			flipByte(t, p, 0.5)
			return p
		}},
		{"raft log MANIFEST", func(t *testing.T, dir string) string {
			p := filepath.Join(dir, "raft", "MANIFEST")
			flipByte(t, p, 0.6)
			return p
		}},
		{"snapshot flipped", func(t *testing.T, dir string) string {
			p := pickFile(t, filepath.Join(dir, "snapshots"), "state.bin")
			flipByte(t, p, 0.5)
			return p
		}},
		{"snapshot truncated", func(t *testing.T, dir string) string {
			p := pickFile(t, filepath.Join(dir, "snapshots"), "state.bin")
			fi, _ := os.Stat(p)
			if err := os.Truncate(p, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return p
		}},
		{"snapshot meta", func(t *testing.T, dir string) string {
			p := pickFile(t, filepath.Join(dir, "snapshots"), "meta.json")
			if err := os.WriteFile(p, []byte(`{"ID":`), 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyDir(t, base)
			damaged := tt.damage(t, dir)
			cfg := testConfig(t, "n1", dir, "127.0.0.1:0", "http://127.0.0.1:1")
			n, err := New(cfg, &kvSM{})
			if err == nil {
				n.Close()
				t.Fatalf("New started on a dir with %s damaged", damaged)
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("New error = %v, want a CorruptError", err)
			}
			if ce.Path != damaged || !strings.Contains(err.Error(), "rejoin") {
				t.Errorf("error %q: want it to name %s and the runbook", err, damaged)
			}
		})
	}
}

// TestCheckLogFile_TornTailIsNotDamage: a value log cut in the middle of
// its last entry, or with a bad last entry followed by zeros, is what power
// loss leaves; Badger truncates it and so do we.
func TestCheckLogFile_TornTailIsNotDamage(t *testing.T) {
	base := buildDataDir(t)
	p := pickFile(t, stateDir(t, base), ".vlog")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.vlog")
	if err := os.WriteFile(cut, b[:len(b)-100], 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkLogFile(cut); err != nil {
		t.Errorf("cut tail: %v", err)
	}
	// A copy into the mmap'd file cut by SIGKILL: the entry's end is zero.
	tail := slices.Clone(b)
	clear(tail[len(tail)-100:])
	tail = append(tail, make([]byte, 4096)...)
	if err := os.WriteFile(cut, tail, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkLogFile(cut); err != nil {
		t.Errorf("half-written last entry then zeros: %v", err)
	}
	// The same entry complete but with a flipped byte is damage.
	flipped := slices.Clone(b)
	flipped[len(flipped)-10] ^= 0xff
	if err := os.WriteFile(cut, flipped, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := checkLogFile(cut); !errors.Is(err, ErrCorrupt) {
		t.Errorf("flipped byte in the last entry: %v, want ErrCorrupt", err)
	}
}

// TestRunbook_WipeAndRejoin is the runbook on an in-process cluster: a
// follower's state DB is damaged, it refuses to start, it is removed and
// wiped, and it rejoins empty and catches up by InstallSnapshot.
func TestRunbook_WipeAndRejoin(t *testing.T) {
	small := func(c *Config) {
		c.TrailingLogs = 4
		c.SnapshotThreshold = 1 << 30
		// A loaded 2-core machine: no elections from slow scheduling.
		c.HeartbeatTimeout, c.ElectionTimeout, c.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	}
	c := newCluster(t, 3, small)
	l := c.leader()
	for i := range 20 {
		mustPropose(t, l, fmt.Sprintf("set k%d v%d", i, i))
	}
	mustPropose(t, l, "fill big 100 2048")
	f := c.follower()
	waitKey(t, f, "big/000099", strings.Repeat("x", 2048))
	id, dir, addr := f.id, f.dir, f.raftAddr
	f.stop()
	for _, n := range c.live() {
		if err := n.Snapshot(); err != nil {
			t.Fatal(err)
		}
	}
	mustPropose(t, c.leader(), "set after-snap 1")

	vlog := pickFile(t, stateDir(t, dir), ".vlog")
	flipByte(t, vlog, 0.5)
	if n, err := New(testConfig(t, id, dir, addr, "http://127.0.0.1:1"), &kvSM{}); !errors.Is(err, ErrCorrupt) {
		if n != nil {
			n.Close()
		}
		fi, _ := os.Stat(vlog)
		t.Fatalf("New with %s (%d bytes) damaged: %v, want ErrCorrupt", vlog, fi.Size(), err)
	}

	l = c.leader()
	if err := RemoveMember(testCtx(t, waitTimeout), c.follower().url, id, nil); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if len(l.Members()) != 2 {
		t.Fatalf("members after remove: %+v", l.Members())
	}
	res, err := Wipe(dir, time.Now())
	if err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	if res.MovedTo == "" || !slices.Contains(res.Moved, "raft") {
		t.Fatalf("Wipe moved %+v", res)
	}
	if _, err := os.Stat(filepath.Join(res.MovedTo, "raft")); err != nil {
		t.Fatalf("damaged raft log not kept: %v", err)
	}

	r := startNode(t, id, dir, addr, small)
	if err := r.Bootstrap(); !errors.Is(err, ErrRejoinPending) {
		t.Fatalf("Bootstrap on a wiped dir: %v, want ErrRejoinPending", err)
	}
	if err := r.Join(testCtx(t, waitTimeout), l.url); err != nil {
		t.Fatalf("Join: %v", err)
	}
	c.nodes = append(c.nodes, r)
	waitKey(t, r, "after-snap", "1")
	waitKey(t, r, "k0", "v0")
	if got := counterValue(t, r.metrics.snapshotRestores); got < 1 {
		t.Errorf("snapshot restores = %v, want >= 1 (InstallSnapshot)", got)
	}
	if _, err := os.Stat(filepath.Join(dir, RejoinMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rejoin marker still there after Join: %v", err)
	}
	c.waitMembers(3)
}

// TestWipe_RefusesRunningNode: Wipe must not pull data from under a live node.
func TestWipe_RefusesRunningNode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	n := startNode(t, "n1", dir, "", nil)
	if _, err := Wipe(dir, time.Now()); !errors.Is(err, ErrInUse) {
		t.Fatalf("Wipe of a running node: %v, want ErrInUse", err)
	}
	n.stop()
}

// BenchmarkBadgerChecksums measures the read-time checksum options
// (OnBlockRead, VerifyValueChecksum) on point reads of values in the LSM
// and in the value log, and a full scan; and CheckDir's start-up cost.
func BenchmarkBadgerChecksums(b *testing.B) {
	const keys = 20000
	build := func(b *testing.B, valSize int) string {
		dir := b.TempDir()
		db, err := badger.Open(badgerOptions(dir, false, stateDBMagic, testLogger(b)).WithValueThreshold(stateValueThreshold))
		if err != nil {
			b.Fatal(err)
		}
		wb := db.NewWriteBatch()
		val := make([]byte, valSize)
		for i := range keys {
			if err := wb.Set(fmt.Appendf(nil, "k/%08d", i), val); err != nil {
				b.Fatal(err)
			}
		}
		if err := wb.Flush(); err != nil {
			b.Fatal(err)
		}
		if err := db.Close(); err != nil {
			b.Fatal(err)
		}
		return dir
	}
	modes := []struct {
		name string
		opt  func(badger.Options) badger.Options
	}{
		{"checksums=off", func(o badger.Options) badger.Options {
			return o.WithChecksumVerificationMode(options.NoVerification).WithVerifyValueChecksum(false)
		}},
		{"checksums=on", func(o badger.Options) badger.Options { return o }}, // badgerOptions' setting
	}
	// The work each option adds per read: a CRC-32C of a 4 KiB table block
	// (OnBlockRead, per block read; there is no block cache) and of a value
	// read from the value log (VerifyValueChecksum, per value).
	for _, n := range []int{4 << 10, 2 << 10} {
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("crc32c/%dB", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				_ = y.CalculateChecksum(buf, pb.Checksum_CRC32C)
			}
		})
	}
	for _, vs := range []struct {
		name string
		size int
	}{{"lsm-value=100B", 100}, {"vlog-value=2KiB", 2048}} {
		dir := build(b, vs.size)
		for _, m := range modes {
			db, err := badger.Open(m.opt(badgerOptions(dir, false, stateDBMagic, testLogger(b)).WithValueThreshold(stateValueThreshold)))
			if err != nil {
				b.Fatal(err)
			}
			b.Run("get/"+vs.name+"/"+m.name, func(b *testing.B) {
				rng := rand.New(rand.NewPCG(1, 2))
				for b.Loop() {
					k := fmt.Appendf(nil, "k/%08d", rng.IntN(keys))
					err := db.View(func(txn *badger.Txn) error {
						item, err := txn.Get(k)
						if err != nil {
							return err
						}
						return item.Value(func([]byte) error { return nil })
					})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("scan/"+vs.name+"/"+m.name, func(b *testing.B) {
				for b.Loop() {
					err := db.View(func(txn *badger.Txn) error {
						it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16})
						defer it.Close()
						for it.Rewind(); it.Valid(); it.Next() {
							if err := it.Item().Value(func([]byte) error { return nil }); err != nil {
								return err
							}
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/keys, "ns/key")
			})
			if err := db.Close(); err != nil {
				b.Fatal(err)
			}
		}
		b.Run("checkdir/"+vs.name, func(b *testing.B) {
			var size int64
			_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, _ error) error {
				if fi, err := d.Info(); err == nil && !d.IsDir() {
					size += fi.Size()
				}
				return nil
			})
			b.SetBytes(size)
			for b.Loop() {
				if err := checkBadger(dir); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
