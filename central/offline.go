package central

// Offline-managed computers (DESIGN.md §9, offline/DESIGN.md): central signs
// collection kits, verifies sealed records and applies them through the
// same device update as agent records, with an import ledger keyed by
// (device_id, collected_at, payload SHA-256) so every copy of a record has
// one effect, whichever relay or central imported it.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"filippo.io/age"
	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/offline"
)

// Offline state keys (all under x/).
var (
	keyOfflineKeys     = []byte("x/keys")     // offlineKeys JSON: kit-signing seed, age identity
	keyOfflineSettings = []byte("x/settings") // offlineSettings JSON: generation + settings
	prefixOfflineKit   = []byte("x/kit/")     // x/kit/<id> → offlineKit JSON
	prefixDeviceKey    = []byte("x/dk/")      // x/dk/<device> → trusted ed25519 public key (TOFU)
	prefixLedger       = []byte("x/l/")       // x/l/<device><collected_at8><sha256> → ledgerEntry JSON
	prefixStocktaking  = []byte("x/st/")      // x/st/<device> → Stocktaking JSON
)

// Offline event numbers (edgesync's own, 51xx).
const (
	evOfflineKeyChanged = 5101 // a sealed record signed by another key than the one trusted for its device
	evOfflineOldKit     = 5102 // records from an older kit generation were accepted
	evOfflineImported   = 5103 // summary of one import command
	evOfflineDiscarded  = 5104 // a forwarded offline record without usable provenance
)

// Sub-operations of cmdOffline.
const (
	offlineOpKeys   = 1
	offlineOpKit    = 2
	offlineOpImport = 3
)

type offlineKeys struct {
	Seed []byte `json:"seed"`
	Age  string `json:"age"`
}

type offlineSettings struct {
	Generation uint64           `json:"generation"`
	Settings   offline.Settings `json:"settings"`
}

type offlineKit struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	Generation uint64    `json:"generation"`
	CreatedAt  time.Time `json:"created_at"`
	Encrypt    bool      `json:"encrypt,omitempty"`
}

type ledgerEntry struct {
	At      time.Time `json:"at"`
	Via     string    `json:"via"`
	Outcome string    `json:"outcome"`
	KitID   string    `json:"kit_id"`
}

// Stocktaking is a device's offline import state: the stocktaking date is
// the day its data was last imported (the product's rule), not the
// collection day; last-alive is never touched by an import.
type Stocktaking struct {
	DeviceID      string    `json:"device_id"`
	StocktakingAt time.Time `json:"stocktaking_at"`
	Via           string    `json:"via"`
	Imports       uint64    `json:"imports"`
	DeviceKey     []byte    `json:"device_key,omitempty"`
}

// offlineItem is one verified sealed record as proposed.
type offlineItem struct {
	Ledger    []byte
	DeviceKey []byte
	KitID     string
	KitGen    uint64
	Record    []byte // stamped record JSON (synthetic seq, usb, received_at)
}

type offlineImportCommand struct {
	At     time.Time
	Via    string
	Strict bool
	Items  []offlineItem
}

func (c *offlineImportCommand) encode() []byte {
	size := 64
	for _, it := range c.Items {
		size += len(it.Record) + len(it.Ledger) + len(it.KitID) + 64
	}
	w := cmdenc.NewWriter(byte(cmdOffline), commandVersion, size)
	w.Uint(offlineOpImport)
	w.Time(c.At)
	w.String(c.Via)
	if c.Strict {
		w.Uint(1)
	} else {
		w.Uint(0)
	}
	w.Uint(uint64(len(c.Items)))
	for _, it := range c.Items {
		w.Bytes(it.Ledger)
		w.Bytes(it.DeviceKey)
		w.String(it.KitID)
		w.Uint(it.KitGen)
		w.Bytes(it.Record)
	}
	return w.Done()
}

func decodeOfflineImport(r *cmdenc.Reader) (*offlineImportCommand, error) {
	c := &offlineImportCommand{At: r.Time(), Via: r.String(), Strict: r.Uint() == 1}
	n := r.Count(offline.MaxRequestRecords)
	for i := 0; i < n && r.Err() == nil; i++ {
		c.Items = append(c.Items, offlineItem{Ledger: r.Bytes(), DeviceKey: r.Bytes(), KitID: r.String(), KitGen: r.Uint(), Record: r.Bytes()})
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode offline import: %w", err)
	}
	return c, nil
}

// applyOffline applies a cmdOffline command. Storage errors go through
// storageFailure (panic) as for every other command.
func (n *Node) applyOffline(txn *badger.Txn, index uint64, r *cmdenc.Reader) []byte {
	switch op := r.Uint(); op {
	case offlineOpKeys:
		b := r.Bytes()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if _, err := txn.Get(keyOfflineKeys); errors.Is(err, badger.ErrKeyNotFound) {
			if err := txn.Set(keyOfflineKeys, b); err != nil {
				return storageFailure(err)
			}
		} else if err != nil {
			return storageFailure(err)
		}
		return nil
	case offlineOpKit:
		k := offlineKit{ID: r.String(), Name: r.String(), CreatedAt: r.Time(), Encrypt: r.Uint() == 1}
		set := r.Bytes()
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		var cur offlineSettings
		if _, err := kv.GetJSON(txn, keyOfflineSettings, &cur); err != nil {
			return storageFailure(err)
		}
		if cur.Generation == 0 {
			cur.Generation = 1
		}
		if len(set) > 0 {
			var s offline.Settings
			if err := json.Unmarshal(set, &s); err != nil {
				return errorResult(err)
			}
			old, _ := json.Marshal(cur.Settings)
			now, _ := json.Marshal(s)
			if !bytes.Equal(old, now) {
				cur.Settings = s
				cur.Generation++
			}
		}
		k.Generation = cur.Generation
		if err := kv.PutJSON(txn, keyOfflineSettings, &cur); err != nil {
			return storageFailure(err)
		}
		if err := kv.PutJSON(txn, key(prefixOfflineKit, k.ID), &k); err != nil {
			return storageFailure(err)
		}
		out, _ := json.Marshal(&cur)
		return out
	case offlineOpImport:
		c, err := decodeOfflineImport(r)
		if err != nil {
			return errorResult(err)
		}
		res, err := applyOfflineImport(&overlay{txn: txn}, index, c)
		if err != nil {
			return storageFailure(err)
		}
		out, _ := json.Marshal(res)
		return out
	default:
		return errorResult(fmt.Errorf("unknown offline operation %d", op))
	}
}

// overlay lets one apply path serve both Apply (writes) and a dry run
// (writes kept in memory over a read-only view).
type overlay struct {
	txn     *badger.Txn
	dry     bool
	pending map[string][]byte
	sub     uint64
	index   uint64
}

func (o *overlay) get(k []byte) ([]byte, bool, error) {
	if o.dry {
		if v, ok := o.pending[string(k)]; ok {
			return v, true, nil
		}
	}
	item, err := o.txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	v, err := item.ValueCopy(nil)
	return v, true, err
}

func (o *overlay) getJSON(k []byte, v any) (bool, error) {
	b, ok, err := o.get(k)
	if err != nil || !ok {
		return ok, err
	}
	return true, json.Unmarshal(b, v)
}

func (o *overlay) set(k, v []byte) error {
	if o.dry {
		if o.pending == nil {
			o.pending = map[string][]byte{}
		}
		o.pending[string(k)] = v
		return nil
	}
	return o.txn.Set(k, v)
}

func (o *overlay) putJSON(k []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return o.set(k, b)
}

func (o *overlay) event(e event.Event) error {
	if o.dry || o.sub >= 255 {
		return nil
	}
	o.sub++
	return putEvent(o.txn, o.index, o.sub, e)
}

// itemResult is Apply's answer for one item.
type itemResult struct {
	Outcome string `json:"o"`
	Reason  string `json:"r,omitempty"`
	Warning string `json:"w,omitempty"`
}

// deviceCache loads each device once per command and writes them at the end.
type deviceCache struct {
	ov      *overlay
	devices map[string]*Device
	order   []string
}

func (dc *deviceCache) get(id string, firstSeen time.Time) (*Device, error) {
	if d := dc.devices[id]; d != nil {
		return d, nil
	}
	d := &Device{}
	found, err := dc.ov.getJSON(key(prefixDevice, id), d)
	if err != nil {
		return nil, err
	}
	if !found {
		d = &Device{ID: id, FirstSeen: firstSeen}
	}
	if dc.devices == nil {
		dc.devices = map[string]*Device{}
	}
	dc.devices[id] = d
	dc.order = append(dc.order, id)
	return d, nil
}

func (dc *deviceCache) flush() error {
	for _, id := range dc.order {
		if err := dc.ov.putJSON(key(prefixDevice, id), dc.devices[id]); err != nil {
			return err
		}
	}
	return nil
}

func applyOfflineImport(ov *overlay, index uint64, c *offlineImportCommand) ([]itemResult, error) {
	ov.index = index
	dc := &deviceCache{ov: ov}
	res := make([]itemResult, len(c.Items))
	var stale, history, imported, dup, rejected int
	for i := range c.Items {
		var rec record.Record
		if err := json.Unmarshal(c.Items[i].Record, &rec); err != nil {
			res[i] = itemResult{Outcome: offline.OutcomeRejected, Reason: offline.ReasonMalformed}
			rejected++
			continue
		}
		r, err := applyOfflineItem(ov, dc, &c.Items[i], &rec, c.At, c.Via, c.Strict)
		if err != nil {
			return nil, err
		}
		res[i] = r
		switch {
		case r.Outcome == offline.OutcomeImported:
			imported++
		case r.Outcome == offline.OutcomeHistory:
			history++
		case r.Outcome == offline.OutcomeDuplicate:
			dup++
		default:
			rejected++
		}
		if r.Warning != "" {
			stale++
		}
	}
	if err := dc.flush(); err != nil {
		return nil, err
	}
	if stale > 0 {
		if err := ov.event(event.Event{Number: evOfflineOldKit, Severity: event.Warning, Type: event.TypeSettings, Source: c.Via, Time: c.At,
			Message: fmt.Sprintf("%d offline records came from an older kit generation (collection settings have changed since); accepted", stale)}); err != nil {
			return nil, err
		}
	}
	if history > 0 {
		if err := ov.event(event.Event{Number: event.StaleInventory, Severity: event.Information, Type: event.TypeDevice, Source: c.Via, Time: c.At,
			Message: fmt.Sprintf("%d offline records were older than their device's current inventory and went to history only", history)}); err != nil {
			return nil, err
		}
	}
	err := ov.event(event.Event{Number: evOfflineImported, Severity: event.Information, Type: event.TypeDevice, Source: c.Via, Time: c.At,
		Message: fmt.Sprintf("Offline import: %d imported, %d history-only, %d duplicate, %d rejected", imported, history, dup, rejected)})
	return res, err
}

// applyOfflineItem applies one verified record: ledger, device key (TOFU),
// kit generation, then the device update shared with agent records.
func applyOfflineItem(ov *overlay, dc *deviceCache, it *offlineItem, rec *record.Record, at time.Time, via string, strict bool) (itemResult, error) {
	lk := key(prefixLedger, string(it.Ledger))
	if _, found, err := ov.get(lk); err != nil || found {
		return itemResult{Outcome: offline.OutcomeDuplicate}, err
	}
	dk := key(prefixDeviceKey, rec.DeviceID)
	trusted, found, err := ov.get(dk)
	if err != nil {
		return itemResult{}, err
	}
	if found && !bytes.Equal(trusted, it.DeviceKey) {
		err := ov.event(event.Event{Number: evOfflineKeyChanged, Severity: event.Critical, Type: event.TypeSecurity, Source: via, Time: at,
			Message: fmt.Sprintf("Device %s presented a sealed record signed by a new key; refused (a forged record, or a reinstalled machine: run agent reset-id)", rec.DeviceID)})
		return itemResult{Outcome: offline.OutcomeRejected, Reason: offline.ReasonKeyChanged}, err
	}
	var warn string
	var cur offlineSettings
	if _, err := ov.getJSON(keyOfflineSettings, &cur); err != nil {
		return itemResult{}, err
	}
	if it.KitGen < cur.Generation {
		if strict {
			return itemResult{Outcome: offline.OutcomeRejected, Reason: offline.ReasonOldGeneration}, nil
		}
		warn = fmt.Sprintf("kit generation %d is older than the current %d", it.KitGen, cur.Generation)
	}
	if !found {
		if err := ov.set(dk, it.DeviceKey); err != nil {
			return itemResult{}, err
		}
	}
	rec.Seq = offline.SyntheticSeq(it.Ledger)
	rk := recordKey(rec.DeviceID, rec.Seq)
	if _, found, err := ov.get(rk); err != nil || found {
		return itemResult{Outcome: offline.OutcomeDuplicate}, err
	}
	stored, err := json.Marshal(rec)
	if err != nil {
		return itemResult{}, err
	}
	if err := ov.set(rk, stored); err != nil {
		return itemResult{}, err
	}
	if rec.Kind == record.KindInventory {
		if err := ov.set(revisionKey(rec.DeviceID, rec.CollectedAt, rec.Seq), nil); err != nil {
			return itemResult{}, err
		}
	}
	d, err := dc.get(rec.DeviceID, rec.ReceivedAt)
	if err != nil {
		return itemResult{}, err
	}
	before, saved := d.InventoryAt, *d
	ev, err := applyRecord(d, rec)
	if err != nil {
		return itemResult{}, err
	}
	// An import is not a sign of life: last-alive, the device's last agent
	// seq and where it was last seen online stay as they were.
	d.LastSeq, d.LastSeen, d.Site, d.Relay, d.Channel = saved.LastSeq, saved.LastSeen, saved.Site, saved.Relay, saved.Channel
	if d.Channel == "" {
		d.Channel, d.Site, d.Relay = string(record.ChannelUSB), rec.SiteID, rec.RelayNode
	}
	if ev != nil {
		ev.Source, ev.Time = via, at
		if err := ov.event(*ev); err != nil {
			return itemResult{}, err
		}
	}
	out := itemResult{Outcome: offline.OutcomeHistory, Warning: warn}
	if rec.Kind == record.KindInventory && rec.CollectedAt.After(before) {
		out.Outcome = offline.OutcomeImported
	}
	if err := ov.putJSON(lk, ledgerEntry{At: at, Via: via, Outcome: out.Outcome, KitID: it.KitID}); err != nil {
		return itemResult{}, err
	}
	var st Stocktaking
	if _, err := ov.getJSON(key(prefixStocktaking, rec.DeviceID), &st); err != nil {
		return itemResult{}, err
	}
	st.DeviceID, st.Via, st.Imports = rec.DeviceID, via, st.Imports+1
	if at.After(st.StocktakingAt) {
		st.StocktakingAt = at
	}
	return out, ov.putJSON(key(prefixStocktaking, rec.DeviceID), &st)
}

// applyForwardedOffline applies an offline record a relay imported and
// forwarded through its outbox (channel usb, seq 0): the relay verified the
// seal and its ledger; central applies its own ledger, key and generation
// checks with the provenance the relay put in BundleID.
func applyForwardedOffline(txn *badger.Txn, index uint64, sub *uint64, c *ingestCommand, siteSeq uint64, rec *record.Record, devices map[string]*Device, order *[]string) error {
	ov := &overlay{txn: txn, index: index, sub: *sub}
	defer func() { *sub = ov.sub }()
	p, err := offline.ParseProvenance(rec.BundleID)
	if err != nil {
		return ov.event(event.Event{Number: evOfflineDiscarded, Severity: event.Warning, Type: event.TypeError, Source: c.Relay, Time: c.At,
			Message: fmt.Sprintf("Offline record %d from site %s has no usable provenance and was discarded: %v", siteSeq, c.Site, err)})
	}
	rec.SiteSeq = siteSeq
	if rec.SiteID == "" {
		rec.SiteID = c.Site
	}
	at := rec.ReceivedAt
	if at.IsZero() {
		at = c.At
	}
	dc := &deviceCache{ov: ov, devices: devices}
	it := &offlineItem{Ledger: offline.LedgerKey(rec.DeviceID, rec.CollectedAt, p.Payload), DeviceKey: p.DeviceKey, KitID: p.KitID, KitGen: p.KitGen}
	r, err := applyOfflineItem(ov, dc, it, rec, at, c.Relay, false)
	*order = append(*order, dc.order...)
	if err != nil {
		return err
	}
	if r.Outcome == offline.OutcomeHistory {
		return ov.event(event.Event{Number: event.StaleInventory, Severity: event.Information, Type: event.TypeDevice, Source: c.Relay, Time: c.At,
			Message: fmt.Sprintf("Offline record of device %s collected %s is older than its current inventory: history only", rec.DeviceID, rec.CollectedAt.Format(time.RFC3339))})
	}
	return nil
}

// --- admin API -----------------------------------------------------------

// KitRequest is the body of POST /api/v1/offline/kits.
type KitRequest struct {
	Name     string            `json:"name,omitempty"`
	Encrypt  bool              `json:"encrypt,omitempty"`
	Settings *offline.Settings `json:"settings,omitempty"` // nil keeps the current settings
}

func (n *Node) offlineKeys(ctx context.Context) (*offlineKeys, error) {
	var k offlineKeys
	found := false
	read := func() error {
		return n.raft.View(func(txn *badger.Txn) (err error) { found, err = kv.GetJSON(txn, keyOfflineKeys, &k); return err })
	}
	if err := read(); err != nil || found || ctx == nil {
		return &k, err
	}
	var seed [ed25519.SeedSize]byte
	rand.Read(seed[:])
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(offlineKeys{Seed: seed[:], Age: id.String()})
	w := cmdenc.NewWriter(byte(cmdOffline), commandVersion, len(b)+8)
	w.Uint(offlineOpKeys)
	w.Bytes(b)
	if out, err := n.raft.Propose(ctx, w.Done()); err != nil || resultError(out) != nil {
		return nil, errors.Join(err, resultError(out))
	}
	return &k, read() // the first proposal wins; read what was kept
}

// CreateKit registers a kit and returns its signed kit.json.
func (n *Node) CreateKit(ctx context.Context, req KitRequest) ([]byte, error) {
	keys, err := n.offlineKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("kit keys: %w", err)
	}
	k := offline.Kit{ID: offline.NewKitID(), Name: req.Name, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	w := cmdenc.NewWriter(byte(cmdOffline), commandVersion, 256)
	w.Uint(offlineOpKit)
	w.String(k.ID)
	w.String(k.Name)
	w.Time(k.CreatedAt)
	if req.Encrypt {
		w.Uint(1)
	} else {
		w.Uint(0)
	}
	var set []byte
	if req.Settings != nil {
		set, _ = json.Marshal(req.Settings)
	}
	w.Bytes(set)
	out, err := n.raft.Propose(ctx, w.Done())
	if err != nil {
		return nil, err
	}
	if err := resultError(out); err != nil {
		return nil, err
	}
	var cur offlineSettings
	if err := json.Unmarshal(out, &cur); err != nil {
		return nil, fmt.Errorf("kit result: %w", err)
	}
	k.Generation, k.Settings = cur.Generation, cur.Settings
	if req.Encrypt {
		id, err := age.ParseX25519Identity(keys.Age)
		if err != nil {
			return nil, err
		}
		k.AgeRecipient = id.Recipient().String()
	}
	return offline.SignKit(ed25519.NewKeyFromSeed(keys.Seed), &k)
}

func (n *Node) handleOfflineKit(w http.ResponseWriter, r *http.Request) {
	var req KitRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	b, err := n.CreateKit(r.Context(), req)
	if err != nil {
		httpx.WriteError(w, http.StatusServiceUnavailable, "kit_failed", err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// ImportOffline verifies a batch of sealed records and applies it (or, on
// a dry run, reports what applying would do without changing anything).
func (n *Node) ImportOffline(ctx context.Context, req *offline.ImportRequest) ([]offline.RecordResult, error) {
	return n.offlineImporter().Import(ctx, req)
}

// offlineImporter is central's side of an offline import: kits must be
// ones this central issued, in their generation; encrypted records are
// opened with central's age identity; records are applied by
// applyOfflineImport, the same code a dry run runs over a read-only view.
func (n *Node) offlineImporter() *offline.ImportServer {
	return &offline.ImportServer{
		Kit:          n.trustedKit,
		CommandBytes: maxCommandBytes - 4096,
		PerItem:      256,
		Commit: func(ctx context.Context, acc []offline.Accepted, now time.Time, dry, strict bool) ([]offline.Outcome, error) {
			c := &offlineImportCommand{At: now, Via: n.cfg.NodeID, Strict: strict, Items: make([]offlineItem, len(acc))}
			for i, a := range acc {
				c.Items[i] = offlineItem{Ledger: a.Opened.LedgerKey(), DeviceKey: a.Opened.Sealed.DeviceKey, KitID: a.Kit.ID, KitGen: a.Kit.Generation, Record: a.Record}
			}
			var out []itemResult
			if dry {
				err := n.raft.View(func(txn *badger.Txn) (err error) {
					out, err = applyOfflineImport(&overlay{txn: txn, dry: true}, 0, c)
					return err
				})
				if err != nil {
					return nil, err
				}
			} else {
				b, err := n.raft.Propose(ctx, c.encode())
				if err != nil {
					return nil, err
				}
				if err := resultError(b); err != nil {
					return nil, err
				}
				if err := json.Unmarshal(b, &out); err != nil {
					return nil, fmt.Errorf("offline import result: %w", err)
				}
			}
			res := make([]offline.Outcome, len(out))
			for i, r := range out {
				res[i] = offline.Outcome{Outcome: r.Outcome, Reason: r.Reason, Warning: r.Warning}
			}
			return res, nil
		},
	}
}

// trustedKit checks a medium's kit.json against central's kit key and kit
// registry, and returns central's age identity.
func (n *Node) trustedKit(_ context.Context, raw json.RawMessage) (*offline.Kit, *age.X25519Identity, error) {
	keys, err := n.offlineKeys(nil)
	if err != nil {
		return nil, nil, err
	}
	if len(keys.Seed) != ed25519.SeedSize {
		return nil, nil, fmt.Errorf("%w: this central has issued no kits", offline.ErrKit)
	}
	kit, err := offline.ParseKit(raw, ed25519.NewKeyFromSeed(keys.Seed).Public().(ed25519.PublicKey))
	if err != nil {
		return nil, nil, err
	}
	var known offlineKit
	var found bool
	if err := n.raft.View(func(txn *badger.Txn) (err error) {
		found, err = kv.GetJSON(txn, key(prefixOfflineKit, kit.ID), &known)
		return err
	}); err != nil {
		return nil, nil, err
	}
	if !found || known.Generation != kit.Generation {
		return nil, nil, fmt.Errorf("%w: kit %s generation %d was not issued by this central", offline.ErrKit, kit.ID, kit.Generation)
	}
	id, err := age.ParseX25519Identity(keys.Age)
	if err != nil {
		return nil, nil, err
	}
	return kit, id, nil
}

// OfflineDevice returns a device's stocktaking state.
func (n *Node) OfflineDevice(id string) (Stocktaking, error) {
	var st Stocktaking
	err := n.raft.View(func(txn *badger.Txn) error {
		found, err := kv.GetJSON(txn, key(prefixStocktaking, id), &st)
		if err == nil && !found {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		st.DeviceKey, err = getBytes(txn, key(prefixDeviceKey, id))
		return err
	})
	return st, err
}

func getBytes(txn *badger.Txn, k []byte) ([]byte, error) {
	item, err := txn.Get(k)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return item.ValueCopy(nil)
}

func (n *Node) handleOfflineDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !record.ValidDeviceID(id) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_device_id", "a device ID is 32 lowercase hex characters")
		return
	}
	if !n.deviceVisible(principalOf(r), id) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "device "+id+": "+ErrNotFound.Error())
		return
	}
	st, err := n.OfflineDevice(id)
	writeResult(w, st, err)
}
