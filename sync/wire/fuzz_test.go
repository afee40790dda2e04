package wire

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

// FuzzDecodeMessage covers every frame type, the distribution ones too (the
// catalog a relay mirrors, blob requests and answers): Decode never panics,
// a refusal is ErrMalformed, ErrUnknownType or ErrBatchTooLarge, an accepted message has the
// frame's type, and its encoding is stable (encode, decode, encode again
// gives the same bytes).
func FuzzDecodeMessage(f *testing.F) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, m := range []Message{
		Hello{ProtoVersion: 1, Site: "s1", Node: "r1", Version: "v", CatalogVersion: 3, Outbox: OutboxStats{Depth: 2, OldestUnacked: at}},
		HelloAck{Cursor: 9, ServerVersion: "v", PaceBytesPerSec: 1000},
		Batch{FirstSeq: 4, Records: [][]byte{[]byte(`{"a":1}`), {}}},
		Ack{Upto: 5, Code: CodeBadRequest, Message: "m"},
		Status{OutboxStats{Depth: 1}},
		Ping{Nonce: 7},
		Pong{Nonce: 7},
		Error{Code: CodeUnavailable, Message: "down"},
		CatalogRequest{Since: 2},
		Catalog{Version: 3, Packages: []CatalogPackage{{ID: "p@1", SHA256: "ab", Size: 3, CreatedAt: at, Rev: 2}},
			Tasks:    []CatalogTask{{ID: "t1", Package: "p@1", Devices: []string{"d"}, Attempts: map[string]int{"d": 2}, At: at, CreatedAt: at}},
			LivePkgs: []string{"p@1"}, LiveTask: []string{}},
		BlobRequest{SHA256: "ab", Offset: 10},
		BlobInfo{Size: 20, Offset: 10},
	} {
		fr, err := Encode(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(fr.Type), fr.Payload)
	}
	f.Add(uint8(TypeCatalog), []byte(`{"version":1,"tasks":[{"attempts":{"d":1e400}}]}`))
	f.Add(uint8(TypeHello), []byte(`{"outbox":{"oldestUnacked":"2026-03-01T12:00:00+01:00"}}`))
	f.Add(uint8(TypeAck), []byte(`null`))
	f.Add(uint8(99), []byte(`{}`))
	f.Fuzz(func(t *testing.T, typ uint8, payload []byte) {
		m, err := Decode(Frame{Type: Type(typ), Payload: payload})
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownType) && !errors.Is(err, ErrBatchTooLarge) {
				t.Fatalf("refusal %v is not ErrMalformed, ErrUnknownType or ErrBatchTooLarge", err)
			}
			return
		}
		if m.Type() != Type(typ) {
			t.Fatalf("frame type %d decoded as %T", typ, m)
		}
		fr1, err := Encode(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		m2, err := Decode(fr1)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		fr2, err := Encode(m2)
		if err != nil || fr2.Type != fr1.Type || !bytes.Equal(fr2.Payload, fr1.Payload) {
			t.Fatalf("unstable encoding:\n%q\n%q (%v)", fr1.Payload, fr2.Payload, err)
		}
	})
}
