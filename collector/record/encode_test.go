package record

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestAppendJSONMatchesMarshal(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 30, 1, 123456789, time.FixedZone("JST", 9*3600))
	tests := []struct {
		name string
		r    Record
	}{
		{"agent record", Record{DeviceID: "0123456789abcdef0123456789abcdef", Seq: 7, Kind: KindInventory, CollectedAt: at, Schema: 1,
			Payload: json.RawMessage(`{"hostname":"pc-1","os":{"name":"Linux"},"hardware":{}}`)}},
		{"stamped", Record{DeviceID: "0123456789abcdef0123456789abcdef", Seq: 1, Kind: KindEvent, CollectedAt: at, Schema: 1,
			Payload: json.RawMessage(`{"number":1}`), ReceivedAt: at.UTC(), Channel: ChannelOnline, SiteID: "branch-1", RelayNode: "r1", SiteSeq: 99}},
		{"escapes", Record{DeviceID: "x", Kind: "a\"b<c>&\\", CollectedAt: at, Payload: json.RawMessage(`{}`), BundleID: "ü\u2028"}},
		{"no payload", Record{DeviceID: "x", CollectedAt: at}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, err := json.Marshal(&tt.r)
			if err != nil {
				t.Fatal(err)
			}
			got := AppendJSON(nil, &tt.r)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendJSON:\n got %s\nwant %s", got, want)
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	inv, _ := json.Marshal(Inventory{Hostname: "pc-001", OS: OS{Name: "Debian"}, Software: []Software{{Name: "openssl", Version: "3"}}})
	r := Record{DeviceID: "0123456789abcdef0123456789abcdef", Seq: 7, Kind: KindInventory, CollectedAt: time.Now(), Schema: 1,
		Payload: inv, ReceivedAt: time.Now(), Channel: ChannelOnline, SiteID: "branch-1", RelayNode: "r1"}
	b.Run("append", func(b *testing.B) {
		buf := make([]byte, 0, 4096)
		for b.Loop() {
			buf = AppendJSON(buf[:0], &r)
		}
	})
	b.Run("json-marshal-baseline", func(b *testing.B) {
		for b.Loop() {
			json.Marshal(&r)
		}
	})
}

func TestMarshalMatchesJSONMarshal(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 30, 1, 123456789, time.FixedZone("JST", 9*3600))
	for _, p := range []string{
		`{"hostname":"pc-1","os":{"name":"Debian GNU/Linux"}}`, `{ "a" : 1 }`, "{\"a\":\n[1,\t2]}", `{"a":"<b>&"}`,
		`{"a":"x\"y \\"}`, `{"a":"\u2028"}`, "{\"a\":\"\u2028\"}", `[]`, `null`, `"s p"`, ``,
	} {
		for _, r := range []Record{
			{DeviceID: "0123456789abcdef0123456789abcdef", Seq: 3, Kind: KindInventory, CollectedAt: at, Schema: 1, Payload: json.RawMessage(p)},
			{DeviceID: "x", CollectedAt: at, Payload: json.RawMessage(p), ReceivedAt: at.UTC(), SiteID: "s", SiteSeq: 4},
			{DeviceID: "x", CollectedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Payload: json.RawMessage(p)},
		} {
			want, werr := json.Marshal(&r)
			got, err := Marshal(&r)
			if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
				t.Errorf("Marshal(payload %q):\n got %s, %v\nwant %s, %v", p, got, err, want, werr)
			}
		}
	}
}

func FuzzMarshal(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{ "a" : "b c" }`, `{"a":"<"}`, "[\"\u2028\"]", `"\\\""`} {
		f.Add([]byte(s))
	}
	at := time.Date(2026, 11, 21, 9, 30, 1, 0, time.UTC)
	f.Fuzz(func(t *testing.T, p []byte) {
		if got, want := canonicalPayload(p), canonicalPayloadSlow(p); !bytes.Equal(got, want) {
			t.Fatalf("canonicalPayload(%q) = %q, want %q", p, got, want)
		}
		if !json.Valid(p) {
			return
		}
		r := Record{DeviceID: "x", Seq: 1, Kind: KindEvent, CollectedAt: at, Payload: p}
		want, werr := json.Marshal(&r)
		got, err := Marshal(&r)
		if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
			t.Fatalf("Marshal(payload %q):\n got %s, %v\nwant %s, %v", p, got, err, want, werr)
		}
	})
}
