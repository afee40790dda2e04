package console

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/csvx"
	"github.com/edgesync/edgesync/internal/websession"
)

//go:embed web
var webFS embed.FS

// PageSize is the default devices per page.
const PageSize = 50

// Config wires the console.
type Config struct {
	Source Source
	// Audit records an action taken in the console (may be nil).
	Audit  func(r *http.Request, who, action, result string)
	Logger *slog.Logger
}

// Console serves the pages.
type Console struct {
	cfg   Config
	sess  *websession.Manager
	pages map[string]*template.Template
	mux   *http.ServeMux
}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t)
		if d < 0 {
			d = 0
		}
		return d.Round(time.Second).String() + " ago"
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"dur":   func(d time.Duration) string { return d.Round(time.Second).String() },
	"join":  strings.Join,
	"list":  func(s ...string) []string { return s },
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"healthy": func(r Relay) string {
		switch {
		case time.Since(r.LastContact) > 5*time.Minute || r.OldestUnackedAge > 30*time.Minute:
			return "bad"
		case time.Since(r.LastContact) > time.Minute || r.OldestUnackedAge > 5*time.Minute:
			return "warn"
		}
		return "ok"
	},
}

// New builds the console.
func New(cfg Config) (*Console, error) {
	if cfg.Source == nil {
		return nil, errors.New("console: nil Source")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Console{cfg: cfg, sess: &websession.Manager{Path: "/"}, pages: map[string]*template.Template{}}
	base, err := template.New("layout.html").Funcs(funcs).ParseFS(webFS, "web/layout.html")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	for _, p := range []string{"login", "overview", "devices", "device", "diff", "events", "totp"} {
		t, err := template.Must(base.Clone()).ParseFS(webFS, "web/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("console: %w", err)
		}
		c.pages[p] = t
	}
	static, _ := fs.Sub(webFS, "web/static")
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.logout)
	read, ack := string(account.PermRead), string(account.PermEvents)
	mux.HandleFunc("GET /{$}", c.auth(read, c.overview))
	mux.HandleFunc("GET /devices", c.auth(read, c.devices))
	mux.HandleFunc("GET /devices.csv", c.auth(read, c.exportCSV))
	mux.HandleFunc("GET /devices/{id}", c.auth(read, c.device))
	mux.HandleFunc("GET /devices/{id}/diff", c.auth(read, c.diff))
	mux.HandleFunc("GET /events", c.auth(read, c.events))
	mux.HandleFunc("POST /events/{id}/ack", c.auth(ack, c.ack))
	mux.HandleFunc("GET /account/totp", c.auth(read, c.totpPage))   // totp.go
	mux.HandleFunc("POST /account/totp", c.auth(read, c.totpBegin)) // totp.go
	mux.HandleFunc("POST /account/totp/confirm", c.auth(read, c.totpConfirm))
	c.mux = mux
	return c, nil
}

// ServeHTTP implements http.Handler.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	websession.SecurityHeaders(w)
	c.mux.ServeHTTP(w, r)
}

type ctxKey struct{}

// auth admits requests with a live session whose credential may do perm;
// others are sent to sign in (GET) or refused (401, 403). POSTs must carry
// the session's CSRF token.
func (c *Console) auth(perm string, h func(http.ResponseWriter, *http.Request, *websession.Session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.sess.Get(r)
		var allowed, valid bool
		if s != nil {
			r = r.WithContext(WithCred(r.Context(), s.Cred))
			if allowed, valid = c.cfg.Source.Allowed(r.Context(), perm); !valid {
				c.sess.SignOut(w, r) // the account was disabled or the token revoked
				s = nil
			}
		}
		if s == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost && !websession.CheckCSRF(s, r) {
			c.audit(r, s.Who, r.Method+" "+r.URL.Path, "refused: bad CSRF token")
			http.Error(w, "bad or missing CSRF token", http.StatusForbidden)
			return
		}
		if !allowed {
			c.audit(r, s.Who, r.Method+" "+r.URL.Path, "refused: no permission "+perm)
			http.Error(w, "your role may not do this ("+perm+")", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

func (c *Console) audit(r *http.Request, who, action, result string) {
	if c.cfg.Audit != nil {
		c.cfg.Audit(r, who, action, result)
	}
}

type page struct {
	Title string
	Nav   string
	CSRF  string
	Data  any
	Error string
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout.html", p); err != nil {
		c.cfg.Logger.Error("Console template failed", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (c *Console) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	c.cfg.Logger.Warn("Console request failed", "err", err)
	http.Error(w, "internal error: "+err.Error(), http.StatusInternalServerError)
}

func safeNext(next string) string {
	// Browsers drop tabs and newlines from a Location and read \ as /, so
	// "/\t/evil.example" would leave the console: refuse control characters
	// and backslashes anywhere.
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\") ||
		strings.ContainsFunc(next, unicode.IsControl) {
		return "/"
	}
	return next
}

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusOK, "login", page{Title: "Sign in", Data: safeNext(r.URL.Query().Get("next"))})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	next := safeNext(r.PostFormValue("next"))
	if !websession.SameOrigin(r) {
		http.Error(w, "cross-origin sign-in refused", http.StatusForbidden)
		return
	}
	from := remoteHost(r)
	if name := strings.TrimSpace(r.PostFormValue("account")); name != "" {
		who, cred, err := c.cfg.Source.SignIn(r.Context(), name, r.PostFormValue("password"), r.PostFormValue("code"), from)
		if err != nil { // audited by the source
			msg := err.Error()
			if errors.Is(err, ErrCodeRequired) {
				msg = "Two-step sign-in is on for this account: enter the code from your authenticator app (or a recovery code)."
			}
			c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: next, Error: msg})
			return
		}
		c.sess.Start(w, who, cred)
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	tok := strings.TrimSpace(r.PostFormValue("token"))
	who, cred, ok := "", "", false
	if tok != "" {
		who, cred, ok = c.cfg.Source.TokenSignIn(r.Context(), tok, from)
	}
	if !ok {
		c.audit(r, "console", "sign in", "refused: wrong token")
		c.render(w, http.StatusUnauthorized, "login", page{Title: "Sign in", Data: next, Error: "That admin token is not valid."})
		return
	}
	c.sess.Start(w, who, cred)
	c.audit(r, who, "sign in", "ok")
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if s := c.sess.Get(r); s == nil || !websession.CheckCSRF(s, r) {
		http.Error(w, "bad or missing CSRF token", http.StatusForbidden)
		return
	}
	c.sess.SignOut(w, r)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	ov, err := c.cfg.Source.Overview(r.Context())
	if err != nil {
		c.fail(w, err)
		return
	}
	c.render(w, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", CSRF: s.CSRF, Data: ov})
}

func deviceQuery(r *http.Request) DeviceQuery {
	q := r.URL.Query()
	dq := DeviceQuery{Q: strings.TrimSpace(q.Get("q")), Site: q.Get("site"), Channel: q.Get("channel"), Sort: q.Get("sort"), Desc: q.Get("desc") == "1", Limit: PageSize}
	dq.Offset, _ = strconv.Atoi(q.Get("offset"))
	dq.Offset = max(dq.Offset, 0)
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 {
		dq.Limit = min(n, 1000)
	}
	if len(dq.Q) > 200 {
		dq.Q = dq.Q[:200]
	}
	return dq
}

type devicesView struct {
	Query      DeviceQuery
	Page       DevicePage
	From, To   int
	Prev, Next string // links; empty when none
	Export     string // UTF-8 CSV
	ExportISM  string // the ISM dialect: UTF-16LE with BOM, tab, quoted, CRLF
	SortLinks  map[string]string
	Took       time.Duration
}

func (v *devicesView) link(mod func(url.Values)) string {
	q := url.Values{}
	for k, val := range map[string]string{"q": v.Query.Q, "site": v.Query.Site, "channel": v.Query.Channel, "sort": v.Query.Sort} {
		if val != "" {
			q.Set(k, val)
		}
	}
	if v.Query.Desc {
		q.Set("desc", "1")
	}
	if v.Query.Limit != PageSize {
		q.Set("limit", strconv.Itoa(v.Query.Limit))
	}
	mod(q)
	return "?" + q.Encode()
}

func (c *Console) devices(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	start := time.Now()
	dq := deviceQuery(r)
	pg, err := c.cfg.Source.Devices(r.Context(), dq)
	if err != nil {
		c.fail(w, err)
		return
	}
	v := &devicesView{Query: dq, Page: pg, From: min(dq.Offset+1, pg.Total), To: dq.Offset + len(pg.Devices), SortLinks: map[string]string{}}
	if dq.Offset > 0 {
		v.Prev = v.link(func(q url.Values) { q.Set("offset", strconv.Itoa(max(dq.Offset-dq.Limit, 0))) })
	}
	if dq.Offset+len(pg.Devices) < pg.Total {
		v.Next = v.link(func(q url.Values) { q.Set("offset", strconv.Itoa(dq.Offset+dq.Limit)) })
	}
	for _, col := range []string{"hostname", "id", "site", "channel", "last_seen", "inventory_at"} {
		v.SortLinks[col] = v.link(func(q url.Values) {
			q.Set("sort", col)
			q.Del("desc")
			if dq.Sort == col && !dq.Desc {
				q.Set("desc", "1")
			}
		})
	}
	v.Export = "/devices.csv" + v.link(func(url.Values) {})
	v.ExportISM = "/devices.csv" + v.link(func(q url.Values) { q.Set("encoding", csvx.UTF16LE) })
	v.Took = time.Since(start)
	c.render(w, http.StatusOK, "devices", page{Title: "Devices", Nav: "devices", CSRF: s.CSRF, Data: v})
}

// csvCell defuses spreadsheet formulas: a cell starting with = + - @ (or a
// tab/CR) is prefixed with ' so opening the export cannot run anything.
func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func (c *Console) exportCSV(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	dq := deviceQuery(r)
	dq.Offset, dq.Limit = 0, 0
	pg, err := c.cfg.Source.Devices(r.Context(), dq)
	if err != nil {
		c.fail(w, err)
		return
	}
	enc := csvx.UTF8
	if e := r.URL.Query().Get("encoding"); e != "" {
		enc = strings.ToLower(e)
	}
	cw, err := csvx.NewWriter(w, enc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	name, charset := "devices-"+time.Now().UTC().Format("20060102-150405"), "utf-8"
	if enc != csvx.UTF8 && enc != "utf8" {
		name, charset = name+"-ism", "utf-16le"
	}
	c.audit(r, s.Who, "export devices CSV ("+charset+")", fmt.Sprintf("ok: %d devices", pg.Total))
	w.Header().Set("Content-Type", "text/csv; charset="+charset)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
	cw.Write([]string{"device_id", "hostname", "site", "channel", "relay", "serial", "os", "macs", "ips", "first_seen", "last_seen", "inventory_at", "revisions"})
	tf := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, d := range pg.Devices {
		cw.Write([]string{d.ID, csvCell(d.Hostname), csvCell(d.Site), d.Channel, csvCell(d.Relay), csvCell(d.Serial), csvCell(d.OS),
			strings.Join(d.MACs, " "), strings.Join(d.IPs, " "), tf(d.FirstSeen), tf(d.LastSeen), tf(d.InventoryAt), strconv.FormatUint(d.Revisions, 10)})
	}
	if err := cw.Flush(); err != nil {
		c.cfg.Logger.Debug("CSV export cut short", "err", err)
	}
}

type deviceView struct {
	DeviceDetail
	Pretty string
}

func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, ch := range id {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f') {
			return false
		}
	}
	return true
}

func pretty(b json.RawMessage) string {
	var buf bytes.Buffer
	if len(b) == 0 || json.Indent(&buf, b, "", "  ") != nil {
		return string(b)
	}
	return buf.String()
}

func (c *Console) device(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	id := r.PathValue("id")
	if !validID(id) {
		http.Error(w, "a device ID is 32 lowercase hex characters", http.StatusBadRequest)
		return
	}
	d, err := c.cfg.Source.Device(r.Context(), id)
	if err != nil {
		c.fail(w, err)
		return
	}
	slices.Reverse(d.History) // newest first
	c.render(w, http.StatusOK, "device", page{Title: d.Hostname, Nav: "devices", CSRF: s.CSRF, Data: deviceView{DeviceDetail: d, Pretty: pretty(d.Inventory)}})
}

type diffView struct {
	ID, Hostname string
	A, B         uint64
	Lines        []DiffLine
	Changed      int
}

func (c *Console) diff(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	id := r.PathValue("id")
	a, errA := strconv.ParseUint(r.URL.Query().Get("a"), 10, 64)
	b, errB := strconv.ParseUint(r.URL.Query().Get("b"), 10, 64)
	if !validID(id) || errA != nil || errB != nil {
		http.Error(w, "want a device ID and two revisions a and b", http.StatusBadRequest)
		return
	}
	if a > b {
		a, b = b, a
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	d, err := c.cfg.Source.Device(ctx, id)
	if err != nil {
		c.fail(w, err)
		return
	}
	pa, err := c.cfg.Source.Revision(ctx, id, a)
	if err != nil {
		c.fail(w, err)
		return
	}
	pb, err := c.cfg.Source.Revision(ctx, id, b)
	if err != nil {
		c.fail(w, err)
		return
	}
	lines := Diff(pa, pb)
	v := diffView{ID: id, Hostname: d.Hostname, A: a, B: b, Lines: lines}
	for _, l := range lines {
		if l.Op != "" {
			v.Changed++
		}
	}
	c.render(w, http.StatusOK, "diff", page{Title: "Changes of " + d.Hostname, Nav: "devices", CSRF: s.CSRF, Data: v})
}

type eventsView struct {
	Query  EventQuery
	Events []Event
}

func (c *Console) events(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	q := r.URL.Query()
	eq := EventQuery{Severity: q.Get("severity"), Type: q.Get("type"), Unacked: q.Get("unacked") == "1", Limit: 500}
	evs, err := c.cfg.Source.Events(r.Context(), eq)
	if err != nil {
		c.fail(w, err)
		return
	}
	c.render(w, http.StatusOK, "events", page{Title: "Events", Nav: "events", CSRF: s.CSRF, Data: eventsView{Query: eq, Events: evs}})
}

func (c *Console) ack(w http.ResponseWriter, r *http.Request, s *websession.Session) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad event ID", http.StatusBadRequest)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	if err := c.cfg.Source.AckEvent(ctx, id, s.Who, r.RemoteAddr); err != nil {
		c.fail(w, err)
		return
	}
	back := "/events"
	if ref, err := url.Parse(r.Referer()); err == nil && ref.Host == r.Host && ref.Path == "/events" {
		back = ref.RequestURI()
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
