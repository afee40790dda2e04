package offline

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"

	"github.com/edgesync/edgesync/collector/record"
)

// MaxSealedBytes caps one .esr file.
const MaxSealedBytes = 1 << 20

const sealedFormat = "edgesync-sealed/1"

// Sealed is one .esr file: a signed header and the record body (the record
// JSON, or its age ciphertext). Every header field is covered by the
// device's signature; BodySHA binds the body.
type Sealed struct {
	Format      string    `json:"format"`
	KitID       string    `json:"kit_id"`
	KitGen      uint64    `json:"kit_generation"`
	DeviceID    string    `json:"device_id"`
	CollectedAt time.Time `json:"collected_at"`
	PayloadSHA  string    `json:"payload_sha256"` // PayloadDigest of the inner payload, hex
	BodySHA     string    `json:"body_sha256"`    // SHA-256 of Body, hex
	DeviceKey   []byte    `json:"device_key"`     // ed25519 public key
	Encrypted   bool      `json:"encrypted,omitempty"`
	Body        []byte    `json:"body"`
	Sig         []byte    `json:"sig"`
}

func (s *Sealed) signingInput() []byte {
	var b []byte
	field := func(p []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(p)))
		b = append(b, p...)
	}
	field([]byte("edgesync-sealed-v1"))
	field([]byte(s.KitID))
	field([]byte(strconv.FormatUint(s.KitGen, 10)))
	field([]byte(s.DeviceID))
	field([]byte(s.CollectedAt.UTC().Format(time.RFC3339Nano)))
	field([]byte(s.PayloadSHA))
	field([]byte(s.BodySHA))
	field(s.DeviceKey)
	field([]byte(strconv.FormatBool(s.Encrypted)))
	return b
}

// PayloadDigest is the SHA-256 of a payload in canonical form (compacted,
// HTML characters escaped, as encoding/json writes a RawMessage), so it is
// the same before and after a record is re-encoded on its way to central.
func PayloadDigest(p []byte) [32]byte {
	var c bytes.Buffer
	if err := json.Compact(&c, p); err != nil {
		return sha256.Sum256(p)
	}
	var e bytes.Buffer
	json.HTMLEscape(&e, c.Bytes())
	return sha256.Sum256(e.Bytes())
}

// Seal signs rec (an inventory with Seq 0 and channel usb) for kit k with
// the device key, encrypting the body when the kit names a recipient.
func Seal(k *Kit, key ed25519.PrivateKey, rec *record.Record) ([]byte, error) {
	rec.Seq = 0
	rec.Channel = record.ChannelUSB
	rec.CollectedAt = rec.CollectedAt.UTC()
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	encrypted := false
	if k.AgeRecipient != "" {
		r, err := age.ParseX25519Recipient(k.AgeRecipient)
		if err != nil {
			return nil, fmt.Errorf("kit recipient: %w", err)
		}
		var ct bytes.Buffer
		w, err := age.Encrypt(&ct, r)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(body); err != nil {
			return nil, err
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		body, encrypted = ct.Bytes(), true
	}
	pd := PayloadDigest(rec.Payload)
	bd := sha256.Sum256(body)
	s := Sealed{Format: sealedFormat, KitID: k.ID, KitGen: k.Generation, DeviceID: rec.DeviceID, CollectedAt: rec.CollectedAt,
		PayloadSHA: hex.EncodeToString(pd[:]), BodySHA: hex.EncodeToString(bd[:]), DeviceKey: key.Public().(ed25519.PublicKey),
		Encrypted: encrypted, Body: body}
	s.Sig = ed25519.Sign(key, s.signingInput())
	out, err := json.Marshal(&s)
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// OpenOptions says what Open checks beyond the record's own integrity.
type OpenOptions struct {
	// KitID and KitGen, when KitID is set, are the kit the record must be
	// bound to (the medium's kit).
	KitID  string
	KitGen uint64
	// Identity decrypts encrypted bodies; without it an encrypted record is
	// verified up to its signature and returned without Record.
	Identity *age.X25519Identity
	// Now and Limits drive record.Validate; zero Now skips the schema check.
	Now    time.Time
	Limits record.Limits
}

// Opened is a verified sealed record.
type Opened struct {
	Sealed  Sealed
	Record  *record.Record // nil for an encrypted record opened without identity
	Payload [32]byte       // PayloadDigest, from the verified header
}

// Hostname is the inventory's host name, or "" when unknown.
func (o *Opened) Hostname() string {
	if o.Record == nil {
		return ""
	}
	var inv struct {
		Hostname string `json:"hostname"`
	}
	json.Unmarshal(o.Record.Payload, &inv)
	return inv.Hostname
}

// LedgerKey is the import ledger key: device ID, collected_at and payload
// digest (DESIGN.md §9).
func (o *Opened) LedgerKey() []byte {
	return LedgerKey(o.Sealed.DeviceID, o.Sealed.CollectedAt, o.Payload)
}

// Open decodes and verifies one sealed record. Every failure is a
// *RejectError with a stable reason code.
func Open(data []byte, opts OpenOptions) (*Opened, error) {
	if len(data) > MaxSealedBytes {
		return nil, reject(ReasonTooLarge, "sealed record is %d bytes, limit %d", len(data), MaxSealedBytes)
	}
	var s Sealed
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, reject(ReasonMalformed, "decode sealed record: %v", err)
	}
	if dec.More() {
		return nil, reject(ReasonMalformed, "trailing data after the sealed record")
	}
	if s.Format != sealedFormat {
		return nil, reject(ReasonMalformed, "format %.40q, want %q", s.Format, sealedFormat)
	}
	if !record.ValidDeviceID(s.DeviceID) {
		return nil, reject(record.CodeBadDeviceID, "device_id must be 32 lowercase hex characters")
	}
	if len(s.DeviceKey) != ed25519.PublicKeySize || len(s.Sig) != ed25519.SignatureSize || s.KitID == "" || s.CollectedAt.IsZero() {
		return nil, reject(ReasonMalformed, "missing device key, signature, kit or collected_at")
	}
	var pd [32]byte
	if b, err := hex.DecodeString(s.PayloadSHA); err != nil || len(b) != 32 {
		return nil, reject(ReasonMalformed, "payload_sha256 is not a SHA-256")
	} else {
		copy(pd[:], b)
	}
	if bd := sha256.Sum256(s.Body); hex.EncodeToString(bd[:]) != s.BodySHA {
		return nil, reject(ReasonBadHash, "body does not match body_sha256")
	}
	if !ed25519.Verify(s.DeviceKey, s.signingInput(), s.Sig) {
		return nil, reject(ReasonBadSignature, "device signature does not verify")
	}
	if opts.KitID != "" && (s.KitID != opts.KitID || s.KitGen != opts.KitGen) {
		return nil, reject(ReasonKitMismatch, "bound to kit %.40q generation %d, medium kit is %q generation %d", s.KitID, s.KitGen, opts.KitID, opts.KitGen)
	}
	o := &Opened{Sealed: s, Payload: pd}
	body := s.Body
	if s.Encrypted {
		if opts.Identity == nil {
			return o, nil
		}
		r, err := age.Decrypt(bytes.NewReader(body), opts.Identity)
		if err != nil {
			return nil, reject(ReasonDecrypt, "%v", err)
		}
		if body, err = io.ReadAll(io.LimitReader(r, MaxSealedBytes+1)); err != nil {
			return nil, reject(ReasonDecrypt, "%v", err)
		}
		if len(body) > MaxSealedBytes {
			return nil, reject(ReasonTooLarge, "decrypted body over %d bytes", MaxSealedBytes)
		}
	}
	var rec record.Record
	dec = json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rec); err != nil {
		return nil, reject(ReasonMalformed, "decode record body: %v", err)
	}
	if rec.DeviceID != s.DeviceID || !rec.CollectedAt.Equal(s.CollectedAt) || rec.Seq != 0 || rec.Channel != record.ChannelUSB {
		return nil, reject(ReasonHeaderMismatch, "record body does not match its sealed header")
	}
	if PayloadDigest(rec.Payload) != pd {
		return nil, reject(ReasonBadHash, "payload does not match payload_sha256")
	}
	if !opts.Now.IsZero() {
		chk := rec
		chk.Seq = 1 // offline records carry no agent seq; everything else is checked as for agents
		if err := record.Validate(&chk, opts.Now, opts.Limits); err != nil {
			if ve, ok := err.(*record.ValidationError); ok {
				return nil, reject(ve.Code, "%s", ve.Reason)
			}
			return nil, reject(ReasonMalformed, "%v", err)
		}
	}
	o.Record = &rec
	return o, nil
}

// LedgerKey builds the ledger key from its parts.
func LedgerKey(deviceID string, collectedAt time.Time, payload [32]byte) []byte {
	k := make([]byte, 0, len(deviceID)+8+32)
	k = append(k, deviceID...)
	k = binary.BigEndian.AppendUint64(k, uint64(collectedAt.UnixNano()))
	return append(k, payload[:]...)
}

// SyntheticSeq is the device-record sequence central stores an offline
// record under: the top bit set (agents count from 1 and never get there),
// the rest from the ledger key, so every copy of one record gets one key.
func SyntheticSeq(ledgerKey []byte) uint64 {
	h := sha256.Sum256(ledgerKey)
	return 1<<63 | binary.BigEndian.Uint64(h[:8])>>1
}

// IsSyntheticSeq reports whether seq came from SyntheticSeq.
func IsSyntheticSeq(seq uint64) bool { return seq&(1<<63) != 0 }

// Provenance is what a relay puts in a forwarded record's BundleID so
// central can apply its own checks (kit, generation, device key, ledger).
type Provenance struct {
	KitID     string
	KitGen    uint64
	DeviceKey []byte
	Payload   [32]byte
}

const provPrefix = "esr1;"

// String encodes p for record.Record.BundleID.
func (p Provenance) String() string {
	return fmt.Sprintf("%skit=%s;gen=%d;key=%s;sha=%s", provPrefix, p.KitID, p.KitGen,
		base64.RawURLEncoding.EncodeToString(p.DeviceKey), hex.EncodeToString(p.Payload[:]))
}

// ParseProvenance decodes a BundleID written by Provenance.String.
func ParseProvenance(s string) (Provenance, error) {
	var p Provenance
	rest, ok := strings.CutPrefix(s, provPrefix)
	if !ok {
		return p, fmt.Errorf("offline: bundle id %.40q is not a sealed-record provenance", s)
	}
	for _, kv := range strings.Split(rest, ";") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "kit":
			p.KitID = v
		case "gen":
			p.KitGen, _ = strconv.ParseUint(v, 10, 64)
		case "key":
			p.DeviceKey, _ = base64.RawURLEncoding.DecodeString(v)
		case "sha":
			if b, err := hex.DecodeString(v); err == nil && len(b) == 32 {
				copy(p.Payload[:], b)
			}
		}
	}
	if p.KitID == "" || len(p.DeviceKey) != ed25519.PublicKeySize || p.Payload == [32]byte{} {
		return p, fmt.Errorf("offline: incomplete provenance %.80q", s)
	}
	return p, nil
}
