package central

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/internal/account"
)

// The callers TestRoutes_EveryRoleEveryRoute tries on every route.
const (
	roleNone     = "no credential"
	roleBreak    = "bootstrap admin token"
	roleSys      = "system-admin"
	roleNoOplog  = "admin-no-oplog"
	roleOperator = "site-operator (all permissions, site s1)"
	roleOpNone   = "site-operator (no permissions, site s1)"
	roleViewer   = "viewer"
)

var (
	everyone  = []string{roleNone, roleBreak, roleSys, roleNoOplog, roleOperator, roleOpNone, roleViewer}
	signedIn  = everyone[1:]
	admins    = []string{roleBreak, roleSys, roleNoOplog}
	operators = []string{roleBreak, roleSys, roleNoOplog, roleOperator}
)

// routeAccess is who may call each route, written out by hand: a route
// registered on the mux without an entry here fails the test.
var routeAccess = map[string][]string{
	"/raft/":                     everyone, // raftnode checks peer certificates itself
	"GET /metrics":               everyone,
	"GET /healthz":               everyone,
	"/":                          everyone, // the console redirects to its sign-in page
	"POST /api/v1/signin":        everyone,
	"GET /api/v1/blobs/{sha256}": signedIn,

	"GET /api/v1/cluster":        signedIn,
	"GET /api/v1/cluster/digest": admins,
	"POST /api/v1/cluster/":      admins,
	"GET /api/v1/backup":         admins,
	"GET /api/v1/audit":          admins,

	"GET /api/v1/devices":              signedIn,
	"GET /api/v1/devices/{id}":         signedIn,
	"GET /api/v1/devices/{id}/history": signedIn,
	"GET /api/v1/devices/{id}/records": signedIn,
	"GET /api/v1/sites":                signedIn,
	"POST /api/v1/offline/kits":        admins,
	"POST /api/v1/offline/import":      admins,
	"GET /api/v1/offline/devices/{id}": signedIn,

	"POST /api/v1/packages":        admins,
	"GET /api/v1/packages":         signedIn,
	"GET /api/v1/packages/{id}":    signedIn,
	"DELETE /api/v1/packages/{id}": admins,
	"POST /api/v1/tasks":           operators,
	"GET /api/v1/tasks":            signedIn,
	"GET /api/v1/tasks/{id}":       signedIn,
	"POST /api/v1/tasks/{id}/{op}": operators,
	"DELETE /api/v1/tasks/{id}":    operators,
	"GET /api/v1/events":           signedIn,
	"POST /api/v1/events/{id}/ack": operators,

	"GET /api/v1/whoami":                   signedIn,
	"POST /api/v1/account/password":        signedIn,
	"GET /api/v1/accounts":                 admins,
	"POST /api/v1/accounts":                admins,
	"GET /api/v1/accounts/{name}":          admins,
	"PATCH /api/v1/accounts/{name}":        admins,
	"DELETE /api/v1/accounts/{name}":       admins,
	"PUT /api/v1/accounts/{name}/password": admins,
	"GET /api/v1/accounts/export":          admins,
	"POST /api/v1/accounts/import":         admins,
	"POST /api/v1/account/totp":            signedIn,
	"POST /api/v1/account/totp/confirm":    signedIn,
	"DELETE /api/v1/accounts/{name}/totp":  admins,
	"GET /api/v1/tokens":                   signedIn,
	"POST /api/v1/tokens":                  signedIn,
	"DELETE /api/v1/tokens/{id}":           signedIn,
}

// requestFor makes a harmless request for a pattern: wildcards become
// values that name nothing, bodies are empty JSON objects.
func requestFor(pattern string) (method, path string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = http.MethodGet, pattern
	}
	switch path {
	case "/raft/":
		path = "/raft/v1/status"
	case "/api/v1/cluster/":
		path = "/api/v1/cluster/nothing"
	}
	r := strings.NewReplacer("{id}", "00000000000000000000000000000000", "{op}", "stop", "{name}", "nobody",
		"{sha256}", strings.Repeat("0", 64))
	return method, r.Replace(path)
}

// refused reports whether an answer is an authentication or permission
// refusal (not a handler's answer about the request itself).
func refused(r apiResult) bool {
	return r.Status == http.StatusUnauthorized && r.Code != "bad_credentials" ||
		r.Status == http.StatusForbidden && (r.Code == "forbidden" || r.Code == "no_rule")
}

// TestRoutes_EveryRoleEveryRoute walks every route registered on the admin
// mux with every role and checks it is allowed or refused as routeAccess
// says.
func TestRoutes_EveryRoleEveryRoute(t *testing.T) {
	tn := startTestNode(t, "")
	tokens := map[string]string{roleNone: "", roleBreak: tn.token}
	for role, a := range map[string]account.Account{
		roleSys:      {Name: "sys", Role: account.RoleSystemAdmin},
		roleNoOplog:  {Name: "nolog", Role: account.RoleAdminNoOplog},
		roleOperator: {Name: "op", Role: account.RoleSiteOperator, Sites: []string{"s1"}, Permissions: account.OperatorPermissions},
		roleOpNone:   {Name: "opnone", Role: account.RoleSiteOperator, Sites: []string{"s1"}},
		roleViewer:   {Name: "viewer", Role: account.RoleViewer},
	} {
		tn.addAccount(t, a, testPassword)
		tokens[role] = tn.signIn(t, a.Name, testPassword)
	}
	routes := tn.Routes()
	if len(routes) < 40 {
		t.Fatalf("only %d routes registered: %v", len(routes), routes)
	}
	for _, pattern := range routes {
		allowed, ok := routeAccess[pattern]
		if !ok {
			t.Errorf("route %q is registered but has no entry in routeAccess: add who may call it", pattern)
			continue
		}
		if _, ok := routeRules[pattern]; !ok {
			t.Errorf("route %q has no rule in routeRules: everyone is refused", pattern)
		}
		method, path := requestFor(pattern)
		for _, role := range everyone {
			var body any
			if method != http.MethodGet && method != http.MethodDelete {
				body = []byte("{}")
			}
			r := tn.call(t, tokens[role], method, path, body)
			if want := slices.Contains(allowed, role); refused(r) == want {
				t.Errorf("%s as %s: %d %s; want allowed=%v", pattern, role, r.Status, firstLine(r.Body), want)
			}
		}
	}
	for pattern := range routeAccess {
		if !slices.Contains(routes, pattern) {
			t.Errorf("routeAccess lists %q, which is not registered", pattern)
		}
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return s
}
