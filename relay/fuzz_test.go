package relay

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/fuzzx"
	"github.com/edgesync/edgesync/sync/wire"
)

// knownCommands are the command types Apply understands; any other type
// panics on purpose (divergence guard), so the fuzzer skips them.
var knownCommands = []commandType{cmdReports, cmdAck, cmdEnroll, cmdSecrets, cmdEvent, cmdOffline, cmdAudit, cmdCatalog}

// fuzzState is a committed in-memory state with something of everything:
// secrets, an enrolled device with records in the outbox, a catalog, an
// offline import and an audit entry, so mutated commands meet real keys.
func fuzzState(tb testing.TB) (*badger.DB, string) {
	tb.Helper()
	return machine.State(tb, fuzzSeeds())
}

// machine is Apply as the fuzz harness drives it, on a fresh Node each time.
var machine = fuzzx.Machine{Apply: func(txn *badger.Txn, index uint64, cmd []byte) []byte {
	return (*fsm)(&Node{}).Apply(txn, index, cmd)
}, Result: resultError}

// fuzzSeeds are valid commands of every type (the table tests' commands).
func fuzzSeeds() [][]byte {
	at := time.Unix(1700000000, 0).UTC()
	return [][]byte{
		encodeSecrets("joinhash", "adminhash"),
		(&enrollCommand{DeviceID: testDev, TokenHash: "t", JoinHash: "joinhash", Hostname: "pc", OS: "linux", At: at}).encode(),
		report(rec(1, "a"), rec(2, "b")),
		encodeAck(1),
		encodeEvent(event.Event{Number: 3, Severity: "warning", Type: "disk", Source: "r1", Time: at, Message: "m"}),
		encodeOfflineImport(at, []offlineItem{{Ledger: []byte("dev-ledger-key"), Record: []byte(`{"device_id":"x"}`)}}),
		encodeAudit(AuditEntry{Time: at, Node: "r1", Who: "token:0123", Action: "POST /api/v1/cache/evict", From: "10.0.0.9", Result: "ok"}),
		encodeCatalog(&catalogCommand{Catalog: wire.Catalog{
			Version:  2,
			Packages: []wire.CatalogPackage{{ID: "p1", Name: "n", SHA256: "ab", Size: 3}},
			Tasks:    []wire.CatalogTask{{ID: "t1", Package: "p1", Devices: []string{testDev}, Attempts: map[string]int{testDev: 1}}},
			LivePkgs: []string{"p1"}, LiveTask: []string{"t1"},
		}}),
		report(taskStatusRecord(3, "t1", "failed")),
		encodeDiskState("r1", 2),
	}
}

// taskStatusRecord is an agent's task_status record as Apply folds it.
func taskStatusRecord(seq uint64, task, status string) reportRecord {
	p, _ := json.Marshal(record.TaskStatus{TaskID: task, Status: status, Cause: "disk"})
	b, _ := json.Marshal(record.Record{DeviceID: testDev, Seq: seq, Kind: record.KindTaskStatus, CollectedAt: time.Unix(int64(seq), 0).UTC(),
		Schema: record.SchemaVersion, Payload: p})
	r := rec(seq, string(b))
	r.Inventory = false
	return r
}

// FuzzApply: whatever bytes of a known command type are committed, Apply
// does not panic, a decode error result writes nothing, and two replicas
// applying the same entry to the same state end in the same state with the
// same result (no divergence).
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Add(report(rec(1, "a"))) // a duplicate of the state's seq 1
	f.Add(report(rec(1, "other")))
	f.Add(report(taskStatusRecord(4, "t1", "successful"), taskStatusRecord(2, "t1", "downloading"))) // latest seq wins
	f.Add(encodeAck(1 << 40))
	f.Add((&enrollCommand{DeviceID: testDev, JoinHash: "x"}).encode())
	f.Add(encodeCatalog(&catalogCommand{Since: 99}))
	f.Add([]byte{byte(cmdCatalog), commandVersion, 3, '{', '}', '}'})
	f.Add([]byte{byte(cmdOffline), commandVersion, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{byte(cmdAudit), commandVersion})
	db, base := fuzzState(f)
	f.Fuzz(func(t *testing.T, cmd []byte) {
		if len(cmd) == 0 || !slices.Contains(knownCommands, commandType(cmd[0])) {
			return
		}
		machine.Check(t, db, base, 100, cmd)
	})
}

// FuzzDecodeReportResults: the proposer's decoder of Apply's answer never
// panics, never allocates past its cap and round-trips what it accepts.
func FuzzDecodeReportResults(f *testing.F) {
	f.Add(encodeReportResults([]reportResult{{Code: reportOK, AckedSeq: 3, Accepted: 2, Duplicate: 1}}))
	f.Add(encodeReportResults(nil))
	f.Add([]byte{byte(cmdReports), commandVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{0xFF})
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, err := decodeReportResults(b)
		if err != nil {
			return
		}
		if len(rs) > maxRequests {
			t.Fatalf("%d results, cap %d", len(rs), maxRequests)
		}
		again, err := decodeReportResults(encodeReportResults(rs))
		if err != nil || !slices.Equal(rs, again) {
			t.Fatalf("round trip: %v %v", again, err)
		}
	})
}
