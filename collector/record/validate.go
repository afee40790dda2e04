package record

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"
)

// Stable validation codes. They travel to agents in api.RecordError.Code and
// to operators in events, so they never change meaning.
const (
	CodeBadDeviceID  = "bad_device_id"
	CodeBadSeq       = "bad_seq"
	CodeBadKind      = "bad_kind"
	CodeBadSchema    = "bad_schema"
	CodeBadTime      = "bad_time"
	CodeFutureTime   = "future_time"
	CodeTooLarge     = "too_large"     // product events 212 / 1122
	CodeControlChars = "control_chars" // product event 211
	CodeInvalidUTF8  = "invalid_utf8"
	CodeBadPayload   = "bad_payload"
)

// Default limits.
const (
	DefaultMaxSkew        = 10 * time.Minute
	DefaultMaxRecordBytes = 256 << 10
)

// Limits bounds what Validate accepts. Zero fields mean the default.
type Limits struct {
	// MaxSkew is how far in the future (device clock ahead of ours)
	// collected_at may be.
	MaxSkew time.Duration
	// MaxRecordBytes caps the payload size in bytes.
	MaxRecordBytes int
}

// DefaultLimits returns the limits used when none are configured.
func DefaultLimits() Limits {
	return Limits{MaxSkew: DefaultMaxSkew, MaxRecordBytes: DefaultMaxRecordBytes}
}

func (l Limits) withDefaults() Limits {
	if l.MaxSkew <= 0 {
		l.MaxSkew = DefaultMaxSkew
	}
	if l.MaxRecordBytes <= 0 {
		l.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return l
}

// ValidationError says why a record was refused. Code is one of the Code*
// constants.
type ValidationError struct {
	Code   string
	Reason string
}

func (e *ValidationError) Error() string {
	return "record: " + e.Code + ": " + e.Reason
}

func invalid(code, format string, args ...any) *ValidationError {
	return &ValidationError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Validate checks the agent-supplied fields of r against lim at time now. It
// returns nil or a *ValidationError.
func Validate(r *Record, now time.Time, lim Limits) error {
	if r == nil {
		return invalid(CodeBadPayload, "nil record")
	}
	lim = lim.withDefaults()
	if !ValidDeviceID(r.DeviceID) {
		return invalid(CodeBadDeviceID, "device_id must be 32 lowercase hex characters")
	}
	if r.Seq < 1 {
		return invalid(CodeBadSeq, "seq must be at least 1")
	}
	switch r.Kind {
	case KindInventory, KindEvent, KindOplog, KindTaskStatus:
	default:
		return invalid(CodeBadKind, "unknown kind %.32q", string(r.Kind))
	}
	if r.Schema != SchemaVersion {
		return invalid(CodeBadSchema, "schema %d, want %d", r.Schema, SchemaVersion)
	}
	if r.CollectedAt.IsZero() {
		return invalid(CodeBadTime, "collected_at is missing")
	}
	if r.CollectedAt.After(now.Add(lim.MaxSkew)) {
		return invalid(CodeFutureTime, "collected_at %s is more than %s ahead of %s",
			r.CollectedAt.UTC().Format(time.RFC3339), lim.MaxSkew, now.UTC().Format(time.RFC3339))
	}
	return validatePayload(r.Kind, r.Payload, lim)
}

func validatePayload(kind Kind, p []byte, lim Limits) error {
	if len(p) > lim.MaxRecordBytes {
		return invalid(CodeTooLarge, "payload is %d bytes, limit %d", len(p), lim.MaxRecordBytes)
	}
	if !utf8.Valid(p) {
		return invalid(CodeInvalidUTF8, "payload is not valid UTF-8")
	}
	if !json.Valid(p) {
		return invalid(CodeBadPayload, "payload is not valid JSON")
	}
	if t := bytes.TrimLeft(p, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return invalid(CodeBadPayload, "payload must be a JSON object")
	}
	if err := checkStrings(p); err != nil {
		return err
	}
	var dst any
	switch kind {
	case KindInventory:
		dst = new(Inventory)
	case KindEvent:
		dst = new(Event)
	case KindTaskStatus:
		dst = new(TaskStatus)
	case KindOplog:
		return nil // free-form object, already checked above
	}
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return invalid(CodeBadPayload, "%s payload: %v", kind, err)
	}
	if ts, ok := dst.(*TaskStatus); ok && (ts.TaskID == "" || ts.Status == "") {
		return invalid(CodeBadPayload, "task_status payload needs task_id and status")
	}
	return nil
}

// checkStrings rejects control characters other than tab, newline and
// carriage return in any JSON string (keys included), however they are
// written (escaped or not). p must be valid JSON, so a raw byte below 0x20
// can only be whitespace between tokens, and an escape can only be inside a
// string: one pass over the bytes needs no tokenizer. (It replaced a
// json.Decoder.Token walk that cost a relay 12% of its CPU under load;
// FuzzCheckStrings holds it equal to that walk.)
func checkStrings(p []byte) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\' && i+1 < len(p):
			i++
			switch p[i] {
			case 'b', 'f':
				return invalid(CodeControlChars, "control character escape \\%c at offset %d", p[i], i-1)
			case 'u':
				if i+4 >= len(p) {
					return invalid(CodeBadPayload, "payload: short \\u escape at offset %d", i-1)
				}
				v, err := strconv.ParseUint(string(p[i+1:i+5]), 16, 32)
				if err != nil {
					return invalid(CodeBadPayload, "payload: bad \\u escape at offset %d", i-1)
				}
				if isControl(rune(v)) {
					return invalid(CodeControlChars, "control character U+%04X at offset %d", v, i-1)
				}
				i += 4
			}
		case c == 0x7f:
			return invalid(CodeControlChars, "control character U+007F at offset %d", i)
		case c == 0xc2 && i+1 < len(p) && p[i+1] >= 0x80 && p[i+1] < 0xa0:
			return invalid(CodeControlChars, "control character U+%04X at offset %d", rune(p[i+1]), i)
		}
	}
	return nil
}

func isControl(r rune) bool {
	if r == '\t' || r == '\n' || r == '\r' {
		return false
	}
	return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0)
}
