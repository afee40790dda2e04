package central

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/kv"
)

// fsm adapts Node to raftnode.StateMachine. Apply is deterministic.
type fsm Node

func (f *fsm) Apply(txn *badger.Txn, index uint64, cmd []byte) []byte {
	typ, _, r, err := cmdenc.NewReader(cmd)
	if err != nil {
		return errorResult(err)
	}
	switch commandType(typ) {
	case cmdIngest:
		c, err := decodeIngest(r)
		if err != nil {
			return errorResult(err)
		}
		cursor, err := applyIngest(txn, index, c)
		if err != nil {
			return storageFailure(err)
		}
		w := cmdenc.NewWriter(byte(cmdIngest), commandVersion, 10)
		w.Uint(cursor)
		return w.Done()
	case cmdContact:
		c, err := decodeContact(r)
		if err != nil {
			return errorResult(err)
		}
		if err := applyContact(txn, c); err != nil {
			return storageFailure(err)
		}
	case cmdSecrets:
		admin := r.String()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if cur, err := getJSONString(txn, keyAdmin); err != nil {
			return storageFailure(err)
		} else if cur == "" && admin != "" {
			if err := txn.Set(keyAdmin, []byte(admin)); err != nil {
				return storageFailure(err)
			}
		}
	case cmdEvent:
		var e event.Event
		b := r.Bytes()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return errorResult(err)
		}
		if err := putEvent(txn, index, 0, e); err != nil {
			return storageFailure(err)
		}
	case cmdEventAck, cmdAudit:
		return applyAdminCommand(txn, index, commandType(typ), r)
	case cmdPackageAdd, cmdPackageRemove, cmdTaskCreate, cmdTaskStop, cmdTaskRetry, cmdTaskRemove:
		return f.applyDistribution(txn, index, commandType(typ), r) // packages.go, tasks.go
	case cmdOffline:
		return (*Node)(f).applyOffline(txn, index, r) // offline.go
	case cmdAccounts, cmdTokens:
		return f.applyAccounts(txn, index, commandType(typ), r) // accounts.go
	default:
		panic(fmt.Sprintf("central: unknown command type %d at index %d", typ, index))
	}
	return nil
}

func errorResult(err error) []byte { return append([]byte{0xFF}, err.Error()...) }

// storageFailure handles an error from applying a decoded command. A
// deliberate refusal (decided before anything was written) becomes an error
// result; anything else is a storage error and panics, as raftnode requires:
// on badger.ErrTxnTooBig it re-runs the entry in a fresh transaction, and any
// other failure must stop the replica rather than commit partial effects.
func storageFailure(err error) []byte {
	if false {
		return errorResult(err)
	}
	panic(fmt.Errorf("apply: %w", err))
}

func resultError(b []byte) error {
	if len(b) > 0 && b[0] == 0xFF {
		return errors.New("central: apply: " + string(b[1:]))
	}
	return nil
}

func getJSONString(txn *badger.Txn, k []byte) (string, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b, err := item.ValueCopy(nil)
	return string(b), err
}

// applyIngest applies the records that extend the site's cursor by exactly
// one each. Records at or below the cursor are retries; a record beyond
// cursor+1 stops the run (the relay resends from the cursor).
func applyIngest(txn *badger.Txn, index uint64, c *ingestCommand) (uint64, error) {
	ck := key(prefixCursor, c.Site)
	cursor, err := kv.GetUint(txn, ck)
	if err != nil {
		return 0, err
	}
	var site Site
	if _, err := kv.GetJSON(txn, key(prefixSite, c.Site), &site); err != nil {
		return 0, err
	}
	if site.ID == "" {
		site = Site{ID: c.Site, FirstSeen: c.At, Relays: map[string]Relay{}}
	}
	fresh := []string{} // devices central had not seen before this entry
	devices := map[string]*Device{}
	var order []string
	sub := uint64(0) // event sub-index within this log entry
	for i, data := range c.Records {
		seq := c.First + uint64(i)
		if seq <= cursor {
			continue
		}
		if seq != cursor+1 {
			break
		}
		cursor = seq
		site.Records++
		var rec record.Record
		if err := json.Unmarshal(data, &rec); err != nil || !record.ValidDeviceID(rec.DeviceID) {
			sub++
			if err := putEvent(txn, index, sub, event.Event{Number: event.PayloadTooLarge, Severity: event.Warning, Type: event.TypeError,
				Source: c.Relay, Time: c.At, Message: fmt.Sprintf("Record %d from site %s could not be decoded and was discarded", seq, c.Site)}); err != nil {
				return 0, err
			}
			continue
		}
		if rec.Channel == record.ChannelUSB && rec.Seq == 0 { // an offline record a relay imported (offline.go)
			if err := applyForwardedOffline(txn, index, &sub, c, seq, &rec, devices, &order); err != nil {
				return 0, err
			}
			continue
		}
		rk := recordKey(rec.DeviceID, rec.Seq)
		if _, err := txn.Get(rk); err == nil {
			continue // this device record already arrived (through another site or relay)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return 0, err
		}
		rec.SiteSeq = seq
		if rec.SiteID == "" {
			rec.SiteID = c.Site
		}
		stored, err := record.Marshal(&rec)
		if err != nil {
			return 0, err
		}
		if err := txn.Set(rk, stored); err != nil {
			return 0, err
		}
		d := devices[rec.DeviceID]
		if d == nil {
			d = &Device{}
			found, err := kv.GetJSON(txn, key(prefixDevice, rec.DeviceID), d)
			if err != nil {
				return 0, err
			}
			if !found {
				d = &Device{ID: rec.DeviceID, FirstSeen: rec.ReceivedAt}
				fresh = append(fresh, rec.DeviceID)
			}
			devices[rec.DeviceID] = d
			order = append(order, rec.DeviceID)
		}
		ev, err := applyRecord(d, &rec)
		if err != nil {
			return 0, err
		}
		if ev != nil {
			sub++
			ev.Source, ev.Time = c.Relay, c.At
			if err := putEvent(txn, index, sub, *ev); err != nil {
				return 0, err
			}
		}
		if rec.Kind == record.KindTaskStatus {
			evs, err := applyTaskStatus(txn, &rec) // tasks.go
			if err != nil {
				return 0, err
			}
			for _, e := range evs {
				sub++
				e.Source, e.Time = c.Relay, c.At
				if err := putEvent(txn, index, sub, e); err != nil {
					return 0, err
				}
			}
		}
		if rec.Kind == record.KindInventory {
			if err := txn.Set(revisionKey(rec.DeviceID, rec.CollectedAt, rec.Seq), nil); err != nil {
				return 0, err
			}
		}
	}
	for _, id := range order {
		if err := putDevice(txn, id, devices[id]); err != nil { // devicejson.go
			return 0, err
		}
	}
	if err := addLateTargets(txn, index, devices, fresh); err != nil { // tasks.go
		return 0, err
	}
	site.Cursor = cursor
	if err := kv.PutJSON(txn, key(prefixSite, c.Site), &site); err != nil {
		return 0, err
	}
	return cursor, kv.SetUint(txn, ck, cursor)
}

// applyRecord folds one record into its device. Current inventory only moves
// forward in collected_at; every inventory is a revision whatever its time.
func applyRecord(d *Device, rec *record.Record) (*event.Event, error) {
	d.Records++
	d.LastSeq = max(d.LastSeq, rec.Seq)
	if rec.ReceivedAt.After(d.LastSeen) {
		d.LastSeen = rec.ReceivedAt
		d.Site, d.Relay, d.Channel = rec.SiteID, rec.RelayNode, string(rec.Channel)
	}
	if rec.Kind != record.KindInventory {
		return nil, nil
	}
	d.Revisions++
	if !rec.CollectedAt.After(d.InventoryAt) {
		return nil, nil
	}
	var inv record.Inventory
	if err := json.Unmarshal(rec.Payload, &inv); err != nil {
		return nil, nil // validated at the relay; an undecodable payload keeps the old current state
	}
	var ev *event.Event
	if d.Serial != "" && inv.Hardware.Serial != "" && d.Serial != inv.Hardware.Serial {
		ev = &event.Event{Number: event.CloneDetected, Severity: event.Warning, Type: event.TypeDevice,
			Message: fmt.Sprintf("Device %s reported serial %q, previously %q: a cloned image or replaced hardware (not merged silently)", d.ID, inv.Hardware.Serial, d.Serial)}
	}
	d.InventoryAt = rec.CollectedAt
	d.InventorySeq = rec.Seq
	d.Inventory = rec.Payload
	d.Hostname = inv.Hostname
	d.Serial = inv.Hardware.Serial
	d.OS = inv.OS.Name
	d.MACs = d.MACs[:0]
	for _, ifc := range inv.Hardware.Interfaces {
		if ifc.MAC != "" {
			d.MACs = append(d.MACs, ifc.MAC)
		}
	}
	slices.Sort(d.MACs)
	return ev, nil
}

func applyContact(txn *badger.Txn, c *contactCommand) error {
	var site Site
	if _, err := kv.GetJSON(txn, key(prefixSite, c.Site), &site); err != nil {
		return err
	}
	if site.ID == "" {
		site = Site{ID: c.Site, FirstSeen: c.At}
	}
	if site.Relays == nil {
		site.Relays = map[string]Relay{}
	}
	site.Relays[c.Relay] = Relay{Node: c.Relay, LastContact: c.At, Outbox: c.Stats}
	return kv.PutJSON(txn, key(prefixSite, c.Site), &site)
}

// putEvent stores an event keyed by log index and a sub-index so one entry
// can raise several, and keeps the log bounded.
func putEvent(txn *badger.Txn, index, sub uint64, e event.Event) error {
	return event.Append(txn, prefixEvent, keyEvCount, index<<8|(sub&0xFF), e, maxEvents)
}
