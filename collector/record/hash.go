package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"time"
)

// Hash returns the SHA-256 of the fields the agent supplies (device_id, seq,
// kind, collected_at in UTC RFC 3339 with nanoseconds, schema, payload). The
// fields set on the way (received_at, channel, site, relay, site_seq, bundle)
// are not covered, so the hash is stable across hops and tells a retry of the
// same record from a seq replayed with different content.
//
// The payload is hashed in canonical textual form (compacted, with HTML
// characters escaped as encoding/json.Marshal writes them), so re-encoding a
// Record with encoding/json does not change its hash. A payload that is not
// valid JSON is hashed as-is.
func Hash(r *Record) [32]byte {
	h := sha256.New()
	field := func(b []byte) {
		var l [8]byte
		binary.BigEndian.PutUint64(l[:], uint64(len(b)))
		h.Write(l[:])
		h.Write(b)
	}
	var n [8]byte
	field([]byte("edgesync-record-v1"))
	field([]byte(r.DeviceID))
	binary.BigEndian.PutUint64(n[:], r.Seq)
	field(n[:])
	field([]byte(r.Kind))
	field([]byte(r.CollectedAt.UTC().Format(time.RFC3339Nano)))
	binary.BigEndian.PutUint64(n[:], uint64(int64(r.Schema)))
	field(n[:])
	field(canonicalPayload(r.Payload))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func canonicalPayload(p []byte) []byte {
	if marshalsAsIs(p) {
		// Compact and escaped already (or not JSON, which is hashed as-is):
		// the slow path below would return p unchanged.
		return p
	}
	return canonicalPayloadSlow(p)
}

func canonicalPayloadSlow(p []byte) []byte {
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return p
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return e.Bytes()
}
