package audit

import (
	"encoding/hex"
	"testing"

	"github.com/edgesync/edgesync/internal/cmdenc"
)

// FuzzDecode: neither decoder panics; what one accepts stays within its
// limits and re-encodes to something that decodes to the same entry.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{relayHex, emptyHex, centralHex} {
		b, _ := hex.DecodeString(s)
		f.Add(b)
	}
	f.Add(EncodeJSON(21, 1, relayEntry))
	f.Add([]byte{21, 1, 4, 'n', 'u', 'l', 'l'})
	f.Add([]byte{20, 1, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{20, 1, 0, 0xff, 0xff, 0x03})
	f.Fuzz(func(t *testing.T, cmd []byte) {
		typ, ver, r, err := cmdenc.NewReader(cmd)
		if err != nil {
			return
		}
		rest := append([]byte{typ, ver}, cmd[2:]...)
		if e, err := DecodeFields(r); err == nil {
			for _, s := range []string{e.Node, e.Who, e.Action, e.From, e.Result} {
				if len(s) > MaxField {
					t.Fatalf("accepted a field of %d bytes", len(s))
				}
			}
			again, err := DecodeFields(body(t, EncodeFields(typ, ver, e)))
			if err != nil || !sameEntry(again, e) {
				t.Fatalf("fields round trip: %+v, %v; want %+v", again, err, e)
			}
		}
		if e, err := DecodeJSON(body(t, rest)); err == nil {
			again, err := DecodeJSON(body(t, EncodeJSON(typ, ver, e)))
			if err != nil || !sameEntry(again, e) {
				t.Fatalf("json round trip: %+v, %v; want %+v", again, err, e)
			}
		}
	})
}

// sameEntry compares entries with time.Time.Equal (a decoded zone is a
// fresh *Location).
func sameEntry(a, b Entry) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time = b.Time
	return a == b
}
