package relay

import (
	"github.com/edgesync/edgesync/internal/kv"

	"bytes"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// newStateDB opens a throwaway Badger DB for Apply tests.
func newStateDB(t *testing.T) *badger.DB {
	t.Helper()
	db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

const testDev = "0123456789abcdef0123456789abcdef"

func apply(t *testing.T, db *badger.DB, index uint64, cmd []byte) []byte {
	t.Helper()
	var out []byte
	if err := db.Update(func(txn *badger.Txn) error {
		out = (*fsm)(&Node{}).Apply(txn, index, cmd)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func rec(seq uint64, body string) reportRecord {
	h := sha256.Sum256([]byte(body))
	return reportRecord{Seq: seq, Hash: h[:], Inventory: true, CollectedAt: time.Unix(int64(seq), 0).UTC(), Data: []byte(body)}
}

func report(recs ...reportRecord) []byte {
	c := &reportsCommand{At: time.Unix(1000, 0).UTC(), Requests: []reportRequest{{DeviceID: testDev, Records: recs}}}
	return c.encode()
}

func results(t *testing.T, out []byte) reportResult {
	t.Helper()
	if err := resultError(out); err != nil {
		t.Fatal(err)
	}
	rs, err := decodeReportResults(out)
	if err != nil || len(rs) != 1 {
		t.Fatalf("results %v %v", rs, err)
	}
	return rs[0]
}

func enroll(t *testing.T, db *badger.DB) {
	t.Helper()
	apply(t, db, 1, encodeSecrets("joinhash", "adminhash"))
	c := &enrollCommand{DeviceID: testDev, TokenHash: "tok", JoinHash: "joinhash", Hostname: "pc", At: time.Unix(1, 0)}
	if err := resultError(apply(t, db, 2, c.encode())); err != nil {
		t.Fatal(err)
	}
}

func TestApplyReports(t *testing.T) {
	tests := []struct {
		name  string
		first []reportRecord
		then  []reportRecord
		want  reportResult
		next  uint64 // site next seq after both
	}{
		{"new records", nil, []reportRecord{rec(1, "a"), rec(2, "b")}, reportResult{AckedSeq: 2, Accepted: 2}, 3},
		{"exact retry is a duplicate", []reportRecord{rec(1, "a")}, []reportRecord{rec(1, "a"), rec(2, "b")}, reportResult{AckedSeq: 2, Accepted: 1, Duplicate: 1}, 3},
		{"replay with other content conflicts and stores nothing", []reportRecord{rec(1, "a")}, []reportRecord{rec(2, "b"), rec(1, "z")}, reportResult{Code: reportConflict, BadSeq: 1}, 2},
		{"out of order is kept", []reportRecord{rec(5, "e")}, []reportRecord{rec(3, "c")}, reportResult{AckedSeq: 3, Accepted: 1}, 3},
		{"same seq twice in one request conflicts", nil, []reportRecord{rec(1, "a"), rec(1, "a")}, reportResult{Code: reportConflict, BadSeq: 1}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := newStateDB(t)
			enroll(t, db)
			if tt.first != nil {
				results(t, apply(t, db, 3, report(tt.first...)))
			}
			got := results(t, apply(t, db, 4, report(tt.then...)))
			if got != tt.want {
				t.Fatalf("result = %+v, want %+v", got, tt.want)
			}
			var next uint64
			db.View(func(txn *badger.Txn) (err error) { next, err = kv.GetUint(txn, keyNextSeq); return err })
			if next != tt.next {
				t.Fatalf("next site seq = %d, want %d", next, tt.next)
			}
		})
	}
}

func TestApplyReportsUnknownDevice(t *testing.T) {
	db := newStateDB(t)
	if got := results(t, apply(t, db, 1, report(rec(1, "a")))); got.Code != reportUnknown {
		t.Fatalf("result = %+v, want unknown device", got)
	}
}

func TestApplyAckTrimsOutbox(t *testing.T) {
	db := newStateDB(t)
	enroll(t, db)
	results(t, apply(t, db, 3, report(rec(1, "a"), rec(2, "bb"), rec(3, "ccc"))))
	apply(t, db, 4, encodeAck(2))
	apply(t, db, 5, encodeAck(1))  // stale ack: no effect
	apply(t, db, 6, encodeAck(99)) // beyond the outbox: clamped
	db.View(func(txn *badger.Txn) error {
		acked, _ := kv.GetUint(txn, keyAcked)
		bytes, _ := kv.GetUint(txn, keyObBytes)
		if acked != 3 || bytes != 0 {
			t.Fatalf("acked %d bytes %d, want 3 and 0", acked, bytes)
		}
		for s := uint64(1); s <= 3; s++ {
			if _, err := txn.Get(seqKey(prefixOutbox, s)); err == nil {
				t.Fatalf("outbox entry %d not trimmed", s)
			}
		}
		return nil
	})
}

func TestApplyEnrollNeedsJoinHash(t *testing.T) {
	db := newStateDB(t)
	apply(t, db, 1, encodeSecrets("joinhash", ""))
	c := &enrollCommand{DeviceID: testDev, TokenHash: "tok", JoinHash: "wrong", At: time.Unix(1, 0)}
	if err := resultError(apply(t, db, 2, c.encode())); err == nil {
		t.Fatal("enroll with a wrong join hash applied")
	}
}

// TestApplyDeterministic: two replicas applying the same commands end with
// byte-identical state.
func TestApplyDeterministic(t *testing.T) {
	cmds := [][]byte{encodeSecrets("joinhash", "admin")}
	c := &enrollCommand{DeviceID: testDev, TokenHash: "tok", JoinHash: "joinhash", At: time.Unix(1, 0)}
	cmds = append(cmds, c.encode(), report(rec(1, "a"), rec(2, "b")), report(rec(2, "b"), rec(3, "c")), encodeAck(2))
	dump := func() []byte {
		db := newStateDB(t)
		for i, cmd := range cmds {
			apply(t, db, uint64(i+1), cmd)
		}
		var buf bytes.Buffer
		db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.DefaultIteratorOptions)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, _ := it.Item().ValueCopy(nil)
				buf.Write(it.Item().Key())
				buf.Write(v)
			}
			return nil
		})
		return buf.Bytes()
	}
	if a, b := dump(), dump(); !bytes.Equal(a, b) {
		t.Fatal("replicas diverged")
	}
}

// TestApplyAckIsBatchIndependent: a member that applies a report and its ack
// in one Badger txn (a follower catching up a long range after a restart)
// must end in the same state as one that applied them in separate txns (the
// leader). Badger's Item.ValueSize is exact for a value written in the same
// txn but estimates a value-log entry's header at 6 bytes, one short for a
// value of 16 KiB or more, so trimming the outbox by ValueSize made the
// outbox byte count depend on where raft's apply batches fell.
func TestApplyAckIsBatchIndependent(t *testing.T) {
	big := func(seq uint64, c byte) reportRecord { return rec(seq, string(bytes.Repeat([]byte{c}, 20<<10))) }
	open := func() *badger.DB {
		// The value threshold of the real state DB, so big records live in the value log.
		db, err := badger.Open(badger.DefaultOptions(t.TempDir()).WithLogger(nil).WithValueThreshold(512))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		enroll(t, db)
		return db
	}
	obBytes := func(db *badger.DB) uint64 {
		var n uint64
		if err := db.View(func(txn *badger.Txn) (err error) { n, err = kv.GetUint(txn, keyObBytes); return err }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	apart := open()
	results(t, apply(t, apart, 3, report(big(1, 'a'), big(2, 'b'))))
	apply(t, apart, 4, encodeAck(1))

	together := open()
	if err := together.Update(func(txn *badger.Txn) error {
		if err := resultError((*fsm)(&Node{}).Apply(txn, 3, report(big(1, 'a'), big(2, 'b')))); err != nil {
			return err
		}
		(*fsm)(&Node{}).Apply(txn, 4, encodeAck(1))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := uint64(8 + 20<<10) // one record left: received-at header + body
	if a, b := obBytes(apart), obBytes(together); a != want || b != want {
		t.Fatalf("outbox bytes after acking 1 of 2: %d applied apart, %d applied in one txn, want %d both", a, b, want)
	}
}
