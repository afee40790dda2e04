package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/wire"
)

// Per-device task status at the site (DESIGN.md §1: the relay keeps it in
// its Raft state). Apply folds every task_status record an agent reports
// into "s/<task>/<device>" (the latest by the device's seq), so a relay node
// answers GET /api/v1/tasks/{id} from the site's own state — while central
// is unreachable too. The entries go when the catalog drops the task.

var prefixTaskStatus = []byte("s/") // s/<task>/<device> → siteTaskStatus JSON

// siteTaskStatus is the last status a device reported for a task.
type siteTaskStatus struct {
	Status  string    `json:"status"`
	Cause   string    `json:"cause,omitempty"`
	Message string    `json:"message,omitempty"`
	At      time.Time `json:"at"`
	Seq     uint64    `json:"seq"`
	Attempt int       `json:"attempt,omitempty"` // the task's attempt for the device when reported
}

func taskStatusKey(task, dev string) []byte {
	return append(append(append(slices.Clone(prefixTaskStatus), task...), '/'), dev...)
}

var taskStatusMarker = []byte(`"` + string(record.KindTaskStatus) + `"`)

// applyTaskStatus folds one accepted record into the site's task statuses
// when it is a task_status record; other records cost a byte search.
func applyTaskStatus(txn *badger.Txn, dev string, r reportRecord) error {
	if r.Inventory || !bytes.Contains(r.Data, taskStatusMarker) {
		return nil
	}
	var rec record.Record
	if err := json.Unmarshal(r.Data, &rec); err != nil || rec.Kind != record.KindTaskStatus {
		return nil
	}
	var ts record.TaskStatus
	if err := json.Unmarshal(rec.Payload, &ts); err != nil || ts.TaskID == "" || len(ts.TaskID) > 128 {
		return nil
	}
	k := taskStatusKey(ts.TaskID, dev)
	var cur siteTaskStatus
	if found, err := kv.GetJSON(txn, k, &cur); err != nil {
		return err
	} else if found && cur.Seq >= r.Seq {
		return nil
	}
	var t wire.CatalogTask
	if _, err := kv.GetJSON(txn, append(slices.Clone(prefixCatTask), ts.TaskID...), &t); err != nil {
		return err
	}
	return kv.PutJSON(txn, k, siteTaskStatus{Status: ts.Status, Cause: ts.Cause, Message: ts.Message, At: rec.CollectedAt,
		Seq: r.Seq, Attempt: t.Attempts[dev]})
}

// deleteTaskStatuses removes a dropped task's statuses.
func deleteTaskStatuses(txn *badger.Txn, task string) error {
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = append(append(slices.Clone(prefixTaskStatus), task...), '/')
	it := txn.NewIterator(opts)
	var del [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		del = append(del, it.Item().KeyCopy(nil))
	}
	it.Close()
	for _, k := range del {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// TaskDeviceStatus is one device's state in a task as the site sees it
// (the JSON of central's task view).
type TaskDeviceStatus = wire.TaskDeviceStatus

// TaskView is a task's progress at the site: the same fields as central's
// task view (so `edgesync task show --server RELAY` reads it), over the
// site's targets only and from the site's own state.
type TaskView struct {
	ID        string             `json:"id"`
	Package   string             `json:"package"`
	Site      string             `json:"site"`
	At        time.Time          `json:"at,omitzero"`
	CreatedAt time.Time          `json:"created_at"`
	Stopped   bool               `json:"stopped,omitempty"`
	State     string             `json:"state"` // scheduled, running, stopped, finished
	Completed int                `json:"completed"`
	Total     int                `json:"total"`
	Errors    int                `json:"errors"`
	Counts    map[string]int     `json:"counts"`
	Statuses  []TaskDeviceStatus `json:"statuses"`
}

// ErrNoTask means the site's catalog has no such task.
var ErrNoTask = errors.New("relay: no such task at this site")

// TaskView returns a task's per-device statuses at this site. A device the
// administrator stopped is cancelled; one retried since its last report is
// waiting again.
func (n *Node) TaskView(id string) (TaskView, error) {
	var v TaskView
	err := n.raft.View(func(txn *badger.Txn) error {
		var t wire.CatalogTask
		if found, err := kv.GetJSON(txn, append(slices.Clone(prefixCatTask), id...), &t); err != nil {
			return err
		} else if !found {
			return fmt.Errorf("%w: %s", ErrNoTask, id)
		}
		v = TaskView{ID: t.ID, Package: t.Package, Site: n.cfg.Site, At: t.At, CreatedAt: t.CreatedAt, Stopped: t.Stopped,
			Total: len(t.Devices), Counts: map[string]int{}, Statuses: make([]TaskDeviceStatus, 0, len(t.Devices))}
		for _, dev := range t.Devices {
			st := TaskDeviceStatus{Device: dev, Status: wire.TaskWaiting, Attempt: t.Attempts[dev]}
			if d, err := getDevice(txn, dev); err != nil {
				return err
			} else if d != nil {
				st.Hostname = d.Hostname
			}
			var s siteTaskStatus
			found, err := kv.GetJSON(txn, taskStatusKey(t.ID, dev), &s)
			if err != nil {
				return err
			}
			switch {
			case slices.Contains(t.Cancelled, dev):
				st.Status = wire.TaskCancelled
			case found && s.Attempt == t.Attempts[dev]:
				st.Status, st.Cause, st.Message, st.At = s.Status, s.Cause, s.Message, s.At
			}
			v.Counts[st.Status]++
			if wire.TerminalTaskStatus(st.Status) {
				v.Completed++
			}
			if st.Status == wire.TaskFailed {
				v.Errors++
			}
			v.Statuses = append(v.Statuses, st)
		}
		return nil
	})
	switch {
	case err != nil:
	case v.Completed == v.Total:
		v.State = "finished"
	case v.Stopped:
		v.State = "stopped"
	case !v.At.IsZero() && time.Now().Before(v.At):
		v.State = "scheduled"
	default:
		v.State = "running"
	}
	return v, err
}

func (n *Node) handleTask(w http.ResponseWriter, r *http.Request) {
	v, err := n.TaskView(r.PathValue("id"))
	switch {
	case errors.Is(err, ErrNoTask):
		httpx.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}
