package wire

import "time"

// Per-device task statuses (DESIGN.md §2 flow 4). An agent reports the
// downloading to failed ones in its task_status records; waiting (nothing
// reported for the current attempt) and cancelled (stopped by an
// administrator) are central's and the relays' own.
const (
	TaskWaiting     = "waiting"
	TaskDownloading = "downloading"
	TaskDownloaded  = "downloaded"
	TaskInstalling  = "installing"
	TaskSuccessful  = "successful"
	TaskFailed      = "failed"
	TaskCancelled   = "cancelled"
)

// TaskDeviceStatus is one device's state in a task. Central's task view and
// a relay's view of its site serve the same JSON, so `edgesync task show`
// reads either.
type TaskDeviceStatus struct {
	Device   string    `json:"device"`
	Hostname string    `json:"hostname,omitempty"`
	Status   string    `json:"status"`
	Cause    string    `json:"cause,omitempty"`
	Message  string    `json:"message,omitempty"`
	At       time.Time `json:"at,omitzero"`
	Attempt  int       `json:"attempt,omitempty"`
}

// TerminalTaskStatus reports whether a device is done with a task:
// successful, failed or cancelled.
func TerminalTaskStatus(s string) bool {
	return s == TaskSuccessful || s == TaskFailed || s == TaskCancelled
}

// ReportableTaskStatus reports whether an agent may report s.
func ReportableTaskStatus(s string) bool {
	switch s {
	case TaskDownloading, TaskDownloaded, TaskInstalling, TaskSuccessful, TaskFailed:
		return true
	}
	return false
}
