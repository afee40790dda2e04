package audit

import (
	"encoding/json"
	"fmt"

	"github.com/edgesync/edgesync/internal/cmdenc"
)

// The two encodings of an audit command. Each starts with the node's own
// command type and version (cmdenc). Their bytes are pinned by
// codec_test.go: existing Raft logs must keep decoding.
//
//   - Fields (the relay's): time, node, who, action, from, result as
//     cmdenc fields. Every string is at most MaxField bytes.
//   - JSON (central's): the Entry's JSON as one cmdenc byte string of at
//     most MaxJSON bytes.

// MaxField bounds each string of a Fields-encoded entry. Log clips to it
// (relay), and a node ID is at most 63 bytes, so no entry a node proposed
// is refused on decode.
const MaxField = 512

// MaxJSON bounds a JSON-encoded entry: a Raft command is at most 512 KiB
// (internal/raftnode.MaxCommandSize), so no committed entry is refused.
const MaxJSON = 512 << 10

// EncodeFields encodes e as a command of type typ, version ver in the
// Fields encoding. e.ID is not encoded: the Raft index is the ID.
func EncodeFields(typ, ver byte, e Entry) []byte {
	w := cmdenc.NewWriter(typ, ver, 128+len(e.Action)+len(e.Result))
	w.Time(e.Time)
	w.String(e.Node)
	w.String(e.Who)
	w.String(e.Action)
	w.String(e.From)
	w.String(e.Result)
	return w.Done()
}

// DecodeFields decodes the body of a Fields-encoded command.
func DecodeFields(r *cmdenc.Reader) (Entry, error) {
	var e Entry
	e.Time = r.Time()
	for _, f := range []*string{&e.Node, &e.Who, &e.Action, &e.From, &e.Result} {
		b := r.Bytes()
		if r.Err() == nil && len(b) > MaxField {
			return Entry{}, fmt.Errorf("decode audit command: field of %d bytes exceeds %d", len(b), MaxField)
		}
		*f = string(b)
	}
	if err := r.Err(); err != nil {
		return e, fmt.Errorf("decode audit command: %w", err)
	}
	return e, nil
}

// EncodeJSON encodes e as a command of type typ, version ver in the JSON
// encoding.
func EncodeJSON(typ, ver byte, e Entry) []byte {
	b, _ := json.Marshal(e) // an Entry always marshals
	w := cmdenc.NewWriter(typ, ver, len(b)+8)
	w.Bytes(b)
	return w.Done()
}

// DecodeJSON decodes the body of a JSON-encoded command. Its errors are the
// reader's or encoding/json's, unwrapped, as central's Apply has always
// answered them.
func DecodeJSON(r *cmdenc.Reader) (Entry, error) {
	var e Entry
	b := r.Bytes()
	if err := r.Err(); err != nil {
		return e, err
	}
	if len(b) > MaxJSON {
		return e, fmt.Errorf("decode audit command: %d bytes of JSON exceed %d", len(b), MaxJSON)
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return Entry{}, err
	}
	return e, nil
}
