package agent

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/collector/record"
)

// ErrRecordTooBig means a record alone is larger than the spool cap.
var ErrRecordTooBig = errors.New("agent: record larger than the spool cap")

// spoolEntry is one record file.
type spoolEntry struct {
	seq  uint64
	kind record.Kind
	size int64
}

// spool keeps unacknowledged records, one file per record, in seq order.
// It is used by one goroutine (the Run loop) and is not locked.
type spool struct {
	dir     string
	max     int64
	log     *slog.Logger
	entries []spoolEntry // sorted by seq
	bytes   int64
	dropped uint64 // records dropped to respect the cap
}

func (s *spool) path(e spoolEntry) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d.%s.json", e.seq, e.kind))
}

// openSpool loads the spool in dir, removing leftovers of interrupted writes.
func openSpool(dir string, maxBytes int64, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool: %w", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read spool: %w", err)
	}
	s := &spool{dir: dir, max: maxBytes, log: log}
	for _, de := range ents {
		name := de.Name()
		if strings.HasPrefix(name, ".tmp-") {
			_ = os.Remove(filepath.Join(dir, name))
			continue
		}
		parts := strings.Split(name, ".")
		if len(parts) != 3 || parts[2] != "json" {
			continue
		}
		seq, err := strconv.ParseUint(parts[0], 10, 64)
		if err != nil || seq == 0 {
			continue
		}
		info, err := de.Info()
		if err != nil {
			return nil, fmt.Errorf("stat spool file %s: %w", name, err)
		}
		e := spoolEntry{seq: seq, kind: record.Kind(parts[1]), size: info.Size()}
		s.entries = append(s.entries, e)
		s.bytes += e.size
	}
	slices.SortFunc(s.entries, func(a, b spoolEntry) int { return cmp.Compare(a.seq, b.seq) })
	return s, nil
}

func (s *spool) len() int { return len(s.entries) }

// maxSeq returns the highest spooled seq, 0 if empty.
func (s *spool) maxSeq() uint64 {
	if len(s.entries) == 0 {
		return 0
	}
	return s.entries[len(s.entries)-1].seq
}

// add writes r durably. When the cap would be passed it first drops
// superseded inventory (all but the newest), then oplog, task status,
// the remaining inventory and, last, events, oldest first within a kind.
func (s *spool) add(r *record.Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode record %d: %w", r.Seq, err)
	}
	e := spoolEntry{seq: r.Seq, kind: r.Kind, size: int64(len(b))}
	if e.size > s.max {
		return fmt.Errorf("%w: %d bytes, cap %d", ErrRecordTooBig, e.size, s.max)
	}
	if err := s.makeRoom(e); err != nil {
		return err
	}
	if err := writeFileAtomic(s.path(e), b, 0o600); err != nil {
		return fmt.Errorf("spool record %d: %w", r.Seq, err)
	}
	i, _ := slices.BinarySearchFunc(s.entries, e.seq, func(x spoolEntry, seq uint64) int { return cmp.Compare(x.seq, seq) })
	s.entries = slices.Insert(s.entries, i, e)
	s.bytes += e.size
	return nil
}

func (s *spool) makeRoom(add spoolEntry) error {
	for s.bytes+add.size > s.max && len(s.entries) > 0 {
		victim := s.victim(add)
		if victim < 0 {
			return fmt.Errorf("%w: nothing left to drop", ErrRecordTooBig)
		}
		e := s.entries[victim]
		if err := s.removeAt(victim); err != nil {
			return err
		}
		s.dropped++
		s.log.Warn("Spool full, dropped unsent record", slog.Uint64("seq", e.seq), slog.String("kind", string(e.kind)),
			slog.Int64("spoolBytes", s.bytes), slog.Int64("spoolCap", s.max))
	}
	return nil
}

// victim picks the entry to drop, -1 if none.
func (s *spool) victim(add spoolEntry) int {
	newestInv := -1
	if add.kind != record.KindInventory {
		for i := len(s.entries) - 1; i >= 0; i-- {
			if s.entries[i].kind == record.KindInventory {
				newestInv = i
				break
			}
		}
	}
	for _, k := range []record.Kind{record.KindInventory, record.KindOplog, record.KindTaskStatus} {
		for i, e := range s.entries {
			if e.kind == k && (k != record.KindInventory || i != newestInv) {
				return i
			}
		}
	}
	// Only events (and the newest inventory) remain: inventory goes
	// before events.
	if newestInv >= 0 {
		return newestInv
	}
	if len(s.entries) > 0 {
		return 0
	}
	return -1
}

func (s *spool) removeAt(i int) error {
	e := s.entries[i]
	if err := os.Remove(s.path(e)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove spooled record %d: %w", e.seq, err)
	}
	s.entries = slices.Delete(s.entries, i, i+1)
	s.bytes -= e.size
	return nil
}

// head reads up to n records (and at most maxBytes of them, but at least
// one) from the front of the spool. Unreadable files are dropped with an
// error log.
func (s *spool) head(n, maxBytes int) ([]record.Record, error) {
	var out []record.Record
	total := 0
	for i := 0; i < len(s.entries) && len(out) < n; {
		e := s.entries[i]
		if len(out) > 0 && total+int(e.size) > maxBytes {
			break
		}
		b, err := os.ReadFile(s.path(e))
		var r record.Record
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil {
			s.log.Error("Dropped unreadable spooled record", slog.Uint64("seq", e.seq), slog.Any("error", err))
			if rerr := s.removeAt(i); rerr != nil {
				return out, rerr
			}
			continue
		}
		out = append(out, r)
		total += int(e.size)
		i++
	}
	return out, nil
}

// ack removes every record with seq <= upto and returns how many.
func (s *spool) ack(upto uint64) (int, error) {
	n := 0
	for len(s.entries) > 0 && s.entries[0].seq <= upto {
		if err := s.removeAt(0); err != nil {
			return n, err
		}
		n++
	}
	if n > 0 {
		if err := syncDir(s.dir); err != nil {
			return n, err
		}
	}
	return n, nil
}

// remove drops the record with seq (refused by the relay as invalid).
func (s *spool) remove(seq uint64) error {
	for i, e := range s.entries {
		if e.seq == seq {
			return s.removeAt(i)
		}
	}
	return nil
}
