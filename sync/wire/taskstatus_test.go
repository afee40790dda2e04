package wire

import (
	"encoding/json"
	"testing"
	"time"
)

// TestTaskDeviceStatus_JSON pins the JSON central and the relays served
// before they shared this type (`edgesync task show` and the tests read it).
func TestTaskDeviceStatus_JSON(t *testing.T) {
	tests := []struct {
		name string
		in   TaskDeviceStatus
		want string
	}{
		{"waiting", TaskDeviceStatus{Device: "d1", Status: TaskWaiting}, `{"device":"d1","status":"waiting"}`},
		{"failed", TaskDeviceStatus{Device: "d1", Hostname: "pc", Status: TaskFailed, Cause: "disk_space", Message: "m",
			At: time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC), Attempt: 2},
			`{"device":"d1","hostname":"pc","status":"failed","cause":"disk_space","message":"m","at":"2026-11-21T10:00:00Z","attempt":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.in)
			if err != nil || string(b) != tt.want {
				t.Fatalf("Marshal = %s, %v; want %s", b, err, tt.want)
			}
		})
	}
}

func TestTaskStatusKinds(t *testing.T) {
	tests := []struct {
		status               string
		terminal, reportable bool
	}{
		{TaskWaiting, false, false},
		{TaskDownloading, false, true},
		{TaskDownloaded, false, true},
		{TaskInstalling, false, true},
		{TaskSuccessful, true, true},
		{TaskFailed, true, true},
		{TaskCancelled, true, false},
		{"bogus", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.status, func(t *testing.T) {
			if got := TerminalTaskStatus(tt.status); got != tt.terminal {
				t.Errorf("TerminalTaskStatus(%q) = %v", tt.status, got)
			}
			if got := ReportableTaskStatus(tt.status); got != tt.reportable {
				t.Errorf("ReportableTaskStatus(%q) = %v", tt.status, got)
			}
		})
	}
}
