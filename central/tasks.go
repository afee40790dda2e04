package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/wire"
)

// Distribution tasks (DESIGN.md §2 flows 2 and 4). A task is Raft state under
// "t/<id>"; per-device status under "ts/<id>/<device>" (absent = waiting) and
// counts by status under "ts/<id>". Targets are resolved when the task is
// created: online-managed devices only. A task for a site or for all devices
// also takes online-managed devices central sees for the first time later
// (enrolled after the task was created), until it is stopped or removed; a
// finished task runs again for them. A task for a device list never grows.

var (
	prefixTask       = []byte("t/")
	prefixTaskStatus = []byte("ts/")
)

// Per-device task statuses (sync/wire: the relays serve the same).
const (
	StatusWaiting     = wire.TaskWaiting
	StatusDownloading = wire.TaskDownloading
	StatusDownloaded  = wire.TaskDownloaded
	StatusInstalling  = wire.TaskInstalling
	StatusSuccessful  = wire.TaskSuccessful
	StatusFailed      = wire.TaskFailed
	StatusCancelled   = wire.TaskCancelled
)

// Failure causes (the product's events 1018/1019).
var Causes = map[string]string{
	"disk_space":      "Insufficient hard disk free space.",
	"file_access":     "Failed to access the file or folder.",
	"internal":        "An internal error has occurred.",
	"cannot_unpack":   "Cannot unzip package.",
	"command_start":   "Failed to start the command.",
	"command_stopped": "Command processing has stopped.",
	"command_exit":    "Execution command has terminated abnormally.",
}

// Distribution event numbers (reference §3.7).
const (
	eventTaskFailed = 1018
	eventTaskEnded  = 1021
)

// Task is a distribution task.
type Task struct {
	ID         string         `json:"id"`
	Package    string         `json:"package"`
	Devices    []string       `json:"devices"` // resolved targets, sorted
	Site       string         `json:"site,omitempty"`
	All        bool           `json:"all,omitempty"`
	At         time.Time      `json:"at,omitzero"`
	CreatedAt  time.Time      `json:"created_at"`
	Stopped    bool           `json:"stopped,omitempty"`
	Cancelled  []string       `json:"cancelled,omitempty"` // sorted
	Attempts   map[string]int `json:"attempts,omitempty"`
	FinishedAt time.Time      `json:"finished_at,omitzero"`
	Rev        uint64         `json:"rev"`
}

func (t *Task) wire() wire.CatalogTask {
	return wire.CatalogTask{ID: t.ID, Package: t.Package, Devices: t.Devices, At: t.At, Stopped: t.Stopped,
		Cancelled: t.Cancelled, Attempts: t.Attempts, CreatedAt: t.CreatedAt, Rev: t.Rev}
}

func (t *Task) targets(dev string) bool {
	_, ok := slices.BinarySearch(t.Devices, dev)
	return ok
}

// DeviceStatus is one device's state in a task.
type DeviceStatus = wire.TaskDeviceStatus

// taskOp is the body of stop, retry and remove commands.
type taskOp struct {
	Task   string    `json:"task"`
	Device string    `json:"device,omitempty"`
	At     time.Time `json:"at"`
}

func taskKey(id string) []byte        { return key(prefixTask, id) }
func countsKey(id string) []byte      { return key(prefixTaskStatus, id) }
func statusKey(id, dev string) []byte { return key(prefixTaskStatus, id+"/"+dev) }
func statusPrefix(id string) []byte   { return key(prefixTaskStatus, id+"/") }
func idResult(id string) []byte {
	w := cmdenc.NewWriter(byte(cmdTaskCreate), commandVersion, 16)
	w.String(id)
	return w.Done()
}
func countResult(t commandType, n int) []byte {
	w := cmdenc.NewWriter(byte(t), commandVersion, 8)
	w.Uint(uint64(n))
	return w.Done()
}

func eachTask(txn *badger.Txn, fn func(t *Task) error) error {
	return eachJSON(txn, prefixTask, func(b []byte) error {
		var t Task
		if err := json.Unmarshal(b, &t); err != nil {
			return err
		}
		return fn(&t)
	})
}

func getTask(txn *badger.Txn, id string) (*Task, error) {
	var t Task
	found, err := kv.GetJSON(txn, taskKey(id), &t)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%w: task %s", ErrNotFound, id)
	}
	return &t, nil
}

func getCounts(txn *badger.Txn, id string) (map[string]int, error) {
	c := map[string]int{}
	_, err := kv.GetJSON(txn, countsKey(id), &c)
	return c, err
}

func getStatus(txn *badger.Txn, id, dev string) (DeviceStatus, error) {
	st := DeviceStatus{Device: dev, Status: StatusWaiting}
	_, err := kv.GetJSON(txn, statusKey(id, dev), &st)
	return st, err
}

// setStatus writes a device's status and moves the counts.
func setStatus(txn *badger.Txn, id string, counts map[string]int, old string, st DeviceStatus) error {
	if old != StatusWaiting {
		counts[old]--
	}
	if st.Status == StatusWaiting {
		if err := txn.Delete(statusKey(id, st.Device)); err != nil {
			return err
		}
	} else {
		counts[st.Status]++
		if err := kv.PutJSON(txn, statusKey(id, st.Device), st); err != nil {
			return err
		}
	}
	return nil
}

func putTask(txn *badger.Txn, index uint64, t *Task, catalog bool) error {
	if catalog {
		t.Rev = index
		if err := kv.SetUint(txn, keyCatalogVer, index); err != nil {
			return err
		}
	}
	return kv.PutJSON(txn, taskKey(t.ID), t)
}

func applyTaskCreate(txn *badger.Txn, index uint64, t *Task) ([]byte, error) {
	var p Package
	if found, err := kv.GetJSON(txn, key(prefixPackage, t.Package), &p); err != nil {
		return nil, err
	} else if !found {
		return nil, fmt.Errorf("%w: package %s", ErrNotFound, t.Package)
	}
	if len(t.Devices) == 0 {
		return nil, fmt.Errorf("%w: a task needs at least one target device", ErrRefused)
	}
	t.ID = "t" + strconv.FormatUint(index, 10)
	slices.Sort(t.Devices)
	t.Devices = slices.Compact(t.Devices)
	t.Stopped, t.Cancelled, t.Attempts, t.FinishedAt = false, nil, nil, time.Time{}
	if err := putTask(txn, index, t, true); err != nil {
		return nil, err
	}
	return idResult(t.ID), kv.PutJSON(txn, countsKey(t.ID), map[string]int{})
}

func applyTaskStop(txn *badger.Txn, index uint64, c *taskOp) ([]byte, error) {
	t, err := getTask(txn, c.Task)
	if err != nil {
		return nil, err
	}
	counts, err := getCounts(txn, t.ID)
	if err != nil {
		return nil, err
	}
	devs := t.Devices
	if c.Device != "" {
		if !t.targets(c.Device) {
			return nil, fmt.Errorf("%w: device %s is not a target of task %s", ErrNotFound, c.Device, t.ID)
		}
		devs = []string{c.Device}
	} else if !t.FinishedAt.IsZero() {
		return nil, fmt.Errorf("%w: task %s has finished", ErrRefused, t.ID)
	}
	stopped := 0
	for _, dev := range devs {
		st, err := getStatus(txn, t.ID, dev)
		if err != nil {
			return nil, err
		}
		switch st.Status {
		case StatusWaiting, StatusDownloading, StatusDownloaded:
		default:
			if c.Device != "" {
				return nil, fmt.Errorf("%w: device %s is %s: a task cannot be stopped once installing has started or it has ended", ErrRefused, dev, st.Status)
			}
			continue
		}
		old := st.Status
		st.Status, st.Cause, st.Message, st.At = StatusCancelled, "", "stopped by an administrator", c.At
		if err := setStatus(txn, t.ID, counts, old, st); err != nil {
			return nil, err
		}
		if i, found := slices.BinarySearch(t.Cancelled, dev); !found {
			t.Cancelled = slices.Insert(t.Cancelled, i, dev)
		}
		stopped++
	}
	if c.Device == "" {
		t.Stopped = true
	}
	if err := kv.PutJSON(txn, countsKey(t.ID), counts); err != nil {
		return nil, err
	}
	finishIfDone(t, counts, c.At)
	return countResult(cmdTaskStop, stopped), putTask(txn, index, t, true)
}

func applyTaskRetry(txn *badger.Txn, index uint64, c *taskOp) ([]byte, error) {
	t, err := getTask(txn, c.Task)
	if err != nil {
		return nil, err
	}
	counts, err := getCounts(txn, t.ID)
	if err != nil {
		return nil, err
	}
	retried := 0
	for _, dev := range t.Devices {
		if c.Device != "" && dev != c.Device {
			continue
		}
		st, err := getStatus(txn, t.ID, dev)
		if err != nil {
			return nil, err
		}
		if st.Status != StatusFailed && st.Status != StatusCancelled {
			continue
		}
		if t.Attempts == nil {
			t.Attempts = map[string]int{}
		}
		t.Attempts[dev]++
		old := st.Status
		if err := setStatus(txn, t.ID, counts, old, DeviceStatus{Device: dev, Status: StatusWaiting}); err != nil {
			return nil, err
		}
		if i, found := slices.BinarySearch(t.Cancelled, dev); found {
			t.Cancelled = slices.Delete(t.Cancelled, i, i+1)
		}
		retried++
	}
	if retried == 0 {
		return nil, fmt.Errorf("%w: task %s has no failed or cancelled device to retry", ErrRefused, t.ID)
	}
	t.Stopped, t.FinishedAt, t.At = false, time.Time{}, time.Time{} // a retry runs at once, whatever the schedule
	if err := kv.PutJSON(txn, countsKey(t.ID), counts); err != nil {
		return nil, err
	}
	return countResult(cmdTaskRetry, retried), putTask(txn, index, t, true)
}

func applyTaskRemove(txn *badger.Txn, index uint64, c *taskOp) error {
	t, err := getTask(txn, c.Task)
	if err != nil {
		return err
	}
	if !t.Stopped && t.FinishedAt.IsZero() {
		return fmt.Errorf("%w: task %s is in progress: stop it first", ErrRefused, t.ID)
	}
	counts, err := getCounts(txn, t.ID)
	if err != nil {
		return err
	}
	if counts[StatusInstalling] > 0 {
		return fmt.Errorf("%w: task %s is installing on %d devices", ErrRefused, t.ID, counts[StatusInstalling])
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = statusPrefix(t.ID)
	it := txn.NewIterator(opts)
	var del [][]byte
	for it.Rewind(); it.Valid(); it.Next() {
		del = append(del, it.Item().KeyCopy(nil))
	}
	it.Close()
	del = append(del, countsKey(t.ID), taskKey(t.ID))
	for _, k := range del {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return kv.SetUint(txn, keyCatalogVer, index)
}

// addLateTargets adds devices central has just seen for the first time to
// the tasks created for their site or for all devices that are not stopped;
// a finished task is running again until the new targets end.
func addLateTargets(txn *badger.Txn, index uint64, devices map[string]*Device, fresh []string) error {
	var online []*Device
	for _, id := range fresh {
		if d := devices[id]; d != nil && d.Channel == string(record.ChannelOnline) {
			online = append(online, d)
		}
	}
	if len(online) == 0 {
		return nil
	}
	var grown []*Task
	if err := eachTask(txn, func(t *Task) error {
		if t.Stopped || (!t.All && t.Site == "") {
			return nil
		}
		added := false
		for _, d := range online {
			if !t.All && d.Site != t.Site {
				continue
			}
			if i, found := slices.BinarySearch(t.Devices, d.ID); !found {
				t.Devices = slices.Insert(t.Devices, i, d.ID)
				added = true
			}
		}
		if added {
			t.FinishedAt = time.Time{}
			grown = append(grown, t)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, t := range grown {
		if err := putTask(txn, index, t, true); err != nil {
			return err
		}
	}
	return nil
}

// finishIfDone sets FinishedAt when every target is in a terminal state.
func finishIfDone(t *Task, counts map[string]int, at time.Time) bool {
	done := counts[StatusSuccessful] + counts[StatusFailed] + counts[StatusCancelled]
	if done >= len(t.Devices) && t.FinishedAt.IsZero() {
		t.FinishedAt = at
		return true
	}
	return false
}

// applyTaskStatus folds one task_status record into its task. Unknown tasks
// and devices that are not targets are ignored; a successful device stays
// successful; a cancelled one takes only news that it went on installing.
func applyTaskStatus(txn *badger.Txn, rec *record.Record) ([]event.Event, error) {
	var ts record.TaskStatus
	if err := json.Unmarshal(rec.Payload, &ts); err != nil || !wire.ReportableTaskStatus(ts.Status) {
		return nil, nil
	}
	t, err := getTask(txn, ts.TaskID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !t.targets(rec.DeviceID) {
		return nil, nil
	}
	cur, err := getStatus(txn, t.ID, rec.DeviceID)
	if err != nil {
		return nil, err
	}
	switch {
	case cur.Status == StatusSuccessful,
		cur.Status == StatusCancelled && ts.Status != StatusInstalling && ts.Status != StatusSuccessful && ts.Status != StatusFailed,
		cur.Status == ts.Status && cur.Cause == ts.Cause:
		return nil, nil
	}
	counts, err := getCounts(txn, t.ID)
	if err != nil {
		return nil, err
	}
	old := cur.Status
	st := DeviceStatus{Device: rec.DeviceID, Status: ts.Status, Cause: ts.Cause, Message: ts.Message, At: rec.CollectedAt, Attempt: t.Attempts[rec.DeviceID]}
	if err := setStatus(txn, t.ID, counts, old, st); err != nil {
		return nil, err
	}
	if err := kv.PutJSON(txn, countsKey(t.ID), counts); err != nil {
		return nil, err
	}
	if old == StatusCancelled {
		if i, found := slices.BinarySearch(t.Cancelled, rec.DeviceID); found {
			t.Cancelled = slices.Delete(t.Cancelled, i, i+1)
			if err := kv.PutJSON(txn, taskKey(t.ID), t); err != nil {
				return nil, err
			}
		}
	}
	var events []event.Event
	if ts.Status == StatusFailed {
		cause := Causes[ts.Cause]
		if cause == "" {
			cause = Causes["internal"]
		}
		events = append(events, event.Event{Number: eventTaskFailed, Severity: event.Warning, Type: event.TypeDistribution,
			Message: fmt.Sprintf("Package distribution task has been terminated abnormally. Task %s for agent %s has been terminated abnormally. Cause of error: %s", t.ID, rec.DeviceID, cause)})
	}
	if wire.TerminalTaskStatus(ts.Status) && finishIfDone(t, counts, rec.ReceivedAt) {
		if err := kv.PutJSON(txn, taskKey(t.ID), t); err != nil {
			return nil, err
		}
		events = append(events, event.Event{Number: eventTaskEnded, Severity: event.Information, Type: event.TypeDistribution,
			Message: fmt.Sprintf("On-demand tasks has ended. On-Demand Task %s has been completed. Please refer the result. Number of Error Nodes=%d", t.ID, counts[StatusFailed])})
	}
	return events, nil
}

// ---- node API ----

// TaskRequest is the body of POST /api/v1/tasks: exactly one of Devices,
// Site and All.
type TaskRequest struct {
	Package string    `json:"package"`
	Devices []string  `json:"devices,omitempty"`
	Site    string    `json:"site,omitempty"`
	All     bool      `json:"all,omitempty"`
	At      time.Time `json:"at,omitzero"`
}

// TaskView is a task with its progress, as `task show` prints it.
type TaskView struct {
	Task
	State     string         `json:"state"` // scheduled, running, stopped, finished
	Completed int            `json:"completed"`
	Total     int            `json:"total"`
	Errors    int            `json:"errors"`
	Counts    map[string]int `json:"counts"`
	Statuses  []DeviceStatus `json:"statuses,omitempty"`
}

// CreateTask resolves the targets and commits the task.
func (n *Node) CreateTask(ctx context.Context, req TaskRequest) (TaskView, error) {
	modes := 0
	for _, b := range []bool{len(req.Devices) > 0, req.Site != "", req.All} {
		if b {
			modes++
		}
	}
	if modes != 1 {
		return TaskView{}, fmt.Errorf("%w: give exactly one of devices, site and all", ErrBadRequest)
	}
	if _, err := n.freshPackage(ctx, req.Package); err != nil {
		return TaskView{}, err
	}
	t := Task{Package: req.Package, Site: req.Site, All: req.All, At: req.At.UTC(), CreatedAt: time.Now().UTC()}
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) error {
		if len(req.Devices) > 0 {
			for _, id := range req.Devices {
				if !record.ValidDeviceID(id) {
					return fmt.Errorf("%w: device ID %q is not 32 lowercase hex characters", ErrBadRequest, id)
				}
				var d Device
				if found, err := kv.GetJSON(txn, key(prefixDevice, id), &d); err != nil {
					return err
				} else if !found {
					return fmt.Errorf("%w: unknown device %s", ErrBadRequest, id)
				}
				if d.Channel != string(record.ChannelOnline) {
					return fmt.Errorf("%w: device %s is managed offline: only online-managed devices can be distribution targets", ErrBadRequest, id)
				}
				t.Devices = append(t.Devices, id)
			}
			return nil
		}
		return eachJSON(txn, prefixDevice, func(b []byte) error {
			var d Device
			if err := json.Unmarshal(b, &d); err != nil {
				return err
			}
			if d.Channel == string(record.ChannelOnline) && (req.All || d.Site == req.Site) {
				t.Devices = append(t.Devices, d.ID)
			}
			return nil
		})
	})
	if err != nil {
		return TaskView{}, err
	}
	if len(t.Devices) == 0 {
		return TaskView{}, fmt.Errorf("%w: no online-managed device matches", ErrBadRequest)
	}
	out, err := n.raft.Propose(ctx, encodeJSONCommand(cmdTaskCreate, &t))
	if err != nil {
		return TaskView{}, err
	}
	if err := resultError(out); err != nil {
		return TaskView{}, err
	}
	_, _, rd, err := cmdenc.NewReader(out)
	if err != nil {
		return TaskView{}, err
	}
	id := rd.String()
	n.log.Info("Task created", "task", id, "package", t.Package, "devices", len(t.Devices))
	return n.freshTaskView(ctx, id, false)
}

// TaskOp stops, retries or removes a task.
func (n *Node) TaskOp(ctx context.Context, typ commandType, id, device string) (int, error) {
	out, err := n.raft.Propose(ctx, encodeJSONCommand(typ, taskOp{Task: id, Device: device, At: time.Now().UTC()}))
	if err != nil {
		return 0, err
	}
	if err := resultError(out); err != nil {
		return 0, err
	}
	if typ == cmdTaskRemove {
		return 0, nil
	}
	_, _, rd, err := cmdenc.NewReader(out)
	if err != nil {
		return 0, err
	}
	return int(rd.Uint()), rd.Err()
}

// StopTask, RetryTask and RemoveTask are TaskOp for each operation.
func (n *Node) StopTask(ctx context.Context, id, device string) (int, error) {
	return n.TaskOp(ctx, cmdTaskStop, id, device)
}

// RetryTask re-runs failed and cancelled devices at once.
func (n *Node) RetryTask(ctx context.Context, id, device string) (int, error) {
	return n.TaskOp(ctx, cmdTaskRetry, id, device)
}

// RemoveTask removes a stopped or finished task.
func (n *Node) RemoveTask(ctx context.Context, id string) error {
	_, err := n.TaskOp(ctx, cmdTaskRemove, id, "")
	return err
}

func viewOf(txn *badger.Txn, t *Task, withStatuses bool) (TaskView, error) {
	counts, err := getCounts(txn, t.ID)
	if err != nil {
		return TaskView{}, err
	}
	v := TaskView{Task: *t, Total: len(t.Devices), Counts: counts}
	v.Completed = counts[StatusSuccessful] + counts[StatusFailed] + counts[StatusCancelled]
	v.Errors = counts[StatusFailed]
	busy := 0
	for s, c := range counts {
		if !wire.TerminalTaskStatus(s) {
			busy += c
		}
	}
	counts[StatusWaiting] = v.Total - v.Completed - busy
	switch {
	case !t.FinishedAt.IsZero():
		v.State = "finished"
	case t.Stopped:
		v.State = "stopped"
	case !t.At.IsZero() && time.Now().Before(t.At):
		v.State = "scheduled"
	default:
		v.State = "running"
	}
	if withStatuses {
		v.Statuses = make([]DeviceStatus, 0, len(t.Devices))
		for _, dev := range t.Devices {
			st, err := getStatus(txn, t.ID, dev)
			if err != nil {
				return TaskView{}, err
			}
			var d Device
			if _, err := kv.GetJSON(txn, key(prefixDevice, dev), &d); err != nil {
				return TaskView{}, err
			}
			st.Hostname = d.Hostname
			if c, ok := Causes[st.Cause]; ok && st.Message == "" {
				st.Message = c
			}
			v.Statuses = append(v.Statuses, st)
		}
	} else {
		v.Devices = nil
	}
	return v, nil
}

// TaskView returns one task with its progress.
func (n *Node) TaskView(id string, withStatuses bool) (TaskView, error) {
	var v TaskView
	err := n.raft.View(func(txn *badger.Txn) error {
		t, err := getTask(txn, id)
		if err != nil {
			return err
		}
		v, err = viewOf(txn, t, withStatuses)
		return err
	})
	return v, err
}

// freshTaskView is TaskView with every acknowledged write applied (a
// follower that forwarded the proposal may lag behind the leader).
func (n *Node) freshTaskView(ctx context.Context, id string, withStatuses bool) (TaskView, error) {
	var v TaskView
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) error {
		t, err := getTask(txn, id)
		if err != nil {
			return err
		}
		v, err = viewOf(txn, t, withStatuses)
		return err
	})
	return v, err
}

// Tasks lists every task with its progress, oldest first.
func (n *Node) Tasks() ([]TaskView, error) {
	out := []TaskView{}
	err := n.raft.View(func(txn *badger.Txn) error {
		return eachTask(txn, func(t *Task) error {
			v, err := viewOf(txn, t, false)
			out = append(out, v)
			return err
		})
	})
	slices.SortFunc(out, func(a, b TaskView) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

func (n *Node) handleTaskCreate(w http.ResponseWriter, r *http.Request) {
	var req TaskRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeDistResult(w, 0, nil, fmt.Errorf("%w: %v", ErrBadRequest, err))
		return
	}
	if err := n.taskInScope(principalOf(r), &req); err != nil {
		httpx.WriteError(w, http.StatusForbidden, "out_of_scope", err.Error())
		return
	}
	v, err := n.CreateTask(r.Context(), req)
	writeDistResult(w, http.StatusCreated, v, err)
}

func (n *Node) handleTasks(w http.ResponseWriter, r *http.Request) {
	ts, err := n.Tasks()
	if in := siteIn(principalOf(r)); in != nil && err == nil {
		err = n.raft.View(func(txn *badger.Txn) error {
			var verr error
			ts = slices.DeleteFunc(ts, func(v TaskView) bool {
				ok, err := taskVisible(txn, &v.Task, in)
				verr = errors.Join(verr, err)
				return !ok
			})
			return verr
		})
	}
	writeDistResult(w, http.StatusOK, ts, err)
}

func (n *Node) handleTask(w http.ResponseWriter, r *http.Request) {
	if !n.checkTask(w, principalOf(r), r.PathValue("id")) {
		return
	}
	v, err := n.TaskView(r.PathValue("id"), true)
	writeDistResult(w, http.StatusOK, v, err)
}

func (n *Node) handleTaskOp(w http.ResponseWriter, r *http.Request) {
	id, op := r.PathValue("id"), r.PathValue("op")
	if !n.checkTask(w, principalOf(r), id) {
		return
	}
	device := strings.TrimSpace(r.URL.Query().Get("device"))
	var (
		c   int
		err error
	)
	switch op {
	case "stop":
		c, err = n.StopTask(r.Context(), id, device)
	case "retry":
		c, err = n.RetryTask(r.Context(), id, device)
	default:
		writeDistResult(w, 0, nil, fmt.Errorf("%w: unknown operation %q (stop, retry)", ErrBadRequest, op))
		return
	}
	writeDistResult(w, http.StatusOK, map[string]any{"task": id, op: c}, err)
}

func (n *Node) handleTaskRemove(w http.ResponseWriter, r *http.Request) {
	if !n.checkTask(w, principalOf(r), r.PathValue("id")) {
		return
	}
	err := n.RemoveTask(r.Context(), r.PathValue("id"))
	writeDistResult(w, http.StatusOK, map[string]any{"removed": r.PathValue("id")}, err)
}
