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

// Inventory is the payload of a KindInventory record. The fields follow the
// hardware and software inventory lists of the products we replace (ITDM2's
// offline-device columns, ISM's hardware inventory): what a platform does not
// report stays empty. Every field after Users is optional and was added for
// Windows PCs; Linux fills those it can.
type Inventory struct {
	Hostname     string            `json:"hostname"`
	OS           OS                `json:"os"`
	Hardware     Hardware          `json:"hardware"`
	Software     []Software        `json:"software,omitempty"`
	Users        []string          `json:"users,omitempty"` // logged on now
	CustomFields map[string]string `json:"custom_fields,omitempty"`

	// Domain is the DNS domain the computer is joined to; Workgroup is set
	// instead on a computer that is not in a domain.
	Domain     string      `json:"domain,omitempty"`
	Workgroup  string      `json:"workgroup,omitempty"`
	LocalUsers []string    `json:"local_users,omitempty"`
	Updates    []Update    `json:"updates,omitempty"`
	Antivirus  []Antivirus `json:"antivirus,omitempty"`
	// Warnings names each part of the collection that failed (a WMI class
	// missing, access denied); its fields are empty, the rest is good.
	Warnings []string `json:"warnings,omitempty"`
}

// OS describes the operating system.
type OS struct {
	Name    string `json:"name"` // "Microsoft Windows 11 Pro", "Debian GNU/Linux"
	Version string `json:"version,omitempty"`
	Kernel  string `json:"kernel,omitempty"`
	Arch    string `json:"arch,omitempty"`

	Family      string `json:"family,omitempty"`  // "windows", "linux"
	Edition     string `json:"edition,omitempty"` // "Professional", "ServerStandard"
	Build       string `json:"build,omitempty"`   // "22631.4460"
	ServicePack string `json:"service_pack,omitempty"`
	InstallDate string `json:"install_date,omitempty"` // RFC 3339, UTC
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

	UUID          string   `json:"uuid,omitempty"`
	CPUThreads    int      `json:"cpu_threads,omitempty"`
	VideoAdapters []string `json:"video_adapters,omitempty"`
	Keyboard      string   `json:"keyboard,omitempty"`
}

// Disk is one block device.
type Disk struct {
	Name      string `json:"name"`
	SizeBytes uint64 `json:"size_bytes"`
	Model     string `json:"model,omitempty"`
	Type      string `json:"type,omitempty"` // "ssd", "hdd", or the bus ("USB", "SCSI")
	Serial    string `json:"serial,omitempty"`
}

// Interface is one network interface. Addresses are in CIDR form, so they
// carry the subnet mask.
type Interface struct {
	Name      string   `json:"name"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty"`

	Description string   `json:"description,omitempty"`
	Gateways    []string `json:"gateways,omitempty"`
	DNSServers  []string `json:"dns_servers,omitempty"`
	DHCP        bool     `json:"dhcp,omitempty"`
}

// Software is one installed package.
type Software struct {
	Name      string `json:"name"`
	Version   string `json:"version,omitempty"`
	Publisher string `json:"publisher,omitempty"`

	InstallDate string `json:"install_date,omitempty"` // YYYY-MM-DD
	// Arch is the registry view a Windows program was found in ("x64",
	// "x86") or the package architecture on Linux.
	Arch string `json:"arch,omitempty"`
	// User is set for a program installed for one user only (a per-user
	// Uninstall key), to that user's SID or name.
	User string `json:"user,omitempty"`
}

// Update is one installed OS update (a Windows hotfix).
type Update struct {
	ID          string `json:"id"` // "KB5031356"
	Description string `json:"description,omitempty"`
	InstalledOn string `json:"installed_on,omitempty"` // YYYY-MM-DD
}

// Antivirus is one antivirus product as the OS reports it.
type Antivirus struct {
	Name     string `json:"name"`
	Enabled  bool   `json:"enabled"`
	UpToDate bool   `json:"up_to_date"`
}

// Event is the payload of a KindEvent record.
type Event struct {
	Number   int    `json:"number"`
	Severity string `json:"severity"`
	Type     string `json:"type"`
	Message  string `json:"message"`
}
