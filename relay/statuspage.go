package relay

import (
	"bytes"
	"cmp"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dustin/go-humanize"

	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/internal/websession"
	"github.com/edgesync/edgesync/sync/uplink"
)

// The relay status page: one server-rendered HTML page on the relay's HTTPS
// address for the branch administrator, readable during a WAN outage (it
// needs nothing from central). Sign in with the site's admin token (a
// session cookie scoped to /status), or send it as a bearer token.

//go:embed web
var statusFS embed.FS

// statusDevices caps the device table (the most recently seen first).
const statusDevices = 500

var statusTmpl = template.Must(template.New("status").Funcs(template.FuncMap{
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return max(time.Since(t), 0).Round(time.Second).String() + " ago"
	},
	"dur":   func(d time.Duration) string { return d.Round(time.Second).String() },
	"join":  strings.Join,
	"lower": strings.ToLower,
	"bytes": func(v any) string {
		switch x := v.(type) {
		case uint64:
			return humanize.IBytes(x)
		case int64:
			return humanize.IBytes(uint64(max(x, 0)))
		}
		return "?"
	},
}).ParseFS(statusFS, "web/status.html"))

// statusView is what the page renders.
type statusView struct {
	Site, Node   string
	Now          time.Time
	CSRF         string
	Error        string
	Raft         raftnode.Status
	Leader       raftnode.LeaderInfo
	LeaderURL    string
	Outbox       Outbox
	OldestAge    time.Duration
	Refusing     bool
	Disk         string
	DiskHealth   string
	Uplink       *uplink.Status
	UplinkState  string
	UplinkHealth string
	Cache        CacheStatus
	CacheErr     string
	Events       []event.Event
	Devices      []deviceState
	DeviceTotal  int
	Truncated    bool
}

type statusPage struct {
	n    *Node
	sess *websession.Manager
}

func newStatusPage(n *Node) *statusPage {
	return &statusPage{n: n, sess: &websession.Manager{CheckToken: n.checkAdminToken, Path: "/status"}}
}

func (n *Node) checkAdminToken(tok string) bool {
	want := n.adminHash()
	return tok != "" && want != "" && subtle.ConstantTimeCompare([]byte(httpx.HashToken(tok)), []byte(want)) == 1
}

func (p *statusPage) register(mux *http.ServeMux) {
	static, _ := fs.Sub(statusFS, "web")
	mux.Handle("GET /status/static/status.css", http.StripPrefix("/status/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /status", p.page)
	mux.HandleFunc("POST /status/login", p.login)
	mux.HandleFunc("POST /status/logout", p.logout)
}

func (p *statusPage) render(w http.ResponseWriter, status int, name string, v *statusView) {
	var buf bytes.Buffer
	if err := statusTmpl.ExecuteTemplate(&buf, name, v); err != nil {
		p.n.log.Error("Status page template failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	websession.SecurityHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// page serves the status to a signed-in browser or a bearer token; anyone
// else gets 401 and the sign-in form.
func (p *statusPage) page(w http.ResponseWriter, r *http.Request) {
	var csrf string
	if s := p.sess.Get(r); s != nil {
		csrf = s.CSRF
	} else if tok := httpx.BearerToken(r); tok == "" || !p.n.checkAdminToken(tok) {
		if tok != "" {
			p.n.audit.Record(AuditEntry{Who: audit.TokenWho(r), Action: "GET /status", From: audit.RemoteHost(r), Result: audit.ResultOf(http.StatusUnauthorized)}, true)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="edgesync"`)
		p.render(w, http.StatusUnauthorized, "login", &statusView{Site: p.n.cfg.Site, Node: p.n.cfg.NodeID})
		return
	}
	v := p.n.statusView()
	v.CSRF = csrf
	p.render(w, http.StatusOK, "status", v)
}

func (p *statusPage) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if !websession.SameOrigin(r) {
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	tok := r.PostFormValue("token")
	who := "status page"
	if strings.TrimSpace(tok) != "" {
		who = "status page, token:" + httpx.HashToken(strings.TrimSpace(tok))[:12]
	}
	if _, ok := p.sess.SignIn(w, tok); !ok {
		p.n.audit.Record(AuditEntry{Who: who, Action: "status page sign in", From: audit.RemoteHost(r), Result: "refused: wrong token"}, true)
		p.render(w, http.StatusUnauthorized, "login", &statusView{Site: p.n.cfg.Site, Node: p.n.cfg.NodeID, Error: "That admin token is not valid."})
		return
	}
	p.n.audit.Record(AuditEntry{Who: who, Action: "status page sign in", From: audit.RemoteHost(r), Result: "ok"}, false)
	http.Redirect(w, r, "/status", http.StatusSeeOther)
}

func (p *statusPage) logout(w http.ResponseWriter, r *http.Request) {
	if s := p.sess.Get(r); s == nil || !websession.CheckCSRF(s, r) {
		http.Error(w, "bad or missing CSRF token", http.StatusForbidden)
		return
	}
	p.sess.SignOut(w, r)
	http.Redirect(w, r, "/status", http.StatusSeeOther)
}

// statusView gathers what the page shows from this node's local state only.
func (n *Node) statusView() *statusView {
	st := n.Status()
	v := &statusView{Site: n.cfg.Site, Node: n.cfg.NodeID, Now: time.Now().UTC(), Raft: st.Raft, Leader: st.Raft.Leader,
		Outbox: st.Outbox, Refusing: st.Refusing, Disk: st.Disk, Uplink: st.Uplink, DeviceTotal: st.Devices}
	if !st.Outbox.OldestUnacked.IsZero() {
		v.OldestAge = max(time.Since(st.Outbox.OldestUnacked), 0)
	}
	if v.Leader.HTTPAddr != "" && v.Leader.ID != n.cfg.NodeID {
		v.LeaderURL = strings.TrimSuffix(v.Leader.HTTPAddr, "/") + "/status"
	}
	v.DiskHealth = map[string]string{"ok": "ok", "warning": "warn", "critical": "bad"}[st.Disk]
	switch {
	case st.Uplink == nil:
		v.UplinkState, v.UplinkHealth = "follower", "ok"
	case st.Uplink.Connected:
		v.UplinkState, v.UplinkHealth = "connected", "ok"
	default:
		v.UplinkState, v.UplinkHealth = "down", "bad"
	}
	if c, err := n.Cache(); err != nil {
		v.CacheErr = err.Error()
	} else {
		v.Cache = c
	}
	v.Events, _ = n.Events(20)
	v.Devices, v.Truncated = n.recentDevices(statusDevices)
	return v
}

// recentDevices returns up to limit devices, most recently seen first.
func (n *Node) recentDevices(limit int) ([]deviceState, bool) {
	var all []deviceState
	n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixDevice
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			var d deviceStored
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &d) }); err != nil {
				return err
			}
			all = append(all, d.deviceState)
		}
		return nil
	})
	slices.SortFunc(all, func(a, b deviceState) int {
		return cmp.Or(b.LastSeen.Compare(a.LastSeen), cmp.Compare(a.Hostname, b.Hostname), cmp.Compare(a.ID, b.ID))
	})
	if len(all) > limit {
		return all[:limit], true
	}
	return all, false
}
