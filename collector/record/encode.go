package record

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends r encoded as JSON, the same document json.Marshal
// produces except that the payload is copied as is (not re-compacted). The
// payload must be valid JSON (Validate checks it). Relays stamp and encode
// every record they accept; json.Marshal re-scanned each payload and cost a
// relay several percent of its CPU under load.
func AppendJSON(dst []byte, r *Record) []byte {
	dst = append(dst, `{"device_id":`...)
	dst = appendString(dst, r.DeviceID)
	dst = append(dst, `,"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"kind":`...)
	dst = appendString(dst, string(r.Kind))
	dst = append(dst, `,"collected_at":`...)
	dst = appendTime(dst, r.CollectedAt)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(r.Schema), 10)
	dst = append(dst, `,"payload":`...)
	if len(r.Payload) == 0 {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, r.Payload...)
	}
	if !r.ReceivedAt.IsZero() {
		dst = append(dst, `,"received_at":`...)
		dst = appendTime(dst, r.ReceivedAt)
	}
	for _, f := range [...]struct{ name, val string }{
		{`,"channel":`, string(r.Channel)}, {`,"site_id":`, r.SiteID}, {`,"relay_node":`, r.RelayNode},
	} {
		if f.val != "" {
			dst = append(dst, f.name...)
			dst = appendString(dst, f.val)
		}
	}
	if r.SiteSeq != 0 {
		dst = append(dst, `,"site_seq":`...)
		dst = strconv.AppendUint(dst, r.SiteSeq, 10)
	}
	if r.BundleID != "" {
		dst = append(dst, `,"bundle_id":`...)
		dst = appendString(dst, r.BundleID)
	}
	return append(dst, '}')
}

func appendTime(dst []byte, t time.Time) []byte {
	dst = append(dst, '"')
	dst = t.AppendFormat(dst, time.RFC3339Nano)
	return append(dst, '"')
}

// appendString quotes s as encoding/json does; the common case (plain
// printable ASCII) skips the reflection path.
func appendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			b, _ := json.Marshal(s)
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// Marshal returns json.Marshal(r) byte for byte. When the payload is already
// in the form json.Marshal writes a json.RawMessage (compact, nothing to
// escape) it is copied without the re-compaction pass, which was a fifth of
// central's apply CPU (docs/benchmarks.md); otherwise it is json.Marshal.
// The payload must be valid JSON, as after json.Unmarshal or Validate.
func Marshal(r *Record) ([]byte, error) {
	if !marshalsAsIs(r.Payload) || !jsonTime(r.CollectedAt) || (!r.ReceivedAt.IsZero() && !jsonTime(r.ReceivedAt)) {
		return json.Marshal(r)
	}
	return AppendJSON(make([]byte, 0, len(r.Payload)+256), r), nil
}

// jsonTime reports whether json.Marshal accepts t (years 0..9999).
func jsonTime(t time.Time) bool { y := t.Year(); return y >= 0 && y <= 9999 }

// Encoding helpers for other packages' fast paths that must match
// json.Marshal byte for byte (central's device documents).

// AppendJSONString appends s quoted as json.Marshal quotes it.
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendJSONTime appends t as json.Marshal writes it; MarshalsAsIsTime says
// whether json.Marshal accepts t at all.
func AppendJSONTime(dst []byte, t time.Time) []byte { return appendTime(dst, t) }

// MarshalsAsIsTime reports whether json.Marshal accepts t (years 0..9999).
func MarshalsAsIsTime(t time.Time) bool { return jsonTime(t) }

// MarshalsAsIs reports whether json.Marshal writes the valid, non-empty JSON
// p held in a json.RawMessage unchanged.
func MarshalsAsIs(p []byte) bool { return marshalsAsIs(p) }

// marshalsAsIs reports whether valid JSON p is unchanged by encoding/json's
// compaction of a json.RawMessage: no whitespace outside strings, and none of
// the characters it escapes (<, >, &, U+2028, U+2029) anywhere.
func marshalsAsIs(p []byte) bool {
	if len(p) == 0 {
		return false // nil is null, empty is an error: leave both to json.Marshal
	}
	inString := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !asIsSpecial[c] {
			continue
		}
		switch {
		case c == '<' || c == '>' || c == '&':
			return false
		case c == 0xE2:
			if i+2 < len(p) && p[i+1] == 0x80 && (p[i+2] == 0xA8 || p[i+2] == 0xA9) {
				return false
			}
		case inString && c == '\\':
			i++ // the escaped byte is '"', '\\', '/' or a letter: never special
		case c == '"':
			inString = !inString
		case !inString: // whitespace
			return false
		}
	}
	return true
}

// asIsSpecial marks the bytes marshalsAsIs must look at.
var asIsSpecial = func() (t [256]bool) {
	for _, c := range []byte("<>&\"\\ \t\n\r\xE2") {
		t[c] = true
	}
	return t
}()
