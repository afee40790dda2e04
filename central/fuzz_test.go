package central

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/fuzzx"
	"github.com/edgesync/edgesync/sync/wire"
)

// knownCommands are the command types Apply understands; any other type
// panics on purpose (divergence guard), so the fuzzer skips them.
var knownCommands = []commandType{cmdIngest, cmdContact, cmdSecrets, cmdEvent, cmdOffline, cmdEventAck, cmdAudit,
	cmdPackageAdd, cmdPackageRemove, cmdTaskCreate, cmdTaskStop, cmdTaskRetry, cmdTaskRemove}

func taskStatusRec(seq uint64, task, status string) []byte {
	p, _ := json.Marshal(record.TaskStatus{TaskID: task, Status: status})
	r := record.Record{DeviceID: dev, Seq: seq, Kind: record.KindTaskStatus, CollectedAt: time.Unix(2500, 0).UTC(), Schema: 1, Payload: p,
		ReceivedAt: time.Unix(2600, 0).UTC(), Channel: record.ChannelOnline, SiteID: "s1", RelayNode: "r1"}
	b, _ := json.Marshal(r)
	return b
}

func offlineCmd(op uint64, fields func(w *cmdenc.Writer)) []byte {
	w := cmdenc.NewWriter(byte(cmdOffline), commandVersion, 64)
	w.Uint(op)
	fields(w)
	return w.Done()
}

// fuzzSeeds are valid commands of every type, in an order that applies
// cleanly to an empty state.
func fuzzSeeds() [][]byte {
	at := time.Unix(1700000000, 0).UTC()
	return [][]byte{
		encodeSecrets("adminhash"),
		(&contactCommand{Site: "s1", Relay: "r1", At: at, Stats: wire.OutboxStats{}}).encode(),
		ingestCmd(1, inv(1, "pc", "SN1", time.Unix(1000, 0).UTC()), []byte("{not json")),
		encodeEvent(event.Event{Number: 1, Severity: "warning", Type: "t", Source: "c1", Time: at, Message: "m"}),
		(&ackCommand{ID: 4 << 8, By: "admin", From: "10.0.0.1", At: at}).encode(), // the event above: index 4, sub 0
		encodeAudit(AuditEntry{Time: at, Node: "c1", Who: "token:01", Action: "POST /api/v1/packages", From: "10.0.0.1", Result: "ok"}),
		encodeJSONCommand(cmdPackageAdd, &Package{ID: "tool@1.0", Name: "tool", Version: "1.0", Type: "file", FileName: "t.bin", SHA256: "ab", Size: 3, CreatedAt: at}),
		// Apply names the task "t" + its index: t8.
		encodeJSONCommand(cmdTaskCreate, &Task{ID: "ignored", Package: "tool@1.0", Devices: []string{dev}, Site: "s1", CreatedAt: at}),
		ingestCmd(3, taskStatusRec(2, "t8", "failed")),
		encodeJSONCommand(cmdTaskRetry, &taskOp{Task: "t8", Device: dev, At: at}),
		encodeJSONCommand(cmdTaskStop, &taskOp{Task: "t8", At: at}),
		offlineCmd(offlineOpKeys, func(w *cmdenc.Writer) { w.Bytes([]byte(`{"seed":"AAAA","age":"x"}`)) }),
		offlineCmd(offlineOpKit, func(w *cmdenc.Writer) {
			w.String("kit1")
			w.String("name")
			w.Time(at)
			w.Uint(0)
			w.Bytes([]byte(`{}`))
		}),
		(&offlineImportCommand{At: at, Via: "central", Items: []offlineItem{{Ledger: []byte("ledger-1"), DeviceKey: []byte("k"), KitID: "kit1", KitGen: 1,
			Record: inv(0, "off", "SN2", time.Unix(900, 0).UTC())}}}).encode(),
	}
}

func fuzzState(tb testing.TB) (*badger.DB, string) {
	tb.Helper()
	return machine.State(tb, fuzzSeeds())
}

// machine is Apply as the fuzz harness drives it, on a fresh Node each time.
var machine = fuzzx.Machine{Apply: func(txn *badger.Txn, index uint64, cmd []byte) []byte {
	return (*fsm)(&Node{}).Apply(txn, index, cmd)
}, Result: resultError}

// FuzzApply covers every central command type (ingest with every record
// kind, contact, secrets, events, event acks, audit, packages, tasks and
// offline keys, kits and imports): Apply does not panic, an error result
// (decode failure or refusal) writes nothing, and two replicas applying the
// same entry to the same state agree on the result and the state.
func FuzzApply(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	at := time.Unix(1700000100, 0).UTC()
	// Refusals and odd cases of the table tests.
	f.Add(encodeJSONCommand(cmdPackageAdd, &Package{ID: "tool@1.0"}))                  // exists
	f.Add(encodeJSONCommand(cmdPackageRemove, "tool@1.0"))                             // in use
	f.Add(encodeJSONCommand(cmdPackageRemove, "nope"))                                 // not found
	f.Add(encodeJSONCommand(cmdTaskCreate, &Task{ID: "t2", Package: "nope"}))          // no package
	f.Add(encodeJSONCommand(cmdTaskRemove, &taskOp{Task: "t8", At: at}))               // ok
	f.Add(encodeJSONCommand(cmdTaskRetry, &taskOp{Task: "t8", Device: "x", At: at}))   // not a target
	f.Add((&ackCommand{ID: 99999, By: "admin", At: at}).encode())                      // no event
	f.Add(ingestCmd(1, inv(1, "pc", "SN1", time.Unix(1000, 0).UTC())))                 // replay
	f.Add(ingestCmd(9, inv(5, "pc", "SN9", time.Unix(10, 0).UTC())))                   // older inventory
	f.Add(ingestCmd(4, taskStatusRec(3, "t8", "bogus"), taskStatusRec(4, "t9", "ok"))) // bad status, unknown task
	f.Add(offlineCmd(9, func(*cmdenc.Writer) {}))
	f.Add([]byte{byte(cmdEvent), commandVersion, 2, '{', '}'})
	f.Add([]byte{byte(cmdAudit), commandVersion, 4, 'n', 'u', 'l', 'l'})
	f.Add([]byte{byte(cmdContact), commandVersion, 0, 0, 0, 0})
	db, base := fuzzState(f)
	f.Fuzz(func(t *testing.T, cmd []byte) {
		if len(cmd) == 0 || !slices.Contains(knownCommands, commandType(cmd[0])) {
			return
		}
		machine.Check(t, db, base, 100, cmd)
	})
}
