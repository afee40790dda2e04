package raftnode

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/crc64"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/dgraph-io/badger/v4/fb"
	"github.com/dgraph-io/badger/v4/pb"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"google.golang.org/protobuf/proto"
)

// At-rest integrity (docs/runbook.md "Corrupt node data").
//
// Badger detects some damage on its own and silently repairs other damage
// by dropping data, which for the raft log is worse than a crash: a
// follower that acknowledged an entry and then loses it can help elect a
// leader without it. So New runs CheckDir before it opens anything:
//
//   - MANIFEST: every record's CRC (Badger checks them too, but we also need
//     the set of live tables). A record cut short at the end of the file is
//     an interrupted append, which Badger drops; that is not damage.
//   - every table the MANIFEST references: the index checksum and every
//     block checksum. Tables the MANIFEST does not reference are leftovers of
//     an interrupted compaction; Badger deletes them.
//   - every value log (.vlog) and memtable WAL (.mem): every entry's CRC.
//     Badger stops replaying a WAL at the first bad entry and truncates the
//     file there, so a flipped byte in the middle would silently drop every
//     later write. An entry that fails its CRC while a valid entry follows
//     it is damage; a bad entry followed only by zeros is a torn tail (an
//     append cut by power loss), which Badger truncates as intended.
//   - every raft snapshot: meta.json decodes, state.bin has the recorded
//     size and CRC-64, and our stream header.
//
// While running, Badger verifies value CRCs on every value-log read
// (VerifyValueChecksum) and block checksums on every table block read
// (OnBlockRead); a failed value read is an error to the caller. A block
// that fails its checksum at run time makes Badger skip that table for the
// lookup (an error it does not surface), which is why the full table check
// runs at start. The cost of both options is in docs/benchmarks.md.

// ErrCorrupt marks data on disk that failed an integrity check.
var ErrCorrupt = errors.New("raftnode: data corrupt")

// RunbookHint is appended to corruption errors: what the operator does next.
const RunbookHint = "this node's data cannot be trusted; stop it and rebuild it from its peers " +
	"with `edgesync relay rejoin` or `edgesync central rejoin` (docs/runbook.md, \"Corrupt node data\")"

// CorruptError names the damaged file. errors.Is(err, ErrCorrupt) is true.
type CorruptError struct {
	Path string // the damaged file
	Err  error  // what is wrong with it
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("raftnode: %s is corrupt: %v; %s", e.Path, e.Err, RunbookHint)
}

// Unwrap returns the underlying error.
func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

func corrupt(path string, format string, a ...any) error {
	return &CorruptError{Path: path, Err: fmt.Errorf(format, a...)}
}

// CheckDir verifies the raft log DB, the current state DB and the snapshots
// under a node's data dir (see the comment above). The node must be
// stopped. It returns a *CorruptError for damage and another error when a
// file cannot be read at all. A missing or empty dir is fine (a new node).
func CheckDir(dir string) error {
	if err := checkBadger(filepath.Join(dir, "raft")); err != nil {
		return err
	}
	name, err := readStatePointer(dir)
	if err != nil {
		return &CorruptError{Path: filepath.Join(dir, stateCurrentPtr), Err: err}
	}
	if err := checkBadger(filepath.Join(dir, name)); err != nil {
		return err
	}
	return checkSnapshots(snapshotStoreDir(dir))
}

// snapshotStoreDir is where raft's FileSnapshotStore, created on
// Dir/snapshots, keeps the snapshots.
func snapshotStoreDir(dir string) string { return filepath.Join(dir, "snapshots", "snapshots") }

// checkBadger verifies one Badger directory.
func checkBadger(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftnode: check %s: %w", dir, err)
	}
	var ssts, logs []string
	hasManifest := false
	for _, e := range entries {
		switch name := e.Name(); {
		case name == "MANIFEST":
			hasManifest = true
		case strings.HasSuffix(name, ".sst"):
			ssts = append(ssts, name)
		case strings.HasSuffix(name, ".vlog"), strings.HasSuffix(name, ".mem"):
			logs = append(logs, filepath.Join(dir, name))
		}
	}
	if !hasManifest {
		if len(ssts) > 0 {
			return corrupt(filepath.Join(dir, "MANIFEST"), "missing, but the directory holds %d tables", len(ssts))
		}
	} else {
		live, err := checkManifest(filepath.Join(dir, "MANIFEST"))
		if err != nil {
			return err
		}
		for _, id := range live {
			if err := checkTable(table.NewFilename(id, dir)); err != nil {
				return err
			}
		}
	}
	slices.Sort(logs)
	for _, p := range logs {
		if err := checkLogFile(p); err != nil {
			return err
		}
	}
	return nil
}

// checkManifest verifies every record of a Badger MANIFEST and returns the
// IDs of the tables it references, sorted.
func checkManifest(path string) ([]uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("raftnode: check %s: %w", path, err)
	}
	if len(data) < 8 || string(data[:4]) != "Bdgr" {
		return nil, corrupt(path, "bad magic")
	}
	live := map[uint64]bool{}
	off := 8
	for off+8 <= len(data) {
		n := int(binary.BigEndian.Uint32(data[off:]))
		sum := binary.BigEndian.Uint32(data[off+4:])
		if n > len(data)-off-8 {
			// Cut short by a crash while appending (Badger drops it) -
			// unless the length field itself is damaged: then some prefix
			// of what follows matches the record's checksum.
			rest, c := data[off+8:], uint32(0)
			for i := range rest {
				c = crc32.Update(c, y.CastagnoliCrcTable, rest[i:i+1])
				if c == sum {
					return nil, corrupt(path, "record at offset %d has a damaged length (%d bytes)", off, n)
				}
			}
			break
		}
		rec := data[off+8 : off+8+n]
		if crc32.Checksum(rec, y.CastagnoliCrcTable) != sum {
			return nil, corrupt(path, "record at offset %d fails its checksum", off)
		}
		var cs pb.ManifestChangeSet
		if err := proto.Unmarshal(rec, &cs); err != nil {
			return nil, corrupt(path, "record at offset %d: %v", off, err)
		}
		for _, c := range cs.Changes {
			switch c.Op {
			case pb.ManifestChange_CREATE:
				live[c.Id] = true
			case pb.ManifestChange_DELETE:
				delete(live, c.Id)
			}
		}
		off += 8 + n
	}
	ids := make([]uint64, 0, len(live))
	for id := range live {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// checkTable verifies a Badger table's index checksum and every block's
// checksum (Badger's table format, without compression or encryption).
func checkTable(path string) (retErr error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return corrupt(path, "table referenced by the MANIFEST is missing")
	}
	if err != nil {
		return fmt.Errorf("raftnode: check %s: %w", path, err)
	}
	defer func() {
		// The index is a flatbuffer; its checksum is verified before it is
		// parsed, so this is a second line of defence only.
		if r := recover(); r != nil {
			retErr = corrupt(path, "unreadable index: %v", r)
		}
	}()
	size := len(data)
	if size < 8 {
		return corrupt(path, "%d bytes is too short for a table", size)
	}
	pos := size - 4
	chkLen := int(binary.BigEndian.Uint32(data[pos:]))
	if chkLen > pos-4 {
		return corrupt(path, "bad footer (checksum length %d)", chkLen)
	}
	pos -= chkLen
	var chk pb.Checksum
	if err := proto.Unmarshal(data[pos:pos+chkLen], &chk); err != nil {
		return corrupt(path, "bad index checksum record: %v", err)
	}
	pos -= 4
	idxLen := int(binary.BigEndian.Uint32(data[pos:]))
	if idxLen > pos {
		return corrupt(path, "bad footer (index length %d)", idxLen)
	}
	idx := data[pos-idxLen : pos]
	if err := y.VerifyChecksum(idx, &chk); err != nil {
		return corrupt(path, "index: %v", err)
	}
	ti := fb.GetRootAsTableIndex(idx, 0) // raftnode uses no encryption
	var ko fb.BlockOffset
	for i := range ti.OffsetsLength() {
		if !ti.Offsets(&ko, i) {
			return corrupt(path, "index entry %d unreadable", i)
		}
		off, n := int(ko.Offset()), int(ko.Len())
		if off < 0 || n < 8 || off+n > pos-idxLen {
			return corrupt(path, "block %d at %d+%d out of range", i, off, n)
		}
		blk := data[off : off+n]
		cl := int(binary.BigEndian.Uint32(blk[n-4:]))
		if cl > n-8 {
			return corrupt(path, "block %d at offset %d: bad checksum length %d", i, off, cl)
		}
		var bc pb.Checksum
		if err := proto.Unmarshal(blk[n-4-cl:n-4], &bc); err != nil {
			return corrupt(path, "block %d at offset %d: %v", i, off, err)
		}
		if err := y.VerifyChecksum(blk[:n-4-cl], &bc); err != nil {
			return corrupt(path, "block %d at offset %d: %v", i, off, err)
		}
	}
	return nil
}

// Value log and WAL entry layout (Badger): header (meta, userMeta, uvarint
// key length, uvarint value length, uvarint expiresAt), key, value, CRC-32C
// (big-endian) of header+key+value. Files start with a 20-byte header.
const (
	logFileHeader = 20
	logMaxKey     = 1 << 16
	logMaxValue   = 64 << 20 // far above any raftnode value (entries <= 512 KiB)
)

type entryState int

const (
	entryOK      entryState = iota
	entryEnd                // zeros or end of file: the end of the log
	entryBad                // checksum mismatch or impossible header
	entryPastEOF            // header claims more bytes than the file has
)

// parseEntry looks at the entry at b and returns its state and length.
func parseEntry(b []byte) (entryState, int) {
	if len(b) < 2 {
		return entryEnd, 0
	}
	h := 2
	klen, n := binary.Uvarint(b[h:])
	if n <= 0 {
		return entryBad, 0
	}
	h += n
	vlen, n := binary.Uvarint(b[h:])
	if n <= 0 {
		return entryBad, 0
	}
	h += n
	if _, n = binary.Uvarint(b[h:]); n <= 0 {
		return entryBad, 0
	}
	h += n
	if klen == 0 {
		return entryEnd, 0 // Badger's end of log (the file is zero-filled past it)
	}
	if klen > logMaxKey || vlen > logMaxValue {
		return entryBad, 0
	}
	total := h + int(klen) + int(vlen) + 4
	if total > len(b) {
		return entryPastEOF, 0 // cut short at the end of the file
	}
	want := binary.BigEndian.Uint32(b[total-4:])
	if crc32.Checksum(b[:total-4], y.CastagnoliCrcTable) != want {
		return entryBad, total
	}
	return entryOK, total
}

// checkLogFile verifies every entry of a .vlog or .mem file.
func checkLogFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("raftnode: check %s: %w", path, err)
	}
	if len(data) < logFileHeader {
		return nil // created but never written; Badger re-initialises it
	}
	off := logFileHeader
	for off < len(data) {
		st, n := parseEntry(data[off:])
		switch st {
		case entryOK:
			off += n
			continue
		case entryEnd, entryPastEOF:
			return nil
		}
		// A bad entry is a torn tail only if nothing valid follows it and
		// it looks half-written.
		if n > 0 && off+n < len(data) {
			if next, _ := parseEntry(data[off+n:]); next == entryOK {
				return corrupt(path, "entry at offset %d fails its checksum and valid entries follow", off)
			}
		}
		if n > 0 && !tornWrite(data[off:off+n], off) {
			return corrupt(path, "last entry at offset %d fails its checksum and is complete (not a torn write)", off)
		}
		if n == 0 && !allZero(data[min(off+64, len(data)):]) {
			return corrupt(path, "unreadable entry header at offset %d with data after it", off)
		}
		return nil
	}
	return nil
}

// tornWrite reports whether a complete entry that fails its checksum looks
// like a write cut short (which Badger rightly drops) rather than damage:
// Badger writes entries by copying into a zero-filled, memory-mapped file,
// so a write cut by SIGKILL leaves the end of the entry, checksum included,
// zero; one cut by power loss can also leave whole pages unwritten (zero).
// A flipped bit leaves neither.
func tornWrite(entry []byte, fileOff int) bool {
	if allZero(entry[len(entry)-4:]) {
		return true
	}
	const page = 4096
	for p := (fileOff + page - 1) / page * page; p+page <= fileOff+len(entry); p += page {
		if allZero(entry[p-fileOff : p-fileOff+page]) {
			return true
		}
	}
	return false
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// snapMeta is the part of raft's FileSnapshotStore meta.json we check.
type snapMeta struct {
	ID   string
	Size int64
	CRC  []byte
}

// checkSnapshots verifies every complete snapshot under dir. Directories
// ending in .tmp are snapshots a crash interrupted; raft ignores them and
// New removes them.
func checkSnapshots(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("raftnode: check %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if err := checkSnapshot(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

func checkSnapshot(dir string) error {
	metaPath := filepath.Join(dir, "meta.json")
	b, err := os.ReadFile(metaPath)
	if err != nil {
		return corrupt(metaPath, "unreadable: %v", err)
	}
	var m snapMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return corrupt(metaPath, "%v", err)
	}
	statePath := filepath.Join(dir, "state.bin")
	f, err := os.Open(statePath)
	if err != nil {
		return corrupt(statePath, "unreadable: %v", err)
	}
	defer f.Close()
	h := crc64.New(crc64.MakeTable(crc64.ECMA))
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("raftnode: check %s: %w", statePath, err)
	}
	if n != m.Size {
		return corrupt(statePath, "%d bytes, meta.json records %d (truncated?)", n, m.Size)
	}
	if !bytes.Equal(h.Sum(nil), m.CRC) {
		return corrupt(statePath, "CRC-64 does not match meta.json")
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("raftnode: check %s: %w", statePath, err)
	}
	if _, err := readSnapshotHeader(f); err != nil {
		return corrupt(statePath, "%v", err)
	}
	return nil
}

// removeSnapshotTemps deletes snapshots a crash interrupted (*.tmp dirs):
// raft skips them but never removes them.
func removeSnapshotTemps(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".tmp") {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}
