package agent

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

func spoolRec(seq uint64, kind record.Kind, size int) *record.Record {
	return &record.Record{DeviceID: strings.Repeat("a", 32), Seq: seq, Kind: kind, CollectedAt: time.Unix(1e9, 0),
		Schema: record.SchemaVersion, Payload: json.RawMessage(`{"p":"` + strings.Repeat("x", size) + `"}`)}
}

func spoolSeqs(s *spool) []uint64 {
	var out []uint64
	for _, e := range s.entries {
		out = append(out, e.seq)
	}
	return out
}

func TestSpool_DropOrder(t *testing.T) {
	one := int64(len(mustJSON(t, spoolRec(1, record.KindEvent, 100))))
	tests := []struct {
		name  string
		kinds []record.Kind // seq 1..n, then one more of the last kind is added
		want  []uint64
	}{
		{"superseded inventory first", []record.Kind{record.KindEvent, record.KindInventory, record.KindInventory, record.KindOplog, record.KindInventory},
			[]uint64{1, 3, 4, 5}},
		{"new inventory supersedes all", []record.Kind{record.KindInventory, record.KindEvent, record.KindEvent, record.KindInventory, record.KindInventory},
			[]uint64{2, 3, 4, 5}},
		{"oplog before task status", []record.Kind{record.KindTaskStatus, record.KindOplog, record.KindEvent, record.KindEvent, record.KindEvent},
			[]uint64{1, 3, 4, 5}},
		{"inventory before events", []record.Kind{record.KindInventory, record.KindEvent, record.KindEvent, record.KindEvent, record.KindEvent},
			[]uint64{2, 3, 4, 5}},
		{"oldest event last", []record.Kind{record.KindEvent, record.KindEvent, record.KindEvent, record.KindEvent, record.KindEvent},
			[]uint64{2, 3, 4, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := openSpool(dir, 4*one+one/2, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			for i, k := range tt.kinds {
				if err := s.add(spoolRec(uint64(i+1), k, 100)); err != nil {
					t.Fatal(err)
				}
			}
			if got := spoolSeqs(s); !slices.Equal(got, tt.want) {
				t.Fatalf("spool holds %v, want %v", got, tt.want)
			}
			// Reopening sees the same files.
			s2, err := openSpool(dir, s.max, slog.Default())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spoolSeqs(s2), tt.want) || s2.bytes != s.bytes {
				t.Fatalf("reopened spool %v (%d bytes), want %v (%d)", spoolSeqs(s2), s2.bytes, tt.want, s.bytes)
			}
		})
	}
}

func TestSpool_HeadAckAndLeftovers(t *testing.T) {
	dir := t.TempDir()
	s, err := openSpool(dir, 1<<20, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := s.add(spoolRec(uint64(i+1), record.KindEvent, 10)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.add(spoolRec(6, record.KindEvent, 2<<20)); err == nil {
		t.Fatal("adding a record over the cap succeeded")
	}
	// A leftover temp file and a corrupt record.
	_ = os.WriteFile(filepath.Join(dir, ".tmp-x"), []byte("junk"), 0o600)
	_ = os.WriteFile(s.path(s.entries[1]), []byte("{not json"), 0o600)
	s, err = openSpool(dir, 1<<20, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	recs, err := s.head(3, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || recs[0].Seq != 1 || recs[1].Seq != 3 {
		t.Fatalf("head() = %d records starting %d, %d", len(recs), recs[0].Seq, recs[1].Seq)
	}
	if n, err := s.ack(3); err != nil || n != 2 {
		t.Fatalf("ack(3) = %d, %v", n, err)
	}
	if got := spoolSeqs(s); !slices.Equal(got, []uint64{4, 5}) {
		t.Fatalf("after ack: %v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp-x")); !os.IsNotExist(err) {
		t.Fatal("temp leftover not removed")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
