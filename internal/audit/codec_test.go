package audit

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/cmdenc"
)

var (
	testAt = time.Date(2026, 11, 21, 10, 0, 0, 123, time.UTC)

	relayEntry   = Entry{Time: testAt, Node: "r1", Who: "token:0123456789ab", Action: "POST /api/v1/cache/evict", From: "10.0.0.9", Result: "ok"}
	centralEntry = Entry{ID: 7, Time: testAt, Node: "c1", Who: "console", Action: "acknowledge event 5", From: "10.0.0.1", Result: "refused: wrong token"}
)

// The fixed examples were written by the encoders relay/audit.go and
// central/audit.go had before this package (relay: type 20, central: type
// 21, version 1). Raft logs hold these bytes: they must not change.
const (
	relayHex   = "1401fb80b1e9fbe281f51802723112746f6b656e3a30313233343536373839616218504f5354202f6170692f76312f63616368652f65766963740831302e302e302e39026f6b"
	emptyHex   = "1401000000000000"
	centralHex = "15019d017b226964223a372c2274696d65223a22323032362d31312d32315431303a30303a30302e3030303030303132335a222c226e6f6465223a226331222c2277686f223a22636f6e736f6c65222c22616374696f6e223a2261636b6e6f776c65646765206576656e742035222c2266726f6d223a2231302e302e302e31222c22726573756c74223a22726566757365643a2077726f6e6720746f6b656e227d"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func body(t *testing.T, cmd []byte) *cmdenc.Reader {
	t.Helper()
	_, _, r, err := cmdenc.NewReader(cmd)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestCodec_FixedExamples(t *testing.T) {
	tests := []struct {
		name   string
		encode func(typ, ver byte, e Entry) []byte
		decode func(*cmdenc.Reader) (Entry, error)
		typ    byte
		in     Entry
		want   string
		back   Entry // what decodes (Fields does not carry the ID)
	}{
		{"fields", EncodeFields, DecodeFields, 20, relayEntry, relayHex, relayEntry},
		{"fields empty", EncodeFields, DecodeFields, 20, Entry{}, emptyHex, Entry{}},
		{"fields drops ID", EncodeFields, DecodeFields, 20, func() Entry { e := relayEntry; e.ID = 9; return e }(), relayHex, relayEntry},
		{"json", EncodeJSON, DecodeJSON, 21, centralEntry, centralHex, centralEntry},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.encode(tt.typ, 1, tt.in)
			if want := mustHex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("encode = %x, want %x", got, want)
			}
			e, err := tt.decode(body(t, mustHex(t, tt.want)))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !e.Time.Equal(tt.back.Time) {
				t.Fatalf("decoded time %v, want %v", e.Time, tt.back.Time)
			}
			e.Time, tt.back.Time = time.Time{}, time.Time{}
			if e != tt.back {
				t.Fatalf("decoded %+v, want %+v", e, tt.back)
			}
		})
	}
}

func TestCodec_DecodeRefuses(t *testing.T) {
	long := strings.Repeat("x", MaxField+1)
	bigJSON := cmdenc.NewWriter(21, 1, 0)
	bigJSON.Bytes(append(append([]byte(`{"who":"`), strings.Repeat("x", MaxJSON)...), `"}`...))
	tests := []struct {
		name    string
		decode  func(*cmdenc.Reader) (Entry, error)
		cmd     []byte
		wantErr error // nil: any error
	}{
		{"fields truncated", DecodeFields, mustHex(t, relayHex)[:20], cmdenc.ErrShort},
		{"fields no body", DecodeFields, []byte{20, 1}, cmdenc.ErrShort},
		{"fields field too long", DecodeFields, EncodeFields(20, 1, Entry{Action: long}), nil},
		{"fields node too long", DecodeFields, EncodeFields(20, 1, Entry{Node: long}), nil},
		{"json truncated", DecodeJSON, mustHex(t, centralHex)[:30], cmdenc.ErrShort},
		{"json not json", DecodeJSON, []byte{21, 1, 2, '{', 'x'}, nil},
		{"json too long", DecodeJSON, bigJSON.Done(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.decode(body(t, tt.cmd))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Fatalf("decode err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestCodec_JSONNull: central has always applied a JSON null as an empty
// entry; that stays so (a replayed log must apply the same).
func TestCodec_JSONNull(t *testing.T) {
	e, err := DecodeJSON(body(t, []byte{21, 1, 4, 'n', 'u', 'l', 'l'}))
	if err != nil || e != (Entry{}) {
		t.Fatalf("DecodeJSON(null) = %+v, %v; want an empty entry", e, err)
	}
}

// TestCodec_FieldsAtLimit: what Log clips to still decodes.
func TestCodec_FieldsAtLimit(t *testing.T) {
	max := strings.Repeat("x", MaxField)
	in := Entry{Time: testAt, Node: "r1", Who: max, Action: max, From: max, Result: max}
	e, err := DecodeFields(body(t, EncodeFields(20, 1, in)))
	if err != nil || e.Action != max || e.Result != max {
		t.Fatalf("decode at the limit: %v", err)
	}
}
