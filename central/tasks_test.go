package central

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/kv"
)

// siteRec is an online inventory record of device id at site.
func siteRec(id, site string, seq uint64) []byte {
	p, _ := json.Marshal(record.Inventory{Hostname: "h-" + id[:4]})
	r := record.Record{DeviceID: id, Seq: seq, Kind: record.KindInventory, CollectedAt: time.Unix(1000, 0).UTC(), Schema: 1, Payload: p,
		ReceivedAt: time.Unix(2000, 0).UTC(), Channel: record.ChannelOnline, SiteID: site, RelayNode: site + "-r1"}
	b, _ := json.Marshal(r)
	return b
}

func siteIngest(site string, first uint64, recs ...[]byte) []byte {
	return (&ingestCommand{Site: site, Relay: site + "-r1", At: time.Unix(3000, 0).UTC(), First: first, Records: recs}).encode()
}

func taskOf(t *testing.T, db *badger.DB, id string) Task {
	t.Helper()
	var task Task
	if err := db.View(func(txn *badger.Txn) error {
		tk, err := getTask(txn, id)
		if err == nil {
			task = *tk
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return task
}

// TestTask_LateTargets: devices central sees for the first time after a task
// was created join the running tasks for their site or for all devices,
// never a device-list task or a stopped one; a finished task runs again.
func TestTask_LateTargets(t *testing.T) {
	const (
		a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
		c = "cccccccccccccccccccccccccccccccc"
	)
	db := newStateDB(t)
	at := time.Unix(4000, 0).UTC()
	applyCmd(t, db, 1, encodeJSONCommand(cmdPackageAdd, &Package{ID: "p@1", Name: "p", Version: "1", Type: PackageFile, FileName: "p", SHA256: "ab", Size: 1}))
	applyCmd(t, db, 2, siteIngest("s1", 1, siteRec(a, "s1", 1)))
	create := func(index uint64, task Task) string {
		task.Package, task.CreatedAt = "p@1", at
		applyCmd(t, db, index, encodeJSONCommand(cmdTaskCreate, &task))
		return "t" + string(rune('0'+index))
	}
	siteTask := create(3, Task{Devices: []string{a}, Site: "s1"})
	listTask := create(4, Task{Devices: []string{a}})
	allTask := create(5, Task{Devices: []string{a}, All: true})
	stoppedTask := create(6, Task{Devices: []string{a}, Site: "s1"})
	applyCmd(t, db, 7, encodeJSONCommand(cmdTaskStop, &taskOp{Task: stoppedTask, At: at}))
	// The site task finishes for a.
	st, _ := json.Marshal(record.TaskStatus{TaskID: siteTask, Status: StatusSuccessful})
	done, _ := json.Marshal(record.Record{DeviceID: a, Seq: 2, Kind: record.KindTaskStatus, CollectedAt: at, Schema: 1, Payload: st,
		ReceivedAt: at, Channel: record.ChannelOnline, SiteID: "s1", RelayNode: "s1-r1"})
	applyCmd(t, db, 8, siteIngest("s1", 2, done))
	if tk := taskOf(t, db, siteTask); tk.FinishedAt.IsZero() {
		t.Fatal("site task not finished after its only device succeeded")
	}
	verBefore := catalogVersion(t, db)

	// b enrolls at s1, c at s2.
	applyCmd(t, db, 9, siteIngest("s1", 3, siteRec(b, "s1", 1)))
	applyCmd(t, db, 10, siteIngest("s2", 1, siteRec(c, "s2", 1)))
	// A device seen again is not fresh: nothing changes for it.
	applyCmd(t, db, 11, siteIngest("s1", 4, siteRec(a, "s1", 3)))

	for _, tc := range []struct {
		name, task string
		want       []string
	}{
		{"site task takes the site's new device", siteTask, []string{a, b}},
		{"device-list task never grows", listTask, []string{a}},
		{"all task takes every new device", allTask, []string{a, b, c}},
		{"stopped task does not grow", stoppedTask, []string{a}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := taskOf(t, db, tc.task).Devices; !slices.Equal(got, tc.want) {
				t.Fatalf("devices %v, want %v", got, tc.want)
			}
		})
	}
	tk := taskOf(t, db, siteTask)
	if !tk.FinishedAt.IsZero() || tk.Rev <= verBefore {
		t.Errorf("site task after a new target: finished %v, rev %d (catalog version was %d): want running again and a new catalog rev", tk.FinishedAt, tk.Rev, verBefore)
	}
	var v TaskView
	db.View(func(txn *badger.Txn) (err error) { v, err = viewOf(txn, &tk, false); return err })
	if v.Total != 2 || v.Completed != 1 || v.State != "running" || v.Counts[StatusWaiting] != 1 {
		t.Errorf("site task view %+v, want 1 of 2 done, running, 1 waiting", v)
	}
}

func catalogVersion(t *testing.T, db *badger.DB) uint64 {
	t.Helper()
	var v uint64
	db.View(func(txn *badger.Txn) (err error) { v, err = kv.GetUint(txn, keyCatalogVer); return err })
	return v
}
