package central

import (
	"encoding/binary"
	"encoding/json"
	"time"

	"github.com/edgesync/edgesync/sync/wire"
)

// Key layout of central's replicated state (raftnode reserves 0x00...).
var (
	keyAdmin   = []byte("m/admin")   // SHA-256 of the admin token
	keyEvCount = []byte("m/evcount") // events held

	prefixCursor   = []byte("c/") // c/<site> → highest site seq applied
	prefixSite     = []byte("s/") // s/<site> → Site JSON
	prefixDevice   = []byte("d/") // d/<device> → Device JSON
	prefixRecord   = []byte("r/") // r/<device><seq8> → record JSON: every record, once
	prefixRevision = []byte("v/") // v/<device><collected_at8><seq8> → empty: inventory revisions by time
	prefixEvent    = []byte("e/") // e/<raft index8> → event JSON
)

const maxEvents = 50000

// Site is what central knows about one branch site.
type Site struct {
	ID        string           `json:"id"`
	FirstSeen time.Time        `json:"first_seen"`
	Cursor    uint64           `json:"acked_seq"`
	Records   uint64           `json:"records"`
	Relays    map[string]Relay `json:"relays"`
}

// Relay is one relay node's last contact and outbox as it reported them.
type Relay struct {
	Node        string           `json:"node"`
	LastContact time.Time        `json:"last_contact"`
	Outbox      wire.OutboxStats `json:"outbox"`
}

// Device is a managed computer as central sees it.
type Device struct {
	ID           string          `json:"id"`
	Hostname     string          `json:"hostname"`
	Site         string          `json:"site"`
	Channel      string          `json:"channel"`
	Relay        string          `json:"relay,omitempty"`
	FirstSeen    time.Time       `json:"first_seen"`
	LastSeen     time.Time       `json:"last_seen"`
	InventoryAt  time.Time       `json:"inventory_at,omitzero"`
	InventorySeq uint64          `json:"inventory_seq,omitempty"`
	Revisions    uint64          `json:"revisions"`
	Records      uint64          `json:"records"`
	LastSeq      uint64          `json:"last_seq"`
	Serial       string          `json:"serial,omitempty"`
	MACs         []string        `json:"macs,omitempty"`
	OS           string          `json:"os,omitempty"`
	Inventory    json.RawMessage `json:"inventory,omitempty"`
}

func key(prefix []byte, s string) []byte { return append(append([]byte{}, prefix...), s...) }

func seqKey(prefix []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append([]byte{}, prefix...), seq)
}

func recordKey(device string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(key(prefixRecord, device), seq)
}

func revisionKey(device string, at time.Time, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(key(prefixRevision, device), uint64(at.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}
