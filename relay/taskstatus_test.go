package relay

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/wire"
)

func statusRec(seq uint64, task, status string) reportRecord {
	p, _ := json.Marshal(record.TaskStatus{TaskID: task, Status: status})
	b, _ := json.Marshal(record.Record{DeviceID: testDev, Seq: seq, Kind: record.KindTaskStatus, CollectedAt: time.Unix(int64(seq), 0).UTC(), Schema: 1, Payload: p})
	h := sha256.Sum256(b)
	return reportRecord{Seq: seq, Hash: h[:], CollectedAt: time.Unix(int64(seq), 0).UTC(), Data: b}
}

func siteStatus(t *testing.T, db *badger.DB, task string) (siteTaskStatus, bool) {
	t.Helper()
	var s siteTaskStatus
	var found bool
	if err := db.View(func(txn *badger.Txn) (err error) {
		found, err = kv.GetJSON(txn, taskStatusKey(task, testDev), &s)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return s, found
}

// TestApplyTaskStatus: task_status records fold into the site's per-device
// status (latest seq wins, stamped with the task's attempt); other records
// do not; dropping the task from the catalog drops its statuses.
func TestApplyTaskStatus(t *testing.T) {
	db := newStateDB(t)
	enroll(t, db)
	cat := func(index, since uint64, tasks []wire.CatalogTask, live []string) {
		t.Helper()
		c := &catalogCommand{Since: since, Catalog: wire.Catalog{Version: index, Tasks: tasks, LiveTask: live, LivePkgs: []string{}}}
		if err := resultError(apply(t, db, index, encodeCatalog(c))); err != nil {
			t.Fatal(err)
		}
	}
	cat(3, 0, []wire.CatalogTask{{ID: "t1", Package: "p@1", Devices: []string{testDev}, Attempts: map[string]int{testDev: 2}}}, []string{"t1"})

	results(t, apply(t, db, 4, report(statusRec(1, "t1", "downloading"), rec(2, `{"kind":"inventory"}`), statusRec(3, "t1", "successful"))))
	if s, ok := siteStatus(t, db, "t1"); !ok || s.Status != "successful" || s.Seq != 3 || s.Attempt != 2 {
		t.Fatalf("status %+v (found %v), want successful at seq 3, attempt 2", s, ok)
	}
	// A later seq wins; an earlier one arriving afterwards does not.
	results(t, apply(t, db, 5, report(statusRec(9, "t1", "failed"))))
	results(t, apply(t, db, 6, report(statusRec(8, "t1", "installing"))))
	if s, _ := siteStatus(t, db, "t1"); s.Status != "failed" || s.Seq != 9 {
		t.Fatalf("status %+v, want failed at seq 9", s)
	}
	// The catalog drops t1: its statuses go.
	cat(7, 3, nil, []string{})
	if s, ok := siteStatus(t, db, "t1"); ok {
		t.Fatalf("status %+v kept after the task left the catalog", s)
	}
}
