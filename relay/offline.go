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
	"net/http"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/httpx"
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
	if len(req.Records) > offline.MaxRequestRecords {
		return nil, fmt.Errorf("%d records in one request, limit %d", len(req.Records), offline.MaxRequestRecords)
	}
	kit, err := offline.ParseKit(req.Kit, nil)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	opened, results := offline.CheckRecords(req, kit, nil, now, record.Limits{})
	var items []offlineItem
	var idx []int
	for i, o := range opened {
		if o == nil {
			continue
		}
		if o.Record == nil {
			results[i].Outcome, results[i].Reason = offline.OutcomeRejected, offline.ReasonEncryptedRelay
			results[i].Detail = "encrypted to central: import this medium at central"
			continue
		}
		rec := *o.Record
		rec.ReceivedAt, rec.Channel, rec.SiteID, rec.RelayNode = now, record.ChannelUSB, n.cfg.Site, n.cfg.NodeID
		rec.BundleID = offline.Provenance{KitID: kit.ID, KitGen: kit.Generation, DeviceKey: o.Sealed.DeviceKey, Payload: o.Payload}.String()
		b, err := json.Marshal(&rec)
		if err != nil {
			return nil, err
		}
		items = append(items, offlineItem{Ledger: o.LedgerKey(), Record: b})
		idx = append(idx, i)
	}
	var out []byte
	if req.DryRun {
		seen := map[string]bool{}
		err = n.raft.View(func(txn *badger.Txn) error {
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
		if err != nil {
			return nil, err
		}
	} else {
		for start := 0; start < len(items); {
			end, size := start, 0
			for end < len(items) && (end == start || size+len(items[end].Record)+128 < maxCommandBytes-4096) {
				size += len(items[end].Record) + 128
				end++
			}
			b, err := n.raft.Propose(ctx, encodeOfflineImport(now, items[start:end]))
			if err != nil {
				return nil, err
			}
			if err := resultError(b); err != nil {
				return nil, err
			}
			if len(b) != end-start {
				return nil, fmt.Errorf("offline import: %d results for %d records", len(b), end-start)
			}
			out = append(out, b...)
			start = end
		}
	}
	for j, i := range idx {
		results[i].Outcome = offline.OutcomeImported
		if out[j] == 1 {
			results[i].Outcome = offline.OutcomeDuplicate
		} else {
			results[i].Warning = "committed at site " + n.cfg.Site + "; central applies it when the uplink delivers it"
		}
	}
	return results, nil
}

func (n *Node) handleOfflineImport(w http.ResponseWriter, r *http.Request) {
	var req offline.ImportRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, offline.MaxRequestBytes*2)).Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	res, err := n.ImportOffline(r.Context(), &req)
	switch {
	case errors.Is(err, offline.ErrKit):
		httpx.WriteError(w, http.StatusBadRequest, "kit_invalid", err.Error())
	case err != nil:
		httpx.WriteError(w, http.StatusServiceUnavailable, "import_failed", err.Error())
	default:
		httpx.WriteJSON(w, http.StatusOK, offline.ImportResponse{Results: res})
	}
}
