package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/kv"
)

// fsm adapts Node to raftnode.StateMachine so Apply stays out of Node's API.
// Apply is deterministic: every timestamp comes from the command.
type fsm Node

// Apply implements raftnode.StateMachine. A command that fails to decode was
// validated before it was proposed, so failing here means divergence: the
// error is returned to the proposer and nothing is written.
func (f *fsm) Apply(txn *badger.Txn, index uint64, cmd []byte) []byte {
	typ, _, r, err := cmdenc.NewReader(cmd)
	if err != nil {
		return errorResult(err)
	}
	switch commandType(typ) {
	case cmdReports:
		c, err := decodeReports(r)
		if err != nil {
			return errorResult(err)
		}
		out, err := applyReports(txn, c)
		if err != nil {
			return storageFailure(err)
		}
		if f.up != nil {
			f.up.Kick() // a signal only; the uplink reads committed state
		}
		return out
	case cmdAck:
		upto := r.Uint()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if err := applyAck(txn, upto); err != nil {
			return storageFailure(err)
		}
	case cmdEnroll:
		c, err := decodeEnroll(r)
		if err != nil {
			return errorResult(err)
		}
		if err := applyEnroll(txn, c); err != nil {
			return storageFailure(err)
		}
	case cmdSecrets:
		join, admin := r.String(), r.String()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if err := applySecrets(txn, join, admin); err != nil {
			return storageFailure(err)
		}
	case cmdEvent:
		e, err := decodeEvent(r)
		if err != nil {
			return errorResult(err)
		}
		if err := applyEvent(txn, index, e); err != nil {
			return storageFailure(err)
		}
	case cmdDiskState:
		return f.applyDiskState(txn, r) // diskalarm.go
	case cmdCatalog:
		return f.applyCatalogCmd(txn, r) // catalog.go
	case cmdOffline:
		return (*Node)(f).applyOffline(txn, r) // offline.go
	case cmdAudit:
		return f.applyAuditCmd(txn, index, r) // audit.go
	default:
		// Divergence is worse than a crash: a node that cannot understand a
		// committed command must not go on applying later ones.
		panic(fmt.Sprintf("relay: unknown command type %d at index %d", typ, index))
	}
	return nil
}

// Results are either a command-specific encoding or an error: 0xFF + message.
func errorResult(err error) []byte { return append([]byte{0xFF}, err.Error()...) }

// storageFailure handles an error from applying a decoded command. A
// deliberate refusal (decided before anything was written) becomes an error
// result; anything else is a storage error and panics, as raftnode requires:
// on badger.ErrTxnTooBig it re-runs the entry in a fresh transaction, and any
// other failure must stop the replica rather than commit partial effects.
func storageFailure(err error) []byte {
	if errors.Is(err, ErrBadJoinToken) {
		return errorResult(err)
	}
	panic(fmt.Errorf("apply: %w", err))
}

func resultError(b []byte) error {
	if len(b) > 0 && b[0] == 0xFF {
		return errors.New("relay: apply: " + string(b[1:]))
	}
	return nil
}

func applyReports(txn *badger.Txn, c *reportsCommand) ([]byte, error) {
	next, err := kv.GetUint(txn, keyNextSeq)
	if err != nil {
		return nil, err
	}
	if next == 0 {
		next = 1
	}
	obBytes, err := kv.GetUint(txn, keyObBytes)
	if err != nil {
		return nil, err
	}
	results := make([]reportResult, len(c.Requests))
	for i, rq := range c.Requests {
		res, err := applyRequest(txn, c, rq, &next, &obBytes)
		if err != nil {
			return nil, err
		}
		results[i] = res
	}
	if err := kv.SetUint(txn, keyNextSeq, next); err != nil {
		return nil, err
	}
	if err := kv.SetUint(txn, keyObBytes, obBytes); err != nil {
		return nil, err
	}
	return encodeReportResults(results), nil
}

// applyRequest commits one agent request all-or-nothing: a conflicting replay
// anywhere in it refuses the whole request.
func applyRequest(txn *badger.Txn, c *reportsCommand, rq reportRequest, next, obBytes *uint64) (reportResult, error) {
	d, err := getDevice(txn, rq.DeviceID)
	if err != nil {
		return reportResult{}, err
	}
	if d == nil {
		return reportResult{Code: reportUnknown}, nil
	}
	fresh := make([]bool, len(rq.Records))
	res := reportResult{}
	seen := make(map[uint64]bool, len(rq.Records))
	for i, r := range rq.Records {
		if seen[r.Seq] {
			return reportResult{Code: reportConflict, BadSeq: r.Seq}, nil
		}
		seen[r.Seq] = true
		item, err := txn.Get(deviceSeqKey(prefixHash, rq.DeviceID, r.Seq))
		switch {
		case err == nil:
			same := false
			if err := item.Value(func(h []byte) error { same = bytes.Equal(h, r.Hash); return nil }); err != nil {
				return reportResult{}, err
			}
			if !same {
				return reportResult{Code: reportConflict, BadSeq: r.Seq}, nil
			}
			res.Duplicate++
		case errors.Is(err, badger.ErrKeyNotFound):
			if d.LastSeq > hashWindow && r.Seq <= d.LastSeq-hashWindow {
				return reportResult{Code: reportConflict, BadSeq: r.Seq}, nil
			}
			fresh[i] = true
		default:
			return reportResult{}, err
		}
		res.AckedSeq = max(res.AckedSeq, r.Seq)
	}
	for i, r := range rq.Records {
		if !fresh[i] {
			continue
		}
		val := make([]byte, 8, 8+len(r.Data))
		binary.BigEndian.PutUint64(val, uint64(c.At.UnixNano()))
		val = append(val, r.Data...)
		if err := txn.Set(seqKey(prefixOutbox, *next), val); err != nil {
			return reportResult{}, err
		}
		*next++
		*obBytes += uint64(len(val))
		if err := txn.Set(deviceSeqKey(prefixHash, rq.DeviceID, r.Seq), r.Hash); err != nil {
			return reportResult{}, err
		}
		if r.Seq > hashWindow {
			if err := txn.Delete(deviceSeqKey(prefixHash, rq.DeviceID, r.Seq-hashWindow)); err != nil {
				return reportResult{}, err
			}
		}
		if r.Inventory && r.CollectedAt.After(d.InventoryAt) {
			d.InventoryAt = r.CollectedAt
			if err := txn.Set(deviceKey(prefixInventory, rq.DeviceID), r.Data); err != nil {
				return reportResult{}, err
			}
		}
		if err := applyTaskStatus(txn, rq.DeviceID, r); err != nil { // taskstatus.go
			return reportResult{}, err
		}
		d.LastSeq = max(d.LastSeq, r.Seq)
		d.Records++
		res.Accepted++
	}
	d.LastSeen = c.At
	if err := putDevice(txn, d); err != nil {
		return reportResult{}, err
	}
	return res, nil
}

// applyAck trims the outbox up to a site sequence central has committed.
func applyAck(txn *badger.Txn, upto uint64) error {
	acked, err := kv.GetUint(txn, keyAcked)
	if err != nil {
		return err
	}
	next, err := kv.GetUint(txn, keyNextSeq)
	if err != nil {
		return err
	}
	if next > 0 {
		upto = min(upto, next-1)
	}
	if upto <= acked {
		return nil
	}
	obBytes, err := kv.GetUint(txn, keyObBytes)
	if err != nil {
		return err
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefixOutbox
	it := txn.NewIterator(opts)
	var del [][]byte
	for it.Seek(seqKey(prefixOutbox, acked+1)); it.Valid(); it.Next() {
		k := it.Item().KeyCopy(nil)
		if binary.BigEndian.Uint64(k[len(prefixOutbox):]) > upto {
			break
		}
		// The exact length, not Item.ValueSize: that estimates a value-log
		// header and is exact only for values pending in this txn, so the
		// count would depend on how raft batched the applies (finding D,
		// TestApplyAckIsBatchIndependent).
		var n int
		if err := it.Item().Value(func(v []byte) error { n = len(v); return nil }); err != nil {
			it.Close()
			return err
		}
		obBytes -= min(obBytes, uint64(n))
		del = append(del, k)
	}
	it.Close()
	for _, k := range del {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	if err := kv.SetUint(txn, keyObBytes, obBytes); err != nil {
		return err
	}
	return kv.SetUint(txn, keyAcked, upto)
}

func applyEnroll(txn *badger.Txn, c *enrollCommand) error {
	want, err := getString(txn, keyJoinHash)
	if err != nil {
		return err
	}
	if want == "" || want != c.JoinHash {
		return ErrBadJoinToken
	}
	d, err := getDevice(txn, c.DeviceID)
	if err != nil {
		return err
	}
	if d == nil {
		d = &deviceStored{deviceState: deviceState{ID: c.DeviceID, EnrolledAt: c.At}}
	}
	d.Token = c.TokenHash
	d.Hostname = c.Hostname
	d.OS = c.OS
	d.LastSeen = c.At
	return putDevice(txn, d)
}

func applySecrets(txn *badger.Txn, join, admin string) error {
	for _, kv := range []struct {
		key []byte
		val string
	}{{keyJoinHash, join}, {keyAdmin, admin}} {
		cur, err := getString(txn, kv.key)
		if err != nil {
			return err
		}
		if cur == "" && kv.val != "" {
			if err := txn.Set(kv.key, []byte(kv.val)); err != nil {
				return err
			}
		}
	}
	return nil
}

func applyEvent(txn *badger.Txn, index uint64, e event.Event) error {
	return event.Append(txn, prefixEvent, keyEvCount, index, e, maxEvents)
}
