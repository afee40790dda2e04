package raftnode

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// FuzzValidateEntry: validateEntry is the gate in front of Propose and of
// the peers' /raft/v1/apply (Apply panics on a malformed raftnode entry), so
// every internal entry it admits must decode, and re-encode to an entry
// that decodes the same; refusals are ErrBadRequest.
func FuzzValidateEntry(f *testing.F) {
	f.Add(encodeMeta(metaCmd{op: opSetMeta, id: "r1", httpAddr: "https://10.0.0.1:8080"}))
	f.Add(encodeMeta(metaCmd{op: opDeleteMeta, id: "r2"}))
	f.Add(encodeMeta(metaCmd{op: opSetMeta, id: "r1"}))
	f.Add([]byte{byte(entryApp), 1, 2, 3})
	f.Add([]byte{byte(entryInternal), byte(opSetMeta), 0})
	f.Add([]byte{byte(entryInternal), byte(opDeleteMeta), 2, 'r', '1', 'x'})
	f.Add([]byte{byte(entryInternal), 9})
	f.Add([]byte{byte(entryInternal), byte(opSetMeta), 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{7})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		err := validateEntry(b)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("refusal %v is not ErrBadRequest", err)
			}
			return
		}
		if entryType(b[0]) == entryApp {
			if len(b)-1 > MaxCommandSize {
				t.Fatalf("admitted a %d-byte command", len(b)-1)
			}
			return
		}
		m, err := decodeMeta(b[1:])
		if err != nil {
			t.Fatalf("admitted an entry Apply cannot decode: %v", err)
		}
		if m.id == "" || len(m.id) > maxMetaField || len(m.httpAddr) > maxMetaField {
			t.Fatalf("admitted meta %+v", m)
		}
		// Overlong varints (81 00 for 1) decode the same on every replica, so
		// the check is on meaning, not on bytes.
		if again, err := decodeMeta(encodeMeta(m)[1:]); err != nil || again != m {
			t.Fatalf("round trip %x -> %+v -> %+v, %v", b, m, again, err)
		}
	})
}

// FuzzDecodeLog: a corrupt stored log entry is an error, never a panic or
// an allocation beyond its own length, and what decodes re-encodes to an
// entry that decodes to the same log.
func FuzzDecodeLog(f *testing.F) {
	for _, l := range []raft.Log{
		{Term: 3, Type: raft.LogCommand, Data: []byte("\x01set a 1")},
		{Term: 1, Type: raft.LogConfiguration, Data: []byte("cfg"), Extensions: []byte("ext"), AppendedAt: time.Unix(1700000000, 5)},
		{Term: 1 << 40, Type: raft.LogNoop},
	} {
		f.Add(encodeLog(&l))
	}
	f.Add([]byte{logEncVersion})
	f.Add([]byte{logEncVersion, 1, 0, 2})
	f.Add([]byte{logEncVersion, 1, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Add([]byte{9, 1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var l raft.Log
		if err := decodeLog(b, &l); err != nil {
			return
		}
		if len(l.Data)+len(l.Extensions) > len(b) {
			t.Fatalf("decoded %d bytes out of %d", len(l.Data)+len(l.Extensions), len(b))
		}
		var again raft.Log
		if err := decodeLog(encodeLog(&l), &again); err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if again.Term != l.Term || again.Type != l.Type || !again.AppendedAt.Equal(l.AppendedAt) ||
			!bytes.Equal(again.Data, l.Data) || !bytes.Equal(again.Extensions, l.Extensions) {
			t.Fatalf("round trip %+v -> %+v", l, again)
		}
	})
}
