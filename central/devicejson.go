package central

import (
	"encoding/json"
	"strconv"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
)

// putDevice stores d at device id's key. It is kv.PutJSON byte for byte (tested and
// fuzzed against json.Marshal), without encoding/json's reflection and its
// re-compaction of the inventory, which cost central a fifth of its apply
// CPU (docs/benchmarks.md).
func putDevice(txn *badger.Txn, id string, d *Device) error {
	b, err := marshalDevice(d)
	if err != nil {
		return err
	}
	return txn.Set(key(prefixDevice, id), b)
}

// marshalDevice returns json.Marshal(d).
func marshalDevice(d *Device) ([]byte, error) {
	if (len(d.Inventory) > 0 && !record.MarshalsAsIs(d.Inventory)) || !record.MarshalsAsIsTime(d.FirstSeen) ||
		!record.MarshalsAsIsTime(d.LastSeen) || (!d.InventoryAt.IsZero() && !record.MarshalsAsIsTime(d.InventoryAt)) {
		return json.Marshal(d)
	}
	b := make([]byte, 0, 320+len(d.Inventory)+20*len(d.MACs))
	b = append(b, `{"id":`...)
	b = record.AppendJSONString(b, d.ID)
	b = append(b, `,"hostname":`...)
	b = record.AppendJSONString(b, d.Hostname)
	b = append(b, `,"site":`...)
	b = record.AppendJSONString(b, d.Site)
	b = append(b, `,"channel":`...)
	b = record.AppendJSONString(b, d.Channel)
	if d.Relay != "" {
		b = append(b, `,"relay":`...)
		b = record.AppendJSONString(b, d.Relay)
	}
	b = append(b, `,"first_seen":`...)
	b = record.AppendJSONTime(b, d.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = record.AppendJSONTime(b, d.LastSeen)
	if !d.InventoryAt.IsZero() {
		b = append(b, `,"inventory_at":`...)
		b = record.AppendJSONTime(b, d.InventoryAt)
	}
	if d.InventorySeq != 0 {
		b = append(b, `,"inventory_seq":`...)
		b = strconv.AppendUint(b, d.InventorySeq, 10)
	}
	b = append(b, `,"revisions":`...)
	b = strconv.AppendUint(b, d.Revisions, 10)
	b = append(b, `,"records":`...)
	b = strconv.AppendUint(b, d.Records, 10)
	b = append(b, `,"last_seq":`...)
	b = strconv.AppendUint(b, d.LastSeq, 10)
	if d.Serial != "" {
		b = append(b, `,"serial":`...)
		b = record.AppendJSONString(b, d.Serial)
	}
	if len(d.MACs) > 0 {
		b = append(b, `,"macs":[`...)
		for i, m := range d.MACs {
			if i > 0 {
				b = append(b, ',')
			}
			b = record.AppendJSONString(b, m)
		}
		b = append(b, ']')
	}
	if d.OS != "" {
		b = append(b, `,"os":`...)
		b = record.AppendJSONString(b, d.OS)
	}
	if len(d.Inventory) > 0 {
		b = append(b, `,"inventory":`...)
		b = append(b, d.Inventory...)
	}
	return append(b, '}'), nil
}
