package record

import (
	"encoding/json"
	"time"
)

// Kind names what a record carries.
type Kind string

// Record kinds (DESIGN.md §5).
const (
	KindInventory  Kind = "inventory"
	KindEvent      Kind = "event"
	KindOplog      Kind = "oplog"
	KindTaskStatus Kind = "task_status"
)

// Channel names how a record reached the system.
type Channel string

// Channels.
const (
	ChannelOnline Channel = "online"
	ChannelUSB    Channel = "usb"
)

// SchemaVersion is the record schema this build writes and accepts.
const SchemaVersion = 1

// Record is the envelope every piece of agent data travels in, from the agent
// (or offline collector) through the relay outbox to central.
//
// Agents fill DeviceID, Seq, Kind, CollectedAt, Schema and Payload. The first
// relay (or importer) sets ReceivedAt, Channel, SiteID, RelayNode and SiteSeq.
type Record struct {
	DeviceID    string          `json:"device_id"`
	Seq         uint64          `json:"seq"`
	Kind        Kind            `json:"kind"`
	CollectedAt time.Time       `json:"collected_at"`
	Schema      int             `json:"schema"`
	Payload     json.RawMessage `json:"payload"`

	ReceivedAt time.Time `json:"received_at,omitzero"`
	Channel    Channel   `json:"channel,omitempty"`
	SiteID     string    `json:"site_id,omitempty"`
	RelayNode  string    `json:"relay_node,omitempty"`
	SiteSeq    uint64    `json:"site_seq,omitempty"`
	BundleID   string    `json:"bundle_id,omitempty"`
}

// Inventory is the payload of a KindInventory record.
type Inventory struct {
	Hostname     string            `json:"hostname"`
	OS           OS                `json:"os"`
	Hardware     Hardware          `json:"hardware"`
	Software     []Software        `json:"software,omitempty"`
	Users        []string          `json:"users,omitempty"`
	CustomFields map[string]string `json:"custom_fields,omitempty"`
}

// OS describes the operating system.
type OS struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Kernel  string `json:"kernel,omitempty"`
	Arch    string `json:"arch,omitempty"`
}

// Hardware describes the machine.
type Hardware struct {
	Vendor      string      `json:"vendor,omitempty"`
	Model       string      `json:"model,omitempty"`
	Serial      string      `json:"serial,omitempty"`
	BIOS        string      `json:"bios,omitempty"`
	CPUModel    string      `json:"cpu_model,omitempty"`
	CPUCores    int         `json:"cpu_cores,omitempty"`
	MemoryBytes uint64      `json:"memory_bytes,omitempty"`
	Disks       []Disk      `json:"disks,omitempty"`
	Interfaces  []Interface `json:"interfaces,omitempty"`
}

// Disk is one block device.
type Disk struct {
	Name      string `json:"name"`
	SizeBytes uint64 `json:"size_bytes"`
	Model     string `json:"model,omitempty"`
}

// Interface is one network interface.
type Interface struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
}

// Software is one installed package.
type Software struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	Publisher string `json:"publisher,omitempty"`
}

// Event is the payload of a KindEvent record.
type Event struct {
	Number   int    `json:"number"`
	Severity string `json:"severity"`
	Type     string `json:"type"`
	Message  string `json:"message"`
}
