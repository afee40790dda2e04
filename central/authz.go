package central

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
)

// Who may call which admin route. Every route registered on the admin mux
// goes through Node.handle, which looks its pattern up in routeRules: a
// pattern with no rule answers 403 to everyone (fail closed), and
// TestRoutes_EveryRoleEveryRoute fails for it.

// rule is what a route requires.
type rule struct {
	open   bool               // no credential checked here (the handler or the console authenticates, or it is public)
	perm   account.Permission // "" (and not open): any valid credential
	global bool               // unscoped credentials only (the route is not about one site)
}

var routeRules = map[string]rule{
	"/raft/":                     {open: true}, // raftnode checks the peer certificate
	"GET /metrics":               {open: true},
	"GET /healthz":               {open: true},
	"/":                          {open: true}, // the console: its own session sign-in and checks (consoleview.go)
	"POST /api/v1/signin":        {open: true}, // rate-limited (accountapi.go)
	"GET /api/v1/blobs/{sha256}": {open: true}, // a central certificate or a credential with read (packages.go)

	"GET /api/v1/cluster":              {perm: account.PermRead},
	"GET /api/v1/cluster/digest":       {perm: account.PermCluster, global: true},
	"POST /api/v1/cluster/":            {perm: account.PermCluster, global: true},
	"GET /api/v1/backup":               {perm: account.PermCluster, global: true},
	"GET /api/v1/audit":                {perm: account.PermAudit, global: true},
	"GET /api/v1/devices":              {perm: account.PermRead},
	"GET /api/v1/devices/{id}":         {perm: account.PermRead},
	"GET /api/v1/devices/{id}/history": {perm: account.PermRead},
	"GET /api/v1/devices/{id}/records": {perm: account.PermRead}, // operation logs only with read-oplog
	"GET /api/v1/sites":                {perm: account.PermRead},
	"POST /api/v1/offline/kits":        {perm: account.PermSettings, global: true},
	"POST /api/v1/offline/import":      {perm: account.PermOffline, global: true}, // records imported at central have no site yet
	"GET /api/v1/offline/devices/{id}": {perm: account.PermRead},
	"POST /api/v1/packages":            {perm: account.PermDistribute, global: true}, // the catalog is shared by every site
	"GET /api/v1/packages":             {perm: account.PermRead},
	"GET /api/v1/packages/{id}":        {perm: account.PermRead},
	"DELETE /api/v1/packages/{id}":     {perm: account.PermDistribute, global: true},
	"POST /api/v1/tasks":               {perm: account.PermDistribute},
	"GET /api/v1/tasks":                {perm: account.PermRead},
	"GET /api/v1/tasks/{id}":           {perm: account.PermRead},
	"POST /api/v1/tasks/{id}/{op}":     {perm: account.PermTasks},
	"DELETE /api/v1/tasks/{id}":        {perm: account.PermTasks},
	"GET /api/v1/events":               {perm: account.PermRead},
	"POST /api/v1/events/{id}/ack":     {perm: account.PermEvents},

	"GET /api/v1/whoami":                   {},
	"POST /api/v1/account/password":        {}, // one's own, with the current password
	"GET /api/v1/accounts":                 {perm: account.PermAccounts, global: true},
	"POST /api/v1/accounts":                {perm: account.PermAccounts, global: true},
	"GET /api/v1/accounts/{name}":          {perm: account.PermAccounts, global: true},
	"PATCH /api/v1/accounts/{name}":        {perm: account.PermAccounts, global: true},
	"DELETE /api/v1/accounts/{name}":       {perm: account.PermAccounts, global: true},
	"PUT /api/v1/accounts/{name}/password": {perm: account.PermAccounts, global: true},
	"GET /api/v1/accounts/export":          {perm: account.PermAccounts, global: true},
	"POST /api/v1/accounts/import":         {perm: account.PermAccounts, global: true},
	"POST /api/v1/account/totp":            {}, // one's own two-step enrolment
	"POST /api/v1/account/totp/confirm":    {},
	"DELETE /api/v1/accounts/{name}/totp":  {perm: account.PermAccounts, global: true},
	"GET /api/v1/tokens":                   {}, // one's own; ?all=1 with manage-accounts
	"POST /api/v1/tokens":                  {},
	"DELETE /api/v1/tokens/{id}":           {}, // one's own, or any with manage-accounts
}

// principal is the caller of an authorized request.
type principal struct {
	Who     string // the audit name: the account, or the admin token's hash prefix (token:0123456789ab)
	Account string // "" for the admin token
	TokenID string
	Session bool
	Access  account.Access
}

type principalKey struct{}

// principalOf is the request's caller. Outside authorize it is a caller
// that may see nothing.
func principalOf(r *http.Request) *principal { return principalFrom(r.Context()) }

func principalFrom(ctx context.Context) *principal {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p
	}
	return &principal{Who: "anonymous", Access: account.Access{Sites: []string{}}}
}

// authState is a node's sign-in machinery: the rate limiters (per node,
// in memory) and the bound on concurrent password hashing.
type authState struct {
	byAccount, byAddr *account.Limiter
	slots             chan struct{}
	patterns          []string // registered on the admin mux, in order
}

func newAuthState() *authState {
	return &authState{byAccount: account.NewLimiter(account.DefaultAccountLimits()),
		byAddr: account.NewLimiter(account.DefaultAddressLimits()), slots: make(chan struct{}, 2)}
}

func (a *authState) hashSlot(ctx context.Context) (func(), error) {
	select {
	case a.slots <- struct{}{}:
		return func() { <-a.slots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait to hash a password: %w", ctx.Err())
	}
}

// Routes lists the patterns registered on the admin mux.
func (n *Node) Routes() []string { return slices.Clone(n.auth.patterns) }

// handle registers h under pattern with the pattern's rule.
func (n *Node) handle(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	n.auth.patterns = append(n.auth.patterns, pattern)
	rl, ok := routeRules[pattern]
	switch {
	case !ok:
		n.log.Error("Route has no permission rule: refusing it", "pattern", pattern)
		h = func(w http.ResponseWriter, r *http.Request) {
			httpx.WriteError(w, http.StatusForbidden, "no_rule", "this route has no permission rule")
		}
	case rl.open:
	default:
		h = n.audited(n.authorize(rl, h)).ServeHTTP
	}
	mux.Handle(pattern, h)
}

func (n *Node) authorize(rl rule, next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := n.principalByToken(httpx.BearerToken(r))
		if p == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgesync"`)
			httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required")
			return
		}
		audit.SetWho(r, p.Who)
		if rl.perm != "" && !p.Access.Has(rl.perm) {
			httpx.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s (%s) may not %s", p.Who, p.Access.Role, rl.perm))
			return
		}
		if rl.global && p.Access.Scoped() {
			httpx.WriteError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s is limited to sites %s; this concerns every site", p.Who, strings.Join(p.Access.Sites, ",")))
			return
		}
		next(w, r.WithContext(context.WithValue(r.Context(), principalKey{}, p)))
	})
}

// principalByToken resolves a bearer token: the bootstrap admin token
// (break-glass, system-admin), or an account's API or sign-in token.
func (n *Node) principalByToken(tok string) *principal {
	if tok == "" {
		return nil
	}
	return n.principalByHash(httpx.HashToken(tok))
}

func (n *Node) principalByHash(hash string) *principal {
	if want := n.adminHash(); want != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(want)) == 1 {
		// Audited by its hash prefix, as before accounts existed.
		return &principal{Who: "token:" + hash[:12], Access: account.Full()}
	}
	var p *principal
	n.raft.View(func(txn *badger.Txn) error {
		var t storedToken
		found, err := kv.GetJSON(txn, key(prefixToken, hash), &t)
		if err != nil || !found || !t.ExpiresAt.IsZero() && !time.Now().Before(t.ExpiresAt) {
			return err
		}
		a, err := getAccount(txn, t.Account)
		if err != nil || a.Disabled {
			return nil
		}
		who := a.Name
		if !t.Session {
			who += " (token " + t.Name + ")"
		}
		p = &principal{Who: who, Account: a.Name, TokenID: t.ID, Session: t.Session, Access: tokenAccess(&a.Account, &t.Token)}
		return nil
	})
	return p
}

// principalByAccount is an enabled account's caller (console sessions
// signed in with a password: checked again on every request, so disabling
// an account ends its sessions).
func (n *Node) principalByAccount(name string) *principal {
	var p *principal
	n.raft.View(func(txn *badger.Txn) error {
		a, err := getAccount(txn, name)
		if err == nil && !a.Disabled {
			p = &principal{Who: a.Name, Account: a.Name, Session: true, Access: a.Access()}
		}
		return nil
	})
	return p
}

// ---- scope ----

// siteIn is the request's scope test: nil when the caller sees every site.
func siteIn(p *principal) func(string) bool {
	if !p.Access.Scoped() {
		return nil
	}
	return p.Access.InScope
}

// deviceSite is the site of a device ("" when central does not hold it).
func deviceSite(txn *badger.Txn, id string) (string, error) {
	var d struct {
		Site string `json:"site"`
	}
	_, err := kv.GetJSON(txn, key(prefixDevice, id), &d)
	return d.Site, err
}

// deviceVisible reports whether p may see device id; a device out of scope
// is answered as not found, so its existence does not leak.
func (n *Node) deviceVisible(p *principal, id string) bool {
	if !p.Access.Scoped() {
		return true
	}
	var site string
	n.raft.View(func(txn *badger.Txn) (err error) { site, err = deviceSite(txn, id); return err })
	return p.Access.InScope(site)
}

// relaySites maps each relay node to its site (events name their relay).
func relaySites(txn *badger.Txn) (map[string]string, error) {
	m := map[string]string{}
	err := eachJSON(txn, prefixSite, func(b []byte) error {
		var s Site
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		for r := range s.Relays {
			m[r] = s.ID
		}
		return nil
	})
	return m, err
}

// taskVisible reports whether a task concerns only sites in scope: a site
// task for one of them, or a device-list task whose every device is in one.
func taskVisible(txn *badger.Txn, t *Task, in func(string) bool) (bool, error) {
	if in == nil {
		return true, nil
	}
	if t.All {
		return false, nil
	}
	if t.Site != "" {
		return in(t.Site), nil
	}
	for _, d := range t.Devices {
		s, err := deviceSite(txn, d)
		if err != nil || !in(s) {
			return false, err
		}
	}
	return len(t.Devices) > 0, nil
}

// checkTask answers 404 and returns false for a task out of p's scope.
func (n *Node) checkTask(w http.ResponseWriter, p *principal, id string) bool {
	in := siteIn(p)
	if in == nil {
		return true
	}
	ok := false
	n.raft.View(func(txn *badger.Txn) error {
		t, err := getTask(txn, id)
		if err != nil {
			return err
		}
		ok, err = taskVisible(txn, t, in)
		return err
	})
	if !ok {
		httpx.WriteError(w, http.StatusNotFound, "not_found", "task "+id+": "+ErrNotFound.Error())
	}
	return ok
}

// errOutOfScope refuses an action on sites the caller does not hold.
var errOutOfScope = errors.New("central: out of the account's sites")

// eventVisible reports whether p may see event id (an event of a relay of
// one of its sites).
func (n *Node) eventVisible(p *principal, id uint64) bool {
	if !p.Access.Scoped() {
		return true
	}
	ok := false
	n.raft.View(func(txn *badger.Txn) error {
		var e struct {
			Source string `json:"source"`
		}
		found, err := kv.GetJSON(txn, seqKey(prefixEvent, id), &e)
		if err != nil || !found {
			return err
		}
		sites, err := relaySites(txn)
		ok = err == nil && p.Access.InScope(sites[e.Source])
		return err
	})
	return ok
}

// taskInScope refuses a task request that reaches beyond p's sites.
func (n *Node) taskInScope(p *principal, req *TaskRequest) error {
	in := siteIn(p)
	if in == nil {
		return nil
	}
	if req.All {
		return fmt.Errorf("%w: a task for all devices reaches every site", errOutOfScope)
	}
	if req.Site != "" && !in(req.Site) {
		return fmt.Errorf("%w: site %s", errOutOfScope, req.Site)
	}
	return n.raft.View(func(txn *badger.Txn) error {
		for _, d := range req.Devices {
			if s, err := deviceSite(txn, d); err != nil {
				return err
			} else if !in(s) {
				return fmt.Errorf("%w: device %s", errOutOfScope, d)
			}
		}
		return nil
	})
}
