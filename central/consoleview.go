package central

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/central/console"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/internal/nodemetrics"
)

// adminView holds the administrator's side of a central node: the web
// console, the audit log and the device list index the console searches.
type adminView struct {
	n       *Node
	audit   *audit.Log
	console http.Handler
	index   deviceIndex
}

func newAdminView(n *Node) (*adminView, error) {
	v := &adminView{n: n, audit: newAuditLog(n)}
	v.index.n = n
	c, err := console.New(console.Config{Source: (*consoleSource)(n), Audit: n.consoleAudit, Logger: n.log})
	if err != nil {
		return nil, err
	}
	v.console = c
	if err := nodemetrics.Register(n.reg, n.raft, n.cfg.DataDir); err != nil {
		return nil, err
	}
	return v, nil
}

func (v *adminView) run(ctx context.Context) { v.audit.Run(ctx) }

// deviceIndex is an in-memory summary of every device (no inventory) for
// the console's search, filter, sort and paging. It is rebuilt from a state
// scan when the applied index has moved: inline while a scan is cheap, in
// the background (serving the previous build meanwhile) once it is not.
type deviceIndex struct {
	n *Node

	mu       sync.Mutex
	rows     []indexRow // sorted by host name, then ID
	sites    []string
	channels []string
	applied  uint64
	builtAt  time.Time
	took     time.Duration
	building bool
}

type indexRow struct {
	console.DeviceRow
	hay string // lower-cased ID, host name, serial, MACs, IPs
}

// inlineBuild is the scan time under which a stale index is rebuilt before
// answering rather than in the background.
const inlineBuild = 150 * time.Millisecond

// summaryDevice decodes a stored Device without keeping its inventory,
// except the interface addresses.
type summaryDevice struct {
	Device
	Inventory struct {
		Hardware struct {
			Interfaces []struct {
				Addresses []string `json:"addresses"`
			} `json:"interfaces"`
		} `json:"hardware"`
	} `json:"inventory"`
}

func rowOf(d *Device, ips []string) console.DeviceRow {
	return console.DeviceRow{ID: d.ID, Hostname: d.Hostname, Site: d.Site, Channel: d.Channel, Relay: d.Relay, Serial: d.Serial, OS: d.OS,
		MACs: d.MACs, IPs: ips, FirstSeen: d.FirstSeen, LastSeen: d.LastSeen, InventoryAt: d.InventoryAt, Revisions: d.Revisions, Records: d.Records}
}

func ipsOf(addrs [][]string) []string {
	var ips []string
	for _, a := range addrs {
		for _, ip := range a {
			if i := strings.IndexByte(ip, '/'); i > 0 {
				ip = ip[:i] // CIDR notation
			}
			if ip != "127.0.0.1" && ip != "::1" && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	return ips
}

func (x *deviceIndex) build() ([]indexRow, []string, []string, uint64, error) {
	applied := x.n.raft.AppliedIndex()
	var rows []indexRow
	sites, channels := map[string]bool{}, map[string]bool{}
	err := x.n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixDevice
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d summaryDevice
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
				return err
			}
			var addrs [][]string
			for _, ifc := range d.Inventory.Hardware.Interfaces {
				addrs = append(addrs, ifc.Addresses)
			}
			r := indexRow{DeviceRow: rowOf(&d.Device, ipsOf(addrs))}
			r.hay = strings.ToLower(r.ID + "\x00" + r.Hostname + "\x00" + r.Serial + "\x00" + strings.Join(r.MACs, "\x00") + "\x00" + strings.Join(r.IPs, "\x00"))
			rows = append(rows, r)
			sites[r.Site] = true
			channels[r.Channel] = true
		}
		return nil
	})
	if err != nil {
		return nil, nil, nil, 0, err
	}
	slices.SortFunc(rows, func(a, b indexRow) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Hostname), strings.ToLower(b.Hostname)), strings.Compare(a.ID, b.ID))
	})
	keys := func(m map[string]bool) []string {
		var s []string
		for k := range m {
			if k != "" {
				s = append(s, k)
			}
		}
		slices.Sort(s)
		return s
	}
	return rows, keys(sites), keys(channels), applied, nil
}

func (x *deviceIndex) rebuild() error {
	start := time.Now()
	rows, sites, channels, applied, err := x.build()
	x.mu.Lock()
	defer x.mu.Unlock()
	x.building = false
	if err != nil {
		return err
	}
	x.rows, x.sites, x.channels, x.applied, x.builtAt, x.took = rows, sites, channels, applied, time.Now(), time.Since(start)
	return nil
}

// snapshot returns a current enough view of the index.
func (x *deviceIndex) snapshot() ([]indexRow, []string, []string, error) {
	applied := x.n.raft.AppliedIndex()
	x.mu.Lock()
	fresh := x.applied == applied && !x.builtAt.IsZero()
	switch {
	case fresh:
	case x.builtAt.IsZero() || x.took < inlineBuild:
		x.mu.Unlock()
		if err := x.rebuild(); err != nil {
			return nil, nil, nil, err
		}
		x.mu.Lock()
	case !x.building && time.Since(x.builtAt) > max(time.Second, 4*x.took): // at most ~20% of a core on rebuilds
		x.building = true
		go x.rebuild() // bounded by one scan; the result replaces the index
	}
	rows, sites, channels := x.rows, x.sites, x.channels
	x.mu.Unlock()
	return rows, sites, channels, nil
}

// consoleSource implements console.Source.
type consoleSource Node

var _ console.Source = (*consoleSource)(nil)

func (s *consoleSource) Overview(ctx context.Context) (console.Overview, error) {
	n := (*Node)(s)
	ov := console.Overview{Node: n.cfg.NodeID}
	st := n.raft.Status()
	ov.Leader = st.Leader.ID
	for _, m := range st.Members {
		ov.Members = append(ov.Members, console.Member{ID: m.ID, RaftAddr: m.RaftAddr, Suffrage: m.Suffrage, Leader: m.Leader})
	}
	rows, _, _, err := n.view.index.snapshot()
	if err != nil {
		return ov, err
	}
	in := siteIn(s.principal(ctx))
	rows = inScopeRows(rows, in)
	perSite, perChannel := map[string]int{}, map[string]int{}
	for _, r := range rows {
		perSite[r.Site]++
		perChannel[r.Channel]++
	}
	ov.Devices = len(rows)
	for _, ch := range []string{string(record.ChannelOnline), string(record.ChannelUSB)} {
		ov.ByChannel = append(ov.ByChannel, console.Count{Label: ch, N: perChannel[ch]})
	}
	sites, err := n.Sites()
	if err != nil {
		return ov, err
	}
	for _, sv := range sites {
		if in != nil && !in(sv.ID) {
			continue
		}
		cs := console.Site{ID: sv.ID, AckedSeq: sv.AckedSeq, Records: sv.Records, FirstSeen: sv.FirstSeen, Devices: perSite[sv.ID]}
		for _, r := range sv.Relays {
			cs.Relays = append(cs.Relays, console.Relay{Node: r.Node, LastContact: r.LastContact, OutboxDepth: r.OutboxDepth,
				OutboxBytes: r.OutboxBytes, OldestUnackedAge: time.Duration(r.OldestUnackedAge * float64(time.Second))})
		}
		ov.Sites = append(ov.Sites, cs)
	}
	for _, sev := range []string{event.Critical, event.Warning} {
		evs, err := s.Events(ctx, console.EventQuery{Severity: sev, Limit: 10})
		if err != nil {
			return ov, err
		}
		ov.Events = append(ov.Events, evs...)
	}
	slices.SortFunc(ov.Events, func(a, b console.Event) int { return cmp.Compare(b.ID, a.ID) })
	ov.Events = ov.Events[:min(len(ov.Events), 10)]
	return ov, nil
}

func (s *consoleSource) Devices(ctx context.Context, q console.DeviceQuery) (console.DevicePage, error) {
	rows, sites, channels, err := (*Node)(s).view.index.snapshot()
	if err != nil {
		return console.DevicePage{}, err
	}
	if in := siteIn(s.principal(ctx)); in != nil { // a scoped account sees its sites only, exports included
		rows = inScopeRows(rows, in)
		sites = slices.DeleteFunc(slices.Clone(sites), func(site string) bool { return !in(site) })
	}
	pg := console.DevicePage{Sites: sites, Channels: channels}
	needle := strings.ToLower(q.Q)
	var match []indexRow
	filtered := needle != "" || q.Site != "" || q.Channel != ""
	if filtered {
		match = make([]indexRow, 0, 64)
		for i := range rows {
			r := &rows[i]
			if q.Site != "" && r.Site != q.Site || q.Channel != "" && r.Channel != q.Channel || needle != "" && !strings.Contains(r.hay, needle) {
				continue
			}
			match = append(match, *r)
		}
	} else {
		match = rows
	}
	if by := sortKey(q.Sort); by != nil || q.Desc {
		if !filtered {
			match = slices.Clone(rows)
		}
		if by == nil {
			by = func(a, b *indexRow) int { return 0 }
		}
		slices.SortStableFunc(match, func(a, b indexRow) int {
			c := by(&a, &b)
			if q.Desc {
				return -c
			}
			return c
		})
		if q.Desc && sortKey(q.Sort) == nil {
			slices.Reverse(match)
		}
	}
	pg.Total = len(match)
	lo := min(q.Offset, len(match))
	hi := len(match)
	if q.Limit > 0 {
		hi = min(lo+q.Limit, len(match))
	}
	pg.Devices = make([]console.DeviceRow, 0, hi-lo)
	for _, r := range match[lo:hi] {
		pg.Devices = append(pg.Devices, r.DeviceRow)
	}
	return pg, nil
}

func sortKey(name string) func(a, b *indexRow) int {
	switch name {
	case "id":
		return func(a, b *indexRow) int { return strings.Compare(a.ID, b.ID) }
	case "site":
		return func(a, b *indexRow) int { return strings.Compare(a.Site, b.Site) }
	case "channel":
		return func(a, b *indexRow) int { return strings.Compare(a.Channel, b.Channel) }
	case "last_seen":
		return func(a, b *indexRow) int { return a.LastSeen.Compare(b.LastSeen) }
	case "inventory_at":
		return func(a, b *indexRow) int { return a.InventoryAt.Compare(b.InventoryAt) }
	}
	return nil // host name: the index order
}

func (s *consoleSource) Device(ctx context.Context, id string) (console.DeviceDetail, error) {
	n := (*Node)(s)
	if !n.deviceVisible(s.principal(ctx), id) {
		return console.DeviceDetail{}, console.ErrNotFound
	}
	d, err := n.Device(id)
	if errors.Is(err, ErrNotFound) {
		return console.DeviceDetail{}, console.ErrNotFound
	}
	if err != nil {
		return console.DeviceDetail{}, err
	}
	var inv record.Inventory
	var addrs [][]string
	if json.Unmarshal(d.Inventory, &inv) == nil {
		for _, ifc := range inv.Hardware.Interfaces {
			addrs = append(addrs, ifc.Addresses)
		}
	}
	out := console.DeviceDetail{DeviceRow: rowOf(&d, ipsOf(addrs)), Inventory: d.Inventory}
	revs, err := n.History(id)
	if err != nil {
		return out, err
	}
	for _, r := range revs {
		out.History = append(out.History, console.Revision{Seq: r.Seq, CollectedAt: r.CollectedAt, ReceivedAt: r.ReceivedAt,
			Channel: r.Channel, Site: r.Site, Relay: r.Relay, SiteSeq: r.SiteSeq, Current: r.Current})
	}
	return out, nil
}

func (s *consoleSource) Revision(ctx context.Context, id string, seq uint64) (json.RawMessage, error) {
	if !(*Node)(s).deviceVisible(s.principal(ctx), id) {
		return nil, console.ErrNotFound
	}
	var rec record.Record
	err := (*Node)(s).raft.View(func(txn *badger.Txn) error {
		found, err := kv.GetJSON(txn, recordKey(id, seq), &rec)
		if err == nil && (!found || rec.Kind != record.KindInventory) {
			return console.ErrNotFound
		}
		return err
	})
	return rec.Payload, err
}

func (s *consoleSource) Events(ctx context.Context, q console.EventQuery) ([]console.Event, error) {
	evs, err := (*Node)(s).EventList(EventFilter{Severity: q.Severity, Type: q.Type, Unacked: q.Unacked, Limit: q.Limit,
		In: siteIn(s.principal(ctx))})
	out := make([]console.Event, 0, len(evs))
	for _, e := range evs {
		out = append(out, console.Event{Event: e.Event, Acked: e.Acked, AckedBy: e.AckedBy, AckedAt: e.AckedAt})
	}
	return out, err
}

func (s *consoleSource) AckEvent(ctx context.Context, id uint64, who, from string) error {
	n := (*Node)(s)
	if !n.eventVisible(s.principal(ctx), id) {
		return console.ErrNotFound
	}
	err := n.AckEvent(ctx, id, who, from)
	result := "ok"
	if err != nil {
		result = "failed: " + err.Error()
	}
	n.view.audit.Record(AuditEntry{Who: who, Action: "acknowledge event " + itoa(id), From: from, Result: result}, false)
	if errors.Is(err, ErrNoEvent) {
		return console.ErrNotFound
	}
	return err
}

func itoa(v uint64) string { b, _ := json.Marshal(v); return string(b) }
