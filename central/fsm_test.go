package central

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/kv"
)

const dev = "0123456789abcdef0123456789abcdef"

func newStateDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func applyCmd(t *testing.T, db *badger.DB, index uint64, cmd []byte) []byte {
	t.Helper()
	var out []byte
	if err := db.Update(func(txn *badger.Txn) error {
		out = (*fsm)(&Node{}).Apply(txn, index, cmd)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := resultError(out); err != nil {
		t.Fatal(err)
	}
	return out
}

func inv(seq uint64, host, serial string, collected time.Time) []byte {
	p, _ := json.Marshal(record.Inventory{Hostname: host, OS: record.OS{Name: "Linux"}, Hardware: record.Hardware{Serial: serial}})
	r := record.Record{DeviceID: dev, Seq: seq, Kind: record.KindInventory, CollectedAt: collected, Schema: 1, Payload: p,
		ReceivedAt: time.Unix(2000+int64(seq), 0).UTC(), Channel: record.ChannelOnline, SiteID: "s1", RelayNode: "r1"}
	b, _ := json.Marshal(r)
	return b
}

func ingestCmd(first uint64, recs ...[]byte) []byte {
	return (&ingestCommand{Site: "s1", Relay: "r1", At: time.Unix(3000, 0).UTC(), First: first, Records: recs}).encode()
}

func cursorOf(t *testing.T, out []byte) uint64 {
	t.Helper()
	_, _, r, err := cmdenc.NewReader(out)
	if err != nil {
		t.Fatal(err)
	}
	return r.Uint()
}

func getDevice(t *testing.T, db *badger.DB) Device {
	t.Helper()
	var d Device
	db.View(func(txn *badger.Txn) error { _, err := kv.GetJSON(txn, key(prefixDevice, dev), &d); return err })
	return d
}

func TestIngestCursorAndDedup(t *testing.T) {
	db := newStateDB(t)
	t0 := time.Unix(1000, 0).UTC()
	if c := cursorOf(t, applyCmd(t, db, 1, ingestCmd(1, inv(1, "a", "", t0), inv(2, "a", "", t0.Add(time.Second))))); c != 2 {
		t.Fatalf("cursor = %d, want 2", c)
	}
	// A resent batch overlapping the cursor applies only its new tail.
	if c := cursorOf(t, applyCmd(t, db, 2, ingestCmd(2, inv(2, "a", "", t0.Add(time.Second)), inv(3, "a", "", t0.Add(2*time.Second))))); c != 3 {
		t.Fatalf("cursor = %d, want 3", c)
	}
	// A batch past cursor+1 applies nothing.
	if c := cursorOf(t, applyCmd(t, db, 3, ingestCmd(9, inv(9, "a", "", t0)))); c != 3 {
		t.Fatalf("cursor after gap = %d, want 3", c)
	}
	// The same device record arriving under a new site seq is not applied twice.
	applyCmd(t, db, 4, ingestCmd(4, inv(3, "a", "", t0.Add(2*time.Second))))
	if d := getDevice(t, db); d.Records != 3 || d.Revisions != 3 {
		t.Fatalf("device records %d revisions %d, want 3 and 3", d.Records, d.Revisions)
	}
}

func TestCurrentInventoryOnlyMovesForward(t *testing.T) {
	db := newStateDB(t)
	t0 := time.Unix(1000, 0).UTC()
	applyCmd(t, db, 1, ingestCmd(1, inv(1, "new-name", "S1", t0.Add(time.Hour))))
	applyCmd(t, db, 2, ingestCmd(2, inv(2, "old-name", "S1", t0))) // collected earlier, arrives later
	d := getDevice(t, db)
	if d.Hostname != "new-name" || d.InventorySeq != 1 {
		t.Fatalf("current = %q seq %d; an older record replaced newer data", d.Hostname, d.InventorySeq)
	}
	if d.Revisions != 2 {
		t.Fatalf("revisions = %d, want both kept", d.Revisions)
	}
	var revs int
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: key(prefixRevision, dev)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			revs++
		}
		return nil
	})
	if revs != 2 {
		t.Fatalf("revision index has %d entries, want 2", revs)
	}
}

func TestCloneRaisesEvent(t *testing.T) {
	db := newStateDB(t)
	t0 := time.Unix(1000, 0).UTC()
	applyCmd(t, db, 1, ingestCmd(1, inv(1, "pc", "SERIAL-A", t0)))
	applyCmd(t, db, 2, ingestCmd(2, inv(2, "pc", "SERIAL-B", t0.Add(time.Hour))))
	found := false
	db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefixEvent, PrefetchValues: true})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var e event.Event
			it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) })
			found = found || e.Number == event.CloneDetected
		}
		return nil
	})
	if !found {
		t.Fatal("serial change did not raise a clone event")
	}
}

func TestUndecodableRecordAdvancesCursor(t *testing.T) {
	db := newStateDB(t)
	if c := cursorOf(t, applyCmd(t, db, 1, ingestCmd(1, []byte("{not json")))); c != 1 {
		t.Fatalf("cursor = %d, want 1 (a bad record must not wedge the site)", c)
	}
}

func FuzzApplyIngest(f *testing.F) {
	f.Add(ingestCmd(1, inv(1, "a", "", time.Unix(1, 0))))
	f.Add((&contactCommand{Site: "s"}).encode())
	db, _ := fuzzState(f)
	f.Fuzz(func(t *testing.T, cmd []byte) {
		typ, _, _, err := cmdenc.NewReader(cmd)
		if err != nil || typ < byte(cmdIngest) || typ > byte(cmdEvent) {
			return
		}
		txn := db.NewTransaction(true) // shared in-memory state: a disk DB per input ran 5 execs in 30 s
		defer txn.Discard()
		(*fsm)(&Node{}).Apply(txn, 100, cmd)
	})
}
