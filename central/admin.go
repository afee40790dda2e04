package central

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/backup"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/internal/nodemetrics"
	"github.com/edgesync/edgesync/internal/raftnode"
)

// Status is what GET /api/v1/cluster answers on a central node.
type Status struct {
	Role string          `json:"role"`
	Node string          `json:"node"`
	Raft raftnode.Status `json:"raft"`
}

// DeviceList is a page of devices.
type DeviceList struct {
	Total   int      `json:"total"`
	Devices []Device `json:"devices"`
}

// Revision is one inventory record in a device's history.
type Revision struct {
	Seq         uint64    `json:"seq"`
	CollectedAt time.Time `json:"collected_at"`
	ReceivedAt  time.Time `json:"received_at"`
	Channel     string    `json:"channel"`
	Site        string    `json:"site"`
	Relay       string    `json:"relay,omitempty"`
	SiteSeq     uint64    `json:"site_seq"`
	Current     bool      `json:"current"`
}

// SiteView is a site with its relays' health, as `site list` shows it.
type SiteView struct {
	ID        string      `json:"id"`
	AckedSeq  uint64      `json:"acked_seq"`
	Records   uint64      `json:"records"`
	FirstSeen time.Time   `json:"first_seen"`
	Relays    []RelayView `json:"relays"`
}

// RelayView is one relay node's last report.
type RelayView struct {
	Node             string    `json:"node"`
	LastContact      time.Time `json:"last_contact"`
	OutboxDepth      uint64    `json:"outbox_depth"`
	OutboxBytes      uint64    `json:"outbox_bytes"`
	OldestUnackedAge float64   `json:"oldest_unacked_age_seconds"`
}

// routes registers every route through handle, which applies its rule
// from routeRules (authz.go).
func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn http.HandlerFunc) { n.handle(mux, pattern, fn) }
	h("/raft/", n.raft.Handler().ServeHTTP)
	h("GET /metrics", promhttp.HandlerFor(nodemetrics.Gatherer(n.reg), promhttp.HandlerOpts{}).ServeHTTP)
	h("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "leader": n.raft.IsLeader()})
	})
	h("GET /api/v1/cluster", n.handleCluster)
	h("GET /api/v1/cluster/digest", n.raft.DigestHandler().ServeHTTP) // raft log + state fingerprint (chaos checker)
	h("POST /api/v1/cluster/", n.raft.AdminHandler("/api/v1/cluster/").ServeHTTP)
	h("GET /api/v1/devices", n.handleDevices)
	h("GET /api/v1/devices/{id}", n.handleDevice)
	h("GET /api/v1/devices/{id}/history", n.handleHistory)
	h("GET /api/v1/devices/{id}/records", n.handleRecords)
	h("GET /api/v1/sites", n.handleSites)
	h("POST /api/v1/offline/kits", n.handleOfflineKit)              // offline.go
	h("POST /api/v1/offline/import", n.offlineImporter().ServeHTTP) // offline.go
	h("GET /api/v1/offline/devices/{id}", n.handleOfflineDevice)    // offline.go
	// Distribution (packages.go, tasks.go).
	h("POST /api/v1/packages", n.handlePackageAdd)
	h("GET /api/v1/packages", n.handlePackages)
	h("GET /api/v1/packages/{id}", n.handlePackage)
	h("DELETE /api/v1/packages/{id}", n.handlePackageRemove)
	h("GET /api/v1/blobs/{sha256}", n.handlePeerBlob)
	h("POST /api/v1/tasks", n.handleTaskCreate)
	h("GET /api/v1/tasks", n.handleTasks)
	h("GET /api/v1/tasks/{id}", n.handleTask)
	h("POST /api/v1/tasks/{id}/{op}", n.handleTaskOp)
	h("DELETE /api/v1/tasks/{id}", n.handleTaskRemove)
	h("GET /api/v1/events", n.handleEventList)
	h("POST /api/v1/events/{id}/ack", n.handleEventAck)
	h("GET /api/v1/audit", n.handleAudit)
	h("GET /api/v1/backup", backup.Handler(n.raft, "central").ServeHTTP)
	n.accountRoutes(h) // accountapi.go
	h("/", n.view.console.ServeHTTP)
	return mux
}

func (n *Node) adminHash() string {
	var h string
	n.raft.View(func(txn *badger.Txn) (err error) { h, err = getJSONString(txn, keyAdmin); return err })
	return h
}

func (n *Node) handleCluster(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, Status{Role: "central", Node: n.cfg.NodeID, Raft: n.raft.Status()})
}

// Devices lists devices matching site (exact) and q (substring of ID,
// host name, serial or MAC), sorted by ID.
func (n *Node) Devices(site, q string, offset, limit int) (DeviceList, error) {
	return n.devicesIn(nil, site, q, offset, limit)
}

// devicesIn is Devices of the sites in accepts (nil: every site).
func (n *Node) devicesIn(in func(string) bool, site, q string, offset, limit int) (DeviceList, error) {
	out := DeviceList{Devices: []Device{}}
	q = strings.ToLower(q)
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixDevice
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d Device
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
				return err
			}
			if site != "" && d.Site != site || in != nil && !in(d.Site) {
				continue
			}
			if q != "" && !matches(&d, q) {
				continue
			}
			out.Total++
			if out.Total > offset && len(out.Devices) < limit {
				d.Inventory = nil
				out.Devices = append(out.Devices, d)
			}
		}
		return nil
	})
	return out, err
}

func matches(d *Device, q string) bool {
	if strings.Contains(d.ID, q) || strings.Contains(strings.ToLower(d.Hostname), q) || strings.Contains(strings.ToLower(d.Serial), q) {
		return true
	}
	return slices.ContainsFunc(d.MACs, func(m string) bool { return strings.Contains(strings.ToLower(m), q) })
}

func (n *Node) handleDevices(w http.ResponseWriter, r *http.Request) {
	list, err := n.devicesIn(siteIn(principalOf(r)), r.URL.Query().Get("site"), r.URL.Query().Get("q"), queryInt(r, "offset", 0, 1<<30), queryInt(r, "limit", 100, 10000))
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, list)
}

// Device returns one device with its current inventory.
func (n *Node) Device(id string) (Device, error) {
	var d Device
	err := n.raft.View(func(txn *badger.Txn) error {
		found, err := kv.GetJSON(txn, key(prefixDevice, id), &d)
		if err == nil && !found {
			return ErrNotFound
		}
		return err
	})
	return d, err
}

func (n *Node) handleDevice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !record.ValidDeviceID(id) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_device_id", "a device ID is 32 lowercase hex characters")
		return
	}
	if !n.deviceVisible(principalOf(r), id) {
		writeResult(w, nil, fmt.Errorf("device %s: %w", id, ErrNotFound))
		return
	}
	d, err := n.Device(id)
	writeResult(w, d, err)
}

// History lists a device's inventory revisions by collected_at.
func (n *Node) History(id string) ([]Revision, error) {
	revs := []Revision{}
	err := n.raft.View(func(txn *badger.Txn) error {
		var d Device
		found, err := kv.GetJSON(txn, key(prefixDevice, id), &d)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = key(prefixRevision, id)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().Key()
			seq := binary.BigEndian.Uint64(k[len(k)-8:])
			var rec record.Record
			if _, err := kv.GetJSON(txn, recordKey(id, seq), &rec); err != nil {
				return err
			}
			revs = append(revs, Revision{Seq: seq, CollectedAt: rec.CollectedAt, ReceivedAt: rec.ReceivedAt, Channel: string(rec.Channel),
				Site: rec.SiteID, Relay: rec.RelayNode, SiteSeq: rec.SiteSeq, Current: seq == d.InventorySeq})
		}
		return nil
	})
	return revs, err
}

func (n *Node) handleHistory(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !record.ValidDeviceID(id) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_device_id", "a device ID is 32 lowercase hex characters")
		return
	}
	if !n.deviceVisible(principalOf(r), id) {
		writeResult(w, nil, fmt.Errorf("device %s: %w", id, ErrNotFound))
		return
	}
	revs, err := n.History(id)
	writeResult(w, revs, err)
}

// Records lists a device's records by device seq, after `after`.
func (n *Node) Records(id string, after uint64, limit int) ([]record.Record, error) {
	recs := []record.Record{}
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = key(prefixRecord, id)
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(recordKey(id, after+1)); it.Valid() && len(recs) < limit; it.Next() {
			var rec record.Record
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &rec) }); err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	return recs, err
}

func (n *Node) handleRecords(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !record.ValidDeviceID(id) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_device_id", "a device ID is 32 lowercase hex characters")
		return
	}
	if !n.deviceVisible(principalOf(r), id) {
		writeResult(w, nil, fmt.Errorf("device %s: %w", id, ErrNotFound))
		return
	}
	after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
	recs, err := n.Records(id, after, queryInt(r, "limit", 1000, 10000))
	if !principalOf(r).Access.Has(account.PermOplog) { // ISM SYS_LOG_EXCL: no operation logs
		recs = slices.DeleteFunc(recs, func(rec record.Record) bool { return rec.Kind == record.KindOplog })
	}
	writeResult(w, recs, err)
}

// Sites lists every site with its relays' last reports.
func (n *Node) Sites() ([]SiteView, error) {
	now := time.Now()
	sites := []SiteView{}
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixSite
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var s Site
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &s) }); err != nil {
				return err
			}
			v := SiteView{ID: s.ID, AckedSeq: s.Cursor, Records: s.Records, FirstSeen: s.FirstSeen, Relays: []RelayView{}}
			for _, rl := range s.Relays {
				rv := RelayView{Node: rl.Node, LastContact: rl.LastContact, OutboxDepth: rl.Outbox.Depth, OutboxBytes: rl.Outbox.Bytes}
				if !rl.Outbox.OldestUnacked.IsZero() && rl.Outbox.Depth > 0 {
					rv.OldestUnackedAge = now.Sub(rl.Outbox.OldestUnacked).Seconds()
				}
				v.Relays = append(v.Relays, rv)
			}
			slices.SortFunc(v.Relays, func(a, b RelayView) int { return strings.Compare(a.Node, b.Node) })
			sites = append(sites, v)
		}
		return nil
	})
	return sites, err
}

func (n *Node) handleSites(w http.ResponseWriter, r *http.Request) {
	sites, err := n.Sites()
	if in := siteIn(principalOf(r)); in != nil {
		sites = slices.DeleteFunc(sites, func(s SiteView) bool { return !in(s.ID) })
	}
	writeResult(w, sites, err)
}

// Events returns the newest events first.
func (n *Node) Events(limit int) ([]event.Event, error) {
	events := []event.Event{}
	err := n.raft.View(func(txn *badger.Txn) error {
		return event.Newest(txn, prefixEvent, func(e event.Event) (bool, error) {
			events = append(events, e)
			return len(events) < limit, nil
		})
	})
	return events, err
}

func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	events, err := n.Events(queryInt(r, "limit", 200, maxEvents))
	writeResult(w, events, err)
}

func writeResult(w http.ResponseWriter, v any, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		httpx.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
	default:
		httpx.WriteJSON(w, http.StatusOK, v)
	}
}

func queryInt(r *http.Request, name string, def, max int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v < 0 {
		return def
	}
	return min(v, max)
}
