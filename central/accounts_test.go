package central

import (
	"bytes"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/csvx"
	"github.com/edgesync/edgesync/internal/httpx"
)

const testPassword = "correct horse battery staple"

func (tn *testNode) addAccount(t *testing.T, a account.Account, pw string) {
	t.Helper()
	tn.must(t, http.StatusCreated, tn.token, "POST", "/api/v1/accounts", AccountRequest{Account: a, Password: pw})
}

func (tn *testNode) signIn(t *testing.T, name, pw string) string {
	t.Helper()
	var res SignInResult
	tn.must(t, http.StatusOK, "", "POST", "/api/v1/signin", SignInRequest{Account: name, Password: pw}).decode(t, &res)
	if !strings.HasPrefix(res.Token, "est_") || res.Account != name {
		t.Fatalf("sign-in answer %+v", res)
	}
	return res.Token
}

func (tn *testNode) accountNames(t *testing.T) []string {
	t.Helper()
	as, err := tn.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range as {
		names = append(names, a.Name)
	}
	return names
}

func (tn *testNode) auditHas(t *testing.T, who, action, result string) bool {
	t.Helper()
	es, err := tn.Audit(1000)
	if err != nil {
		t.Fatal(err)
	}
	ok := slices.ContainsFunc(es, func(e AuditEntry) bool {
		return e.Who == who && strings.Contains(e.Action, action) && strings.HasPrefix(e.Result, result)
	})
	if !ok && testing.Verbose() {
		t.Logf("no audit entry %s %q %q among %d", who, action, result, len(es))
	}
	return ok
}

// TestAccounts_Lifecycle: add, sign in, change the role, disable, set the
// password, delete; bad input is a 4xx with a stable code and changes
// nothing; every change is audited with the account's name.
func TestAccounts_Lifecycle(t *testing.T) {
	tn := startTestNode(t, "")
	tn.waitDenyBudget(t)
	tn.addAccount(t, account.Account{Name: "alice", Role: account.RoleSystemAdmin, FullName: "Alice"}, testPassword)

	for _, tc := range []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"bad name", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "a b", Role: account.RoleViewer}}, 400, "bad_request"},
		{"short password", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "bob", Role: account.RoleViewer}, Password: "short"}, 400, "bad_request"},
		{"unknown role", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "bob", Role: "root"}}, 400, "bad_request"},
		{"operator without sites", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "bob", Role: account.RoleSiteOperator}}, 400, "bad_request"},
		{"unknown field", "POST", "/api/v1/accounts", map[string]any{"name": "bob", "role": "viewer", "is_root": true}, 400, "bad_request"},
		{"not JSON", "POST", "/api/v1/accounts", []byte("{"), 400, "bad_request"},
		{"duplicate", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "ALICE", Role: account.RoleViewer}}, 409, "account_exists"},
		{"reserved name", "POST", "/api/v1/accounts", AccountRequest{Account: account.Account{Name: "admin-token", Role: account.RoleViewer}}, 400, "bad_request"},
		{"set unknown", "PATCH", "/api/v1/accounts/nobody", AccountPatch{}, 404, "no_account"},
		{"set bad role", "PATCH", "/api/v1/accounts/alice", map[string]any{"role": "root"}, 400, "bad_request"},
		{"delete unknown", "DELETE", "/api/v1/accounts/nobody", nil, 404, "no_account"},
		{"short new password", "PUT", "/api/v1/accounts/alice/password", PasswordRequest{Password: "x"}, 400, "bad_request"},
		{"sign in, bad body", "POST", "/api/v1/signin", []byte("nope"), 400, "bad_request"},
		{"token, bad name", "POST", "/api/v1/tokens", TokenRequest{Name: "a b", Account: "alice"}, 400, "bad_request"},
		{"token for no account", "POST", "/api/v1/tokens", TokenRequest{Name: "ci"}, 400, "no_account"},
		{"token, negative expiry", "POST", "/api/v1/tokens", TokenRequest{Name: "ci", Account: "alice", Expires: -1}, 400, "bad_request"},
		{"revoke unknown token", "DELETE", "/api/v1/tokens/feedbeef", nil, 404, "no_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tn.call(t, tn.token, tc.method, tc.path, tc.body)
			if r.Status != tc.status || r.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", r.Status, r.Body, tc.status, tc.code)
			}
			if a, _ := tn.Account("alice"); a.Role != account.RoleSystemAdmin || !slices.Equal(tn.accountNames(t), []string{"alice"}) {
				t.Fatalf("state changed: %v, alice %+v", tn.accountNames(t), a)
			}
		})
	}

	tok := tn.signIn(t, "alice", testPassword)
	var who Whoami
	tn.must(t, 200, tok, "GET", "/api/v1/whoami", nil).decode(t, &who)
	if who.Who != "alice" || who.Access.Role != account.RoleSystemAdmin || !who.Access.Has(account.PermOplog) {
		t.Fatalf("whoami %+v", who)
	}
	tn.must(t, 200, tok, "GET", "/api/v1/accounts", nil)

	// Demoted: the same sign-in token now reads only.
	tn.must(t, 200, tn.token, "PATCH", "/api/v1/accounts/alice", map[string]any{"role": "viewer"})
	tn.must(t, 403, tok, "GET", "/api/v1/accounts", nil)
	tn.must(t, 200, tok, "GET", "/api/v1/devices", nil)

	// Disabled: its tokens stop working; its password is refused.
	tn.must(t, 200, tn.token, "PATCH", "/api/v1/accounts/alice", AccountPatch{Disabled: ptr(true)})
	tn.must(t, 401, tok, "GET", "/api/v1/devices", nil)
	if r := tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "alice", Password: testPassword}); r.Code != "bad_credentials" {
		t.Fatalf("sign-in of a disabled account: %d %s", r.Status, r.Body)
	}
	tn.must(t, 200, tn.token, "PATCH", "/api/v1/accounts/alice", AccountPatch{Disabled: ptr(false)})
	tn.must(t, 200, tok, "GET", "/api/v1/devices", nil)

	// A new password: the old one stops working.
	tn.must(t, 200, tn.token, "PUT", "/api/v1/accounts/alice/password", PasswordRequest{Password: "another long password"})
	if r := tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "alice", Password: testPassword}); r.Status != 401 {
		t.Fatalf("old password: %d", r.Status)
	}
	tok2 := tn.signIn(t, "alice", "another long password")
	// One's own password, with the current one.
	tn.must(t, 403, tok2, "POST", "/api/v1/account/password", PasswordRequest{Current: "wrong password!!", Password: testPassword})
	tn.must(t, 200, tok2, "POST", "/api/v1/account/password", PasswordRequest{Current: "another long password", Password: testPassword})
	tn.signIn(t, "alice", testPassword)

	tn.must(t, 200, tn.token, "DELETE", "/api/v1/accounts/alice", nil)
	tn.must(t, 401, tok2, "GET", "/api/v1/devices", nil)
	if names := tn.accountNames(t); len(names) != 0 {
		t.Fatalf("after delete: %v", names)
	}
	if toks, _ := tn.Tokens(""); len(toks) != 0 {
		t.Fatalf("tokens of a deleted account remain: %+v", toks)
	}
	waitFor(t, 10*time.Second, "audit entries with account names", func() bool {
		return tn.auditHas(t, "alice", "sign in", "ok") && tn.auditHas(t, "alice", "sign in", "refused") &&
			tn.auditHas(t, breakGlassWho(tn.token), "PATCH /api/v1/accounts/alice", "ok") &&
			tn.auditHas(t, "alice", "GET /api/v1/accounts", "refused") && tn.auditHas(t, breakGlassWho(tn.token), "DELETE /api/v1/accounts/alice", "ok")
	})
	// Passwords and hashes appear in no answer.
	r := tn.must(t, 200, tn.token, "GET", "/api/v1/audit", nil)
	if bytes.Contains(r.Body, []byte(testPassword)) || bytes.Contains(r.Body, []byte("argon2")) {
		t.Fatal("audit trail holds a password or a hash")
	}
}

// waitDenyBudget waits until refused requests are audited: central's
// budget for them starts empty and fills after the first second.
func (tn *testNode) waitDenyBudget(t *testing.T) {
	t.Helper()
	waitFor(t, 10*time.Second, "refused requests audited", func() bool {
		tn.call(t, "", "GET", "/api/v1/sites", nil)
		return tn.auditHas(t, "anonymous", "GET /api/v1/sites", "refused")
	})
}

// breakGlassWho is the audit name of the bootstrap admin token: its hash
// prefix, as before accounts.
func breakGlassWho(tok string) string { return "token:" + httpx.HashToken(tok)[:12] }

func ptr[T any](v T) *T { return &v }

// TestSignIn_LockOut: repeated failures lock the account (even the right
// password is then refused), other accounts are unaffected, and it is
// audited.
func TestSignIn_LockOut(t *testing.T) {
	tn := startTestNode(t, "")
	tn.waitDenyBudget(t)
	tn.addAccount(t, account.Account{Name: "carol", Role: account.RoleViewer}, testPassword)
	tn.addAccount(t, account.Account{Name: "dave", Role: account.RoleViewer}, testPassword)
	limits := account.DefaultAccountLimits()
	for i := 0; i < limits.MaxFailures; i++ {
		if r := tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "carol", Password: "guess number " + string(rune('a'+i))}); r.Status != 401 || r.Code != "bad_credentials" {
			t.Fatalf("failure %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "carol", Password: testPassword})
	if r.Status != http.StatusTooManyRequests || r.Code != "locked_out" {
		t.Fatalf("right password after %d failures: %d %s, want 429 locked_out", limits.MaxFailures, r.Status, r.Body)
	}
	tn.signIn(t, "dave", testPassword)
	// An unknown account answers like a wrong password.
	if r := tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "nobody", Password: testPassword}); r.Code != "bad_credentials" {
		t.Fatalf("unknown account: %d %s", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "lock-out audited", func() bool {
		return tn.auditHas(t, "carol", "sign in", "refused: wrong account or password (now locked out)") && tn.auditHas(t, "carol", "sign in", "refused: locked out")
	})
}

// TestTokens: a token is printed once, stored hashed, carries its
// account's role or a narrower one, and stops working when revoked.
func TestTokens(t *testing.T) {
	tn := startTestNode(t, "")
	tn.addAccount(t, account.Account{Name: "erin", Role: account.RoleAdminNoOplog}, testPassword)
	sess := tn.signIn(t, "erin", testPassword)
	var ci TokenCreated
	tn.must(t, 201, sess, "POST", "/api/v1/tokens", TokenRequest{Name: "ci", Expires: 30 * 24 * time.Hour}).decode(t, &ci)
	if ci.Secret == "" || ci.Account != "erin" || ci.Access.Role != account.RoleAdminNoOplog || ci.ExpiresAt.Sub(ci.CreatedAt) != 30*24*time.Hour {
		t.Fatalf("created %+v", ci)
	}
	var ro TokenCreated
	tn.must(t, 201, sess, "POST", "/api/v1/tokens", TokenRequest{Name: "ro", Role: account.RoleViewer}).decode(t, &ro)
	tn.must(t, 400, sess, "POST", "/api/v1/tokens", TokenRequest{Name: "wide", Role: account.RoleSystemAdmin})
	// Listing shows the tokens, never a secret; the state holds only hashes.
	lst := tn.must(t, 200, ci.Secret, "GET", "/api/v1/tokens", nil)
	if bytes.Contains(lst.Body, []byte(ci.Secret)) || !bytes.Contains(lst.Body, []byte(ci.ID)) || !bytes.Contains(lst.Body, []byte(ro.ID)) {
		t.Fatalf("token list %s", lst.Body)
	}
	tn.raft.View(func(txn *badger.Txn) error {
		return eachTokenTxn(txn, func(k []byte, st *storedToken) error {
			if strings.Contains(string(k), "est_") || st.Hash == "" {
				t.Errorf("token stored as %q (hash %q)", k, st.Hash)
			}
			return nil
		})
	})
	tn.must(t, 200, ci.Secret, "GET", "/api/v1/accounts", nil)
	tn.must(t, 403, ro.Secret, "GET", "/api/v1/accounts", nil)
	tn.must(t, 200, ro.Secret, "GET", "/api/v1/devices", nil)
	// A viewer token cannot mint a broader one.
	var ro2 TokenCreated
	tn.must(t, 201, ro.Secret, "POST", "/api/v1/tokens", TokenRequest{Name: "ro2"}).decode(t, &ro2)
	if ro2.Access.Role != account.RoleViewer {
		t.Fatalf("token minted by a viewer token: %+v", ro2.Access)
	}
	tn.must(t, 200, sess, "DELETE", "/api/v1/tokens/"+ci.ID, nil)
	tn.must(t, 401, ci.Secret, "GET", "/api/v1/accounts", nil)
	tn.must(t, 404, sess, "DELETE", "/api/v1/tokens/"+ci.ID, nil)
	// The break-glass token revokes anyone's.
	tn.must(t, 200, tn.token, "DELETE", "/api/v1/tokens/"+ro.ID, nil)
	tn.must(t, 401, ro.Secret, "GET", "/api/v1/devices", nil)
}

// TestAccounts_ISMImportExport: an export re-imports; a file with one bad
// row imports nothing; the file must be the ISM dialect.
func TestAccounts_ISMImportExport(t *testing.T) {
	tn := startTestNode(t, "")
	var buf bytes.Buffer
	w, _ := csvx.NewWriter(&buf, csvx.UTF16LE)
	w.Write(account.ISMHeader)
	row := func(op, name, pw, perm, mask, groups string) []string {
		return []string{op, name, pw, "Name " + name, "", "", "", "", "", "", perm, mask, name + "@example.com", groups, "0"}
	}
	w.Write(row("Add", "frank", testPassword, "SYS_ALL", "", ""))
	w.Write(row("Add", "grace", "", "GRP", "001001", "branch-1,branch-2"))
	w.Write(row("Add", "heidi", "", "SYS_LOG_EXCL", "", ""))
	w.Flush()
	var res ImportResult
	tn.must(t, 200, tn.token, "POST", "/api/v1/accounts/import", buf.Bytes()).decode(t, &res)
	if res.Added != 3 || !slices.Equal(tn.accountNames(t), []string{"frank", "grace", "heidi"}) {
		t.Fatalf("import: %+v, accounts %v", res, tn.accountNames(t))
	}
	tn.signIn(t, "frank", testPassword)
	if g, _ := tn.Account("grace"); g.Role != account.RoleSiteOperator || !slices.Equal(g.Sites, []string{"branch-1", "branch-2"}) || g.HasPassword {
		t.Fatalf("grace %+v", g)
	}

	exp := tn.must(t, 200, tn.token, "GET", "/api/v1/accounts/export", nil)
	rows, err := csvx.ReadISM(bytes.NewReader(exp.Body), 1<<20)
	if err != nil || len(rows) != 4 || rows[2][1] != "grace" || rows[2][10] != "GRP" || rows[2][2] != "" {
		t.Fatalf("export: %v %q", err, rows)
	}
	// Re-importing the export as is conflicts (Add of existing accounts): nothing changes.
	if r := tn.call(t, tn.token, "POST", "/api/v1/accounts/import", exp.Body); r.Status != 409 || r.Code != "bad_rows" {
		t.Fatalf("re-import: %d %s", r.Status, r.Body)
	}
	// One bad row among good ones: nothing imported.
	buf.Reset()
	w, _ = csvx.NewWriter(&buf, csvx.UTF16LE)
	w.Write(account.ISMHeader)
	w.Write(row("Del", "frank", "", "", "", ""))
	w.Write(row("Add", "ivan", "short", "SYS_ALL", "", ""))
	w.Flush()
	if r := tn.call(t, tn.token, "POST", "/api/v1/accounts/import", buf.Bytes()); r.Status != 400 || r.Code != "bad_rows" || !bytes.Contains(r.Body, []byte(`"line": 3`)) {
		t.Fatalf("bad row: %d %s", r.Status, r.Body)
	}
	if r := tn.call(t, tn.token, "POST", "/api/v1/accounts/import", []byte("Add\tx\r\n")); r.Status != 400 || r.Code != "bad_csv" {
		t.Fatalf("UTF-8 file: %d %s", r.Status, r.Body)
	}
	if f, _ := tn.Account("frank"); !slices.Equal(tn.accountNames(t), []string{"frank", "grace", "heidi"}) || !f.HasPassword {
		t.Fatalf("refused imports changed the accounts: %v", tn.accountNames(t))
	}
}

// TestUpgrade_OneTokenCluster: a cluster that knows only the bootstrap
// admin token (no accounts in its state, as every cluster before accounts)
// keeps working with that token, unchanged, across a restart; accounts
// added later survive restarts and the token stays the break-glass
// system-admin beside them.
func TestUpgrade_OneTokenCluster(t *testing.T) {
	tn := startTestNode(t, "")
	token := tn.token
	if names := tn.accountNames(t); len(names) != 0 {
		t.Fatalf("a new cluster has accounts: %v", names)
	}
	for _, p := range []string{"/api/v1/devices", "/api/v1/sites", "/api/v1/audit", "/api/v1/accounts", "/api/v1/cluster"} {
		tn.must(t, 200, token, "GET", p, nil)
	}
	tn.stop(t)
	tn.start(t)
	if tn.token != token {
		t.Fatal("the admin token changed across a restart")
	}
	var who Whoami
	tn.must(t, 200, token, "GET", "/api/v1/whoami", nil).decode(t, &who)
	if who.Who != breakGlassWho(token) || who.Account != "" || who.Access.Role != account.RoleSystemAdmin || who.Access.Scoped() {
		t.Fatalf("admin token after restart: %+v", who)
	}
	tn.addAccount(t, account.Account{Name: "judy", Role: account.RoleViewer}, testPassword)
	tn.stop(t)
	tn.start(t)
	tn.signIn(t, "judy", testPassword)
	tn.must(t, 200, token, "GET", "/api/v1/accounts/judy", nil)
	tn.must(t, 200, token, "DELETE", "/api/v1/accounts/judy", nil)
	tn.must(t, 200, token, "GET", "/api/v1/backup", nil)
}
