package relay

// Offline import at a relay (offline/DESIGN.md): the relay verifies sealed
// records itself, keeps an import ledger in the site Raft (so a second copy
// of a stick, at any node of the site, is a no-op) and puts the records in
// the outbox; they reach central like agent reports, where central's own
// ledger makes a copy imported at another site or at central a no-op too.

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"filippo.io/age"
	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/offline"
)

// prefixLedger: x/l/<device><collected_at8><sha256> → import unix nanos.
var prefixLedger = []byte("x/l/")

type offlineItem struct {
	Ledger []byte
	Record []byte // stamped record JSON: seq 0, channel usb, provenance in bundle_id
}

func encodeOfflineImport(at time.Time, items []offlineItem) []byte {
	size := 32
	for _, it := range items {
		size += len(it.Ledger) + len(it.Record) + 8
	}
	w := cmdenc.NewWriter(byte(cmdOffline), commandVersion, size)
	w.Time(at)
	w.Uint(uint64(len(items)))
	for _, it := range items {
		w.Bytes(it.Ledger)
		w.Bytes(it.Record)
	}
	return w.Done()
}

// applyOffline appends each record not yet in the ledger to the outbox. The
// result is one byte per item: 0 imported, 1 duplicate.
func (n *Node) applyOffline(txn *badger.Txn, r *cmdenc.Reader) []byte {
	at := r.Time()
	cnt := r.Count(offline.MaxRequestRecords)
	items := make([]offlineItem, 0, cnt)
	for i := 0; i < cnt && r.Err() == nil; i++ {
		items = append(items, offlineItem{Ledger: r.Bytes(), Record: r.Bytes()})
	}
	if r.Err() != nil {
		return errorResult(fmt.Errorf("decode offline import: %w", r.Err()))
	}
	out, err := applyOfflineItems(txn, at, items)
	if err != nil {
		return storageFailure(err)
	}
	if n.up != nil {
		n.up.Kick()
	}
	return out
}

func applyOfflineItems(txn *badger.Txn, at time.Time, items []offlineItem) ([]byte, error) {
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
	out := make([]byte, len(items))
	for i, it := range items {
		lk := append(append([]byte{}, prefixLedger...), it.Ledger...)
		if _, err := txn.Get(lk); err == nil {
			out[i] = 1
			continue
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return nil, err
		}
		if err := txn.Set(lk, binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano()))); err != nil {
			return nil, err
		}
		val := make([]byte, 8, 8+len(it.Record))
		binary.BigEndian.PutUint64(val, uint64(at.UnixNano()))
		val = append(val, it.Record...)
		if err := txn.Set(seqKey(prefixOutbox, next), val); err != nil {
			return nil, err
		}
		next++
		obBytes += uint64(len(val))
	}
	if err := kv.SetUint(txn, keyNextSeq, next); err != nil {
		return nil, err
	}
	return out, kv.SetUint(txn, keyObBytes, obBytes)
}

// ImportOffline verifies a batch of sealed records and commits the new ones
// to the site outbox (a dry run only reports).
func (n *Node) ImportOffline(ctx context.Context, req *offline.ImportRequest) ([]offline.RecordResult, error) {
	return n.offlineImporter().Import(ctx, req)
}

// offlineImporter is a relay's side of an offline import. A relay cannot
// prove a kit came from central (central re-checks kit, generation and
// device key when the records arrive) and holds no age identity, so
// encrypted records are refused. New records go to the outbox through the
// site ledger, so a second copy at any node of the site is a duplicate.
func (n *Node) offlineImporter() *offline.ImportServer {
	return &offline.ImportServer{
		Kit: func(_ context.Context, raw json.RawMessage) (*offline.Kit, *age.X25519Identity, error) {
			kit, err := offline.ParseKit(raw, nil)
			return kit, nil, err
		},
		Stamp:        func(rec *record.Record) { rec.SiteID, rec.RelayNode = n.cfg.Site, n.cfg.NodeID },
		CommandBytes: maxCommandBytes - 4096,
		PerItem:      128,
		Commit: func(ctx context.Context, acc []offline.Accepted, now time.Time, dry, _ bool) ([]offline.Outcome, error) {
			items := make([]offlineItem, len(acc))
			for i, a := range acc {
				items[i] = offlineItem{Ledger: a.Opened.LedgerKey(), Record: a.Record}
			}
			dup, err := n.commitOffline(ctx, items, now, dry)
			if err != nil {
				return nil, err
			}
			out := make([]offline.Outcome, len(items))
			for i := range out {
				out[i].Outcome = offline.OutcomeImported
				if dup[i] == 1 {
					out[i].Outcome = offline.OutcomeDuplicate
				} else {
					out[i].Warning = "committed at site " + n.cfg.Site + "; central applies it when the uplink delivers it"
				}
			}
			return out, nil
		},
	}
}

// commitOffline proposes items to the site outbox, or with dry looks them
// up in the ledger; 1 marks a duplicate.
func (n *Node) commitOffline(ctx context.Context, items []offlineItem, now time.Time, dry bool) ([]byte, error) {
	if !dry {
		b, err := n.raft.Propose(ctx, encodeOfflineImport(now, items))
		if err != nil {
			return nil, err
		}
		if err := resultError(b); err != nil {
			return nil, err
		}
		if len(b) != len(items) {
			return nil, fmt.Errorf("offline import: %d results for %d records", len(b), len(items))
		}
		return b, nil
	}
	out := make([]byte, 0, len(items))
	seen := map[string]bool{}
	err := n.raft.View(func(txn *badger.Txn) error {
		for _, it := range items {
			_, err := txn.Get(append(append([]byte{}, prefixLedger...), it.Ledger...))
			switch {
			case err == nil || seen[string(it.Ledger)]:
				out = append(out, 1)
			case errors.Is(err, badger.ErrKeyNotFound):
				out = append(out, 0)
			default:
				return err
			}
			seen[string(it.Ledger)] = true
		}
		return nil
	})
	return out, err
}
