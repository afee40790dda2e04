package relay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Key layout of the relay's replicated state. raftnode reserves keys that
// start with 0x00.
var (
	keyNextSeq  = []byte("m/next")    // next site sequence to assign
	keyAcked    = []byte("m/acked")   // central committed every site seq <= this
	keyObBytes  = []byte("m/obbytes") // bytes held in the outbox
	keyJoinHash = []byte("m/join")    // SHA-256 of the site join token secret
	keyAdmin    = []byte("m/admin")   // SHA-256 of the admin token
	keyEvCount  = []byte("m/evcount")

	prefixDevice    = []byte("d/") // d/<device> → deviceState JSON
	prefixHash      = []byte("h/") // h/<device><seq8> → record hash, for replay detection
	prefixOutbox    = []byte("o/") // o/<siteseq8> → received unix nanos (8) + record JSON
	prefixInventory = []byte("i/") // i/<device> → latest inventory record JSON
	prefixEvent     = []byte("e/") // e/<raft index8> → Event JSON
)

// hashWindow is how many recent sequence hashes are kept per device. A replay
// older than this cannot be compared and is refused as stale.
const hashWindow = 4096

// maxEvents bounds the site event log kept in Raft state.
const maxEvents = 10000

// deviceState is what the site knows about one enrolled device.
type deviceState struct {
	ID          string    `json:"id"`
	Hostname    string    `json:"hostname"`
	OS          string    `json:"os,omitempty"`
	EnrolledAt  time.Time `json:"enrolled_at"`
	LastSeen    time.Time `json:"last_seen"`
	LastSeq     uint64    `json:"last_seq"`
	Records     uint64    `json:"records"`
	InventoryAt time.Time `json:"inventory_at,omitzero"`
}

// deviceStored is the persisted form (TokenHash is hidden from API output).
type deviceStored struct {
	deviceState
	Token string `json:"token_hash"`
}

func seqKey(prefix []byte, seq uint64) []byte {
	k := make([]byte, len(prefix)+8)
	copy(k, prefix)
	binary.BigEndian.PutUint64(k[len(prefix):], seq)
	return k
}

func deviceSeqKey(prefix []byte, id string, seq uint64) []byte {
	k := make([]byte, 0, len(prefix)+len(id)+8)
	k = append(k, prefix...)
	k = append(k, id...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func deviceKey(prefix []byte, id string) []byte {
	return append(append([]byte{}, prefix...), id...)
}

func getString(txn *badger.Txn, key []byte) (string, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

func getDevice(txn *badger.Txn, id string) (*deviceStored, error) {
	item, err := txn.Get(deviceKey(prefixDevice, id))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	d := &deviceStored{}
	err = item.Value(func(b []byte) error { return json.Unmarshal(b, d) })
	return d, err
}

func putDevice(txn *badger.Txn, d *deviceStored) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	return txn.Set(deviceKey(prefixDevice, d.ID), b)
}
