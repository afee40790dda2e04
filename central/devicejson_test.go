package central

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

func TestMarshalDeviceMatchesJSON(t *testing.T) {
	at := time.Date(2026, 12, 7, 9, 30, 1, 5, time.FixedZone("JST", 9*3600))
	tests := []struct {
		name string
		d    Device
	}{
		{"empty", Device{}},
		{"new", Device{ID: "0123456789abcdef0123456789abcdef", FirstSeen: at, LastSeen: at, Records: 1, LastSeq: 1, Site: "s", Channel: "online"}},
		{"full", Device{ID: "x", Hostname: "pc <1> & \"q\"", Site: "s", Channel: "usb", Relay: "r1", FirstSeen: at, LastSeen: at.UTC(),
			InventoryAt: at, InventorySeq: 9, Revisions: 3, Records: 4, LastSeq: 9, Serial: "SN\u2028", MACs: []string{"02:00:00:00:00:01", "ü"},
			OS: "Debian GNU/Linux", Inventory: json.RawMessage(`{"hostname":"pc 1","os":{"name":"Debian"}}`)}},
		{"spaced inventory", Device{ID: "x", FirstSeen: at, Inventory: json.RawMessage(`{ "a" : [1, 2] }`)}},
		{"html inventory", Device{ID: "x", Inventory: json.RawMessage(`{"a":"<b>"}`)}},
		{"empty macs", Device{ID: "x", MACs: []string{}}},
		{"year 10000", Device{ID: "x", LastSeen: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, werr := json.Marshal(&tt.d)
			got, err := marshalDevice(&tt.d)
			if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
				t.Fatalf("marshalDevice:\n got %s, %v\nwant %s, %v", got, err, want, werr)
			}
		})
	}
}

func FuzzMarshalDevice(f *testing.F) {
	f.Add("pc-1", "SN1", "02:00:00:00:00:01", []byte(`{"hostname":"pc-1"}`), int64(0), uint64(3))
	f.Add("a<b", "\u2028", "", []byte(`{ "a" : 1 }`), int64(1<<40), uint64(0))
	f.Fuzz(func(t *testing.T, host, serial, mac string, inv []byte, ns int64, seq uint64) {
		if len(inv) > 0 && !json.Valid(inv) {
			return
		}
		at := time.Unix(0, ns)
		d := Device{ID: host, Hostname: host, Serial: serial, FirstSeen: at, LastSeen: at, InventoryAt: at, InventorySeq: seq, Inventory: inv}
		if mac != "" {
			d.MACs = []string{mac, host}
		}
		want, werr := json.Marshal(&d)
		got, err := marshalDevice(&d)
		if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
			t.Fatalf("marshalDevice:\n got %s, %v\nwant %s, %v", got, err, want, werr)
		}
	})
}
