package raftnode

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

// Badger sizing for an appliance. The whole relay process must stay under
// 256 MB RSS (DESIGN §6) and raftnode opens two DBs (log and state), so each
// DB gets a small, fixed budget:
//
//   - memtables: MemTableSize 8 MiB x NumMemtables 2. Badger allocates an
//     arena of ~MemTableSize*1.3 per memtable (memtable + maxBatchSize slack),
//     so at most ~21 MiB per DB when a flush is pending. 15% of MemTableSize
//     (1.2 MiB) is also the largest single transaction: larger batches are
//     split (ApplyBatch handles badger.ErrTxnTooBig).
//   - No block compression and no block cache: measured under a 200-agent
//     load, the table builders' compression buffers and the block caches were
//     most of a relay's heap (profiles in docs/benchmarks.md); uncompressed
//     blocks are read straight from the memory-mapped tables, which the
//     kernel can drop under pressure. IndexCacheSize 8 MiB stays.
//   - ValueThreshold 64 KiB: larger values (raft entries, big app records) go
//     to the value log and keep the LSM and transactions small.
//   - ValueLogFileSize 16 MiB: the active value log is memory-mapped and is
//     where every raft entry lands, so a small file keeps mapped pages (and
//     RSS) down and lets value-log GC reclaim space in small steps (the
//     default is 1 GiB).
//   - NumCompactors 2, NumLevelZeroTables 2 / stall at 8, BaseTableSize 2 MiB:
//     few compaction goroutines and little L0 backlog held in memory.
//   - Checksums on read: every table block (OnBlockRead) and every value-log
//     value (VerifyValueChecksum) is checked when read, so a value damaged
//     while running is a read error, never wrong bytes (a damaged block makes
//     Badger skip that table for the lookup: a miss, never garbage). CheckDir
//     (integrity.go) checks everything once at start. Cost: a CRC-32C per
//     4 KiB block or value read, ~0.2 us for 4 KiB on the reference machine
//     (BenchmarkBadgerChecksums in integrity_test.go).
//
// Worst case is therefore about 2 x (42 + 24) = 132 MiB for both DBs, typical
// well under 100 MiB, which leaves room for the application.
const (
	badgerMemTableSize             = 8 << 20
	badgerNumMemtables             = 2
	badgerBlockCacheSize           = 0
	badgerIndexCacheSize           = 8 << 20
	badgerValueThreshold           = 64 << 10
	stateValueThreshold            = 512
	badgerValueLogFileSize         = 16 << 20
	badgerNumCompactors            = 2
	badgerNumLevelZero             = 2
	badgerNumLevelZeroStall        = 8
	badgerBaseTableSize            = 2 << 20
	badgerValueLogGCDiscard        = 0.5
	badgerMaxGCRunsPerTick         = 16
	logDBMagic              uint16 = 0xE501 // Badger ExternalMagic of Dir/raft
	stateDBMagic            uint16 = 0xE502 // Badger ExternalMagic of Dir/state-<n>
)

// badgerOptions returns the appliance options for dir.
func badgerOptions(dir string, syncWrites bool, magic uint16, logger *slog.Logger) badger.Options {
	return badger.DefaultOptions(dir).
		WithSyncWrites(syncWrites).
		WithMemTableSize(badgerMemTableSize).
		WithNumMemtables(badgerNumMemtables).
		WithBlockCacheSize(badgerBlockCacheSize).
		WithCompression(options.None).
		WithIndexCacheSize(badgerIndexCacheSize).
		WithValueThreshold(badgerValueThreshold).
		WithValueLogFileSize(badgerValueLogFileSize).
		WithNumCompactors(badgerNumCompactors).
		WithNumLevelZeroTables(badgerNumLevelZero).
		WithNumLevelZeroTablesStall(badgerNumLevelZeroStall).
		WithBaseTableSize(badgerBaseTableSize).
		WithNumGoroutines(4).
		WithDetectConflicts(false). // one writer per DB; no optimistic conflicts to detect
		WithChecksumVerificationMode(options.OnBlockRead).
		WithVerifyValueChecksum(true).
		WithMetricsEnabled(false).
		WithExternalMagic(magic).
		WithLogger(badgerLogger{l: logger.With("db", dir)})
}

func openBadger(opts badger.Options) (*badger.DB, error) {
	db, err := badger.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("open badger %s: %w", opts.Dir, err)
	}
	return db, nil
}

// runValueLogGC runs GC until Badger finds nothing more to rewrite (bounded).
func runValueLogGC(db *badger.DB, logger *slog.Logger) {
	for range badgerMaxGCRunsPerTick {
		err := db.RunValueLogGC(badgerValueLogGCDiscard)
		if err == nil {
			continue
		}
		if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
			logger.Warn("Value log GC failed", "error", err)
		}
		return
	}
}

// badgerLogger routes Badger's logger to slog. Badger is chatty at info
// level, so only warnings and errors are kept.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) {
	b.l.Error("Badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}

func (b badgerLogger) Warningf(f string, a ...any) {
	b.l.Warn("Badger: " + strings.TrimSpace(fmt.Sprintf(f, a...)))
}
func (badgerLogger) Infof(string, ...any)  {}
func (badgerLogger) Debugf(string, ...any) {}
