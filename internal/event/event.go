package event

import "time"

// Severity of an event.
const (
	Information = "Information"
	Warning     = "Warning"
	Critical    = "Critical"
)

// Type of an event.
const (
	TypeSettings     = "Settings"
	TypeError        = "Error"
	TypeSecurity     = "Security"
	TypeDistribution = "Distribution"
	TypeDevice       = "Device"
)

// Event numbers. 2xx and 10xx follow the product; 5xxx are edgesync's own.
const (
	ControlChars    = 211  // record refused: control characters
	PayloadTooLarge = 212  // record refused: too large
	DiskLow         = 1094 // data disk free space is scarce
	DiskCritical    = 1095 // data disk almost full: new data refused
	ServiceStarted  = 1098
	ServiceStopped  = 1099
	BackpressureOn  = 5001 // relay refuses new reports (outbox quota or disk)
	BackpressureOff = 5002
	UplinkDown      = 5003 // uplink to central down longer than the set time
	UplinkUp        = 5004
	CloneDetected   = 5005 // same device ID, different hardware
	SeqConflict     = 5006 // a device replayed a sequence with different content
	SiteMismatch    = 5007 // a relay sent data for a site its certificate does not name
	StaleInventory  = 5008 // a record older than the current inventory went to history only
)

// Event is one entry of a node's event log.
type Event struct {
	ID       uint64    `json:"id"`
	Number   int       `json:"number"`
	Severity string    `json:"severity"`
	Type     string    `json:"type"`
	Source   string    `json:"source"`
	Time     time.Time `json:"time"`
	Message  string    `json:"message"`
}
