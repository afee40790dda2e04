package relay

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/nodemetrics"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/sync/uplink"
	"github.com/edgesync/edgesync/sync/wire"
)

// Status is what GET /api/v1/cluster answers on a relay node.
type Status struct {
	Role     string          `json:"role"`
	Site     string          `json:"site"`
	Node     string          `json:"node"`
	Raft     raftnode.Status `json:"raft"`
	Outbox   Outbox          `json:"outbox"`
	Uplink   *uplink.Status  `json:"uplink,omitempty"` // the leader's view; followers do not run the uplink
	Devices  int             `json:"devices"`
	Refusing bool            `json:"refusing"`
	Disk     string          `json:"disk"`
	// DiskAlarm names a member whose data disk is critical: the whole site
	// refuses reports until it has space again (diskalarm.go).
	DiskAlarm string `json:"disk_alarm,omitempty"`
}

// Outbox is the site outbox as the admin API shows it.
type Outbox struct {
	Depth         uint64    `json:"depth"`
	Bytes         uint64    `json:"bytes"`
	AckedSeq      uint64    `json:"acked_seq"`
	NextSeq       uint64    `json:"next_seq"`
	OldestUnacked time.Time `json:"oldest_unacked,omitzero"`
}

func outboxView(s wire.OutboxStats) Outbox {
	return Outbox{Depth: s.Depth, Bytes: s.Bytes, AckedSeq: s.AckedSeq, NextSeq: s.NextSeq, OldestUnacked: s.OldestUnacked}
}

func (n *Node) routes() http.Handler {
	mux := http.NewServeMux()
	agent := api.NewHandler((*backend)(n), api.HandlerConfig{Logger: n.log})
	mux.Handle(api.PathBlobs, n.dist.blobHandler(true)) // blobs.go
	mux.Handle("/v1/", agent)
	mux.Handle("/raft/", n.raft.Handler())
	mux.Handle("GET /metrics", promhttp.HandlerFor(nodemetrics.Gatherer(n.reg), promhttp.HandlerOpts{})) // + Go runtime and process, once per process
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"ok": true, "leader": n.raft.IsLeader()})
	})
	admin := func(h http.HandlerFunc) http.Handler { return n.audited(httpx.RequireToken(n.adminHash, h)) } // audit.go
	mux.Handle("GET /api/v1/cluster", admin(n.handleStatus))
	mux.Handle("GET /api/v1/cluster/digest", admin(n.raft.DigestHandler().ServeHTTP)) // raft log + state fingerprint (chaos checker)
	mux.Handle("POST /api/v1/cluster/", n.audited(httpx.RequireToken(n.adminHash, n.raft.AdminHandler("/api/v1/cluster/"))))
	mux.Handle("GET /api/v1/devices", admin(n.handleDevices))
	mux.Handle("GET /api/v1/events", admin(n.handleEvents))
	mux.Handle("GET /api/v1/audit", admin(n.handleAudit))                           // audit.go
	n.status.register(mux)                                                          // statuspage.go: /status
	mux.Handle("POST /api/v1/offline/import", admin(n.offlineImporter().ServeHTTP)) // offline.go
	mux.Handle("GET /api/v1/cache", admin(n.handleCache))
	mux.Handle("POST /api/v1/cache/verify", admin(n.handleCacheVerify))
	mux.Handle("POST /api/v1/cache/evict", admin(n.handleCacheEvict))
	mux.Handle("GET /api/v1/tasks/{id}", admin(n.handleTask)) // taskstatus.go: per-device status at the site
	// Profiles for support cases (memory on small appliances), admin only.
	mux.Handle("GET /debug/pprof/", admin(pprof.Index))
	mux.Handle("GET /debug/pprof/profile", admin(pprof.Profile))
	return mux
}

func (n *Node) adminHash() string {
	var h string
	n.raft.View(func(txn *badger.Txn) (err error) { h, err = getString(txn, keyAdmin); return err })
	return h
}

// Status gathers the node's view of the site.
func (n *Node) Status() Status {
	st := Status{Role: "relay", Site: n.cfg.Site, Node: n.cfg.NodeID, Raft: n.raft.Status(), Refusing: n.refusing.Load()}
	ob, _ := n.outboxStats()
	st.Outbox = outboxView(ob)
	if n.raft.IsLeader() {
		us := n.up.Status()
		st.Uplink = &us
	}
	st.Disk = [...]string{"ok", "warning", "critical"}[n.diskState.Load()]
	st.DiskAlarm = n.siteDiskCritical()
	n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefixDevice
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			st.Devices++
		}
		return nil
	})
	return st
}

func (n *Node) handleStatus(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, n.Status())
}

func (n *Node) handleDevices(w http.ResponseWriter, r *http.Request) {
	limit := queryInt(r, "limit", 1000, 100000)
	devices := []deviceState{}
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixDevice
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid() && len(devices) < limit; it.Next() {
			var d deviceStored
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
				return err
			}
			devices = append(devices, d.deviceState)
		}
		return nil
	})
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, devices)
}

func (n *Node) handleEvents(w http.ResponseWriter, r *http.Request) {
	limit := queryInt(r, "limit", 200, maxEvents)
	events, err := n.Events(limit)
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, events)
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

func queryInt(r *http.Request, name string, def, max int) int {
	v, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || v <= 0 {
		return def
	}
	return min(v, max)
}
