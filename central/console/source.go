package console

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/edgesync/edgesync/internal/event"
)

// ErrNotFound is what Source returns for an unknown device or revision.
var ErrNotFound = errors.New("not found")

// ErrCodeRequired is SignIn's answer for a right password of an account
// with two-step sign-in, given without its code.
var ErrCodeRequired = errors.New("enter the code from your authenticator app")

// TOTPEnrolment is what the enrolment page shows.
type TOTPEnrolment struct {
	Secret string
	QRPNG  []byte
}

// Source is what the console reads from (and the little it asks of) central.
// Every call but the sign-ins gets a ctx that carries the session's
// credential (CredOf): the source answers with what that credential may see.
type Source interface {
	// TokenSignIn checks a pasted token (the bootstrap admin token or an
	// account's API token) and returns the session's audit name and
	// credential.
	TokenSignIn(ctx context.Context, token, from string) (who, cred string, ok bool)
	// SignIn checks an account's password and, with two-step sign-in, its
	// code (rate-limited and audited by the source). ErrCodeRequired asks
	// for the code; another error is shown to the person signing in.
	SignIn(ctx context.Context, account, password, code, from string) (who, cred string, err error)
	// BeginTOTP starts the session's account's two-step enrolment.
	BeginTOTP(ctx context.Context) (TOTPEnrolment, error)
	// ConfirmTOTP checks a first code and returns the recovery codes.
	ConfirmTOTP(ctx context.Context, code string) ([]string, error)
	// Allowed reports whether the session may do perm (an
	// internal/account permission), and whether its credential is still
	// valid at all (a disabled account, a revoked token: sign in again).
	Allowed(ctx context.Context, perm string) (allowed, valid bool)
	Overview(ctx context.Context) (Overview, error)
	Devices(ctx context.Context, q DeviceQuery) (DevicePage, error)
	Device(ctx context.Context, id string) (DeviceDetail, error)
	// Revision returns the inventory payload of one of a device's records.
	Revision(ctx context.Context, id string, seq uint64) (json.RawMessage, error)
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	AckEvent(ctx context.Context, id uint64, who, from string) error
}

type credKey struct{}

// WithCred returns ctx carrying a session's credential.
func WithCred(ctx context.Context, cred string) context.Context {
	return context.WithValue(ctx, credKey{}, cred)
}

// CredOf is the session credential ctx carries ("" for none).
func CredOf(ctx context.Context) string {
	c, _ := ctx.Value(credKey{}).(string)
	return c
}

// Overview is the landing page.
type Overview struct {
	Node      string
	Leader    string
	Members   []Member
	Sites     []Site
	Devices   int
	ByChannel []Count
	Events    []Event // recent Critical and Warning
}

// Member is one central cluster member.
type Member struct {
	ID, RaftAddr, Suffrage string
	Leader                 bool
}

// Site is a branch site with its relays.
type Site struct {
	ID        string
	AckedSeq  uint64
	Records   uint64
	FirstSeen time.Time
	Devices   int
	Relays    []Relay
}

// Relay is one relay node's last report.
type Relay struct {
	Node             string
	LastContact      time.Time
	OutboxDepth      uint64
	OutboxBytes      uint64
	OldestUnackedAge time.Duration
}

// Count is a labelled number.
type Count struct {
	Label string
	N     int
}

// DeviceQuery selects a page of devices.
type DeviceQuery struct {
	Q       string // substring of host name, ID, IP, MAC or serial
	Site    string
	Channel string
	Sort    string // hostname, id, site, channel, last_seen, inventory_at
	Desc    bool
	Offset  int
	Limit   int // 0: all (export)
}

// DevicePage is one page of matching devices.
type DevicePage struct {
	Total    int
	Devices  []DeviceRow
	Sites    []string
	Channels []string
}

// DeviceRow is a device as lists show it.
type DeviceRow struct {
	ID          string
	Hostname    string
	Site        string
	Channel     string
	Relay       string
	Serial      string
	OS          string
	MACs        []string
	IPs         []string
	FirstSeen   time.Time
	LastSeen    time.Time
	InventoryAt time.Time
	Revisions   uint64
	Records     uint64
}

// DeviceDetail is one device with its current inventory and history.
type DeviceDetail struct {
	DeviceRow
	Inventory json.RawMessage
	History   []Revision
}

// Revision is one inventory record in a device's history, with provenance.
type Revision struct {
	Seq         uint64
	CollectedAt time.Time
	ReceivedAt  time.Time
	Channel     string
	Site        string
	Relay       string
	SiteSeq     uint64
	Current     bool
}

// EventQuery filters events.
type EventQuery struct {
	Severity string
	Type     string
	Unacked  bool
	Limit    int
}

// Event is an event with its acknowledgement.
type Event struct {
	event.Event
	Acked   bool      `json:"acked"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}
