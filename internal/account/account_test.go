package account

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/csvx"
)

func TestPassword_HashVerify(t *testing.T) {
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") || strings.Contains(h, "correct") {
		t.Fatalf("hash %q: want a PHC argon2id string without the password", h)
	}
	h2, _ := HashPassword("correct horse battery")
	if h == h2 {
		t.Fatal("two hashes of one password are equal: the salt is not per hash")
	}
	for _, tc := range []struct {
		pw   string
		want bool
	}{{"correct horse battery", true}, {"correct horse batterY", false}, {"", false}} {
		if ok, err := VerifyPassword(h, tc.pw); err != nil || ok != tc.want {
			t.Errorf("verify %q: %v, %v; want %v", tc.pw, ok, err, tc.want)
		}
	}
	if ok, err := VerifyPassword("", "anything"); ok || err != nil {
		t.Errorf("empty hash matched: %v %v", ok, err)
	}
	for _, bad := range []string{"x", "$argon2i$v=19$m=1,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=99999999,t=1,p=1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA", h[:len(h)-60]} {
		if _, err := VerifyPassword(bad, "pw"); !errors.Is(err, ErrBadHash) {
			t.Errorf("verify against %q: %v, want ErrBadHash", bad, err)
		}
	}
}

func TestPassword_Policy(t *testing.T) {
	for _, tc := range []struct {
		pw string
		ok bool
	}{
		{"short", false},
		{strings.Repeat("a", MinPasswordLength), true},
		{strings.Repeat("é", MinPasswordLength), true}, // characters, not bytes
		{strings.Repeat("a", MaxPasswordLength+1), false},
		{"twelve chars\n", false},
		{"\xff\xfe invalid utf8", false},
	} {
		if err := CheckPassword(tc.pw); (err == nil) != tc.ok {
			t.Errorf("policy(%q) = %v, want ok=%v", tc.pw, err, tc.ok)
		}
	}
	if _, err := HashPassword("short"); !errors.Is(err, ErrPasswordPolicy) {
		t.Errorf("HashPassword(short): %v", err)
	}
}

func TestAccess_Roles(t *testing.T) {
	for _, tc := range []struct {
		name     string
		acc      Access
		has, not []Permission
		site     string
		inScope  bool
	}{
		{"system-admin", AccessOf(RoleSystemAdmin, nil, nil), AllPermissions, nil, "any", true},
		{"admin-no-oplog", AccessOf(RoleAdminNoOplog, nil, nil), []Permission{PermAccounts, PermCluster, PermTasks}, []Permission{PermOplog}, "any", true},
		{"operator", AccessOf(RoleSiteOperator, []Permission{PermTasks, PermAccounts}, []string{"s1"}), []Permission{PermRead, PermTasks},
			[]Permission{PermAccounts, PermOplog, PermCluster}, "s2", false},
		{"viewer", AccessOf(RoleViewer, nil, nil), []Permission{PermRead}, []Permission{PermEvents, PermAudit}, "s2", true},
		{"narrowed token", Narrow(AccessOf(RoleSiteOperator, OperatorPermissions, []string{"s1", "s2"}), AccessOf(RoleViewer, nil, []string{"s2", "s3"})),
			[]Permission{PermRead}, []Permission{PermTasks}, "s1", false},
		{"token cannot widen", Narrow(AccessOf(RoleViewer, nil, []string{"s1"}), Full()), []Permission{PermRead}, []Permission{PermCluster}, "s2", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range tc.has {
				if !tc.acc.Has(p) {
					t.Errorf("lacks %s", p)
				}
			}
			for _, p := range tc.not {
				if tc.acc.Has(p) {
					t.Errorf("has %s", p)
				}
			}
			if tc.acc.InScope(tc.site) != tc.inScope {
				t.Errorf("InScope(%s) = %v", tc.site, !tc.inScope)
			}
		})
	}
	if n := Narrow(AccessOf(RoleViewer, nil, []string{"s1"}), Full()); n.Role != RoleViewer || !slices.Equal(n.Sites, []string{"s1"}) {
		t.Errorf("narrowing a viewer by system-admin: %+v", n)
	}
}

func TestAccount_Validate(t *testing.T) {
	for _, tc := range []struct {
		name string
		a    Account
		ok   bool
	}{
		{"admin", Account{Name: "alice", Role: RoleSystemAdmin}, true},
		{"operator", Account{Name: "bob", Role: RoleSiteOperator, Sites: []string{"branch-1"}, Permissions: []Permission{PermTasks}}, true},
		{"operator without sites", Account{Name: "bob", Role: RoleSiteOperator}, false},
		{"admin with sites", Account{Name: "bob", Role: RoleSystemAdmin, Sites: []string{"b"}}, false},
		{"viewer with a permission", Account{Name: "bob", Role: RoleViewer, Permissions: []Permission{PermTasks}}, false},
		{"unknown permission", Account{Name: "bob", Role: RoleSiteOperator, Sites: []string{"b"}, Permissions: []Permission{PermCluster}}, false},
		{"reserved name", Account{Name: "Admin-Token", Role: RoleViewer}, false},
		{"bad name", Account{Name: "a b", Role: RoleViewer}, false},
		{"long name", Account{Name: strings.Repeat("a", 33), Role: RoleViewer}, false},
		{"bad role", Account{Name: "bob", Role: "root"}, false},
		{"bad site", Account{Name: "bob", Role: RoleViewer, Sites: []string{"Bad Site"}}, false},
		{"control character", Account{Name: "bob", Role: RoleViewer, FullName: "x\x1b[31m"}, false},
		{"bad e-mail", Account{Name: "bob", Role: RoleViewer, Email: "bob"}, false},
		{"six custom fields", Account{Name: "bob", Role: RoleViewer, Custom: make([]string, 6)}, false},
	} {
		if err := tc.a.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestLimiter_LockOut(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(LimiterConfig{MaxFailures: 3, Window: time.Minute, Lockout: 10 * time.Minute, MaxKeys: 2, Now: func() time.Time { return now }})
	for i := 1; i <= 3; i++ {
		if ok, _ := l.Allow("alice"); !ok {
			t.Fatalf("attempt %d refused before the limit", i)
		}
		if locked := l.Fail("alice"); locked != (i == 3) {
			t.Fatalf("failure %d: locked %v", i, locked)
		}
	}
	if ok, wait := l.Allow("alice"); ok || wait != 10*time.Minute {
		t.Fatalf("after 3 failures: allowed %v, wait %s", ok, wait)
	}
	l.Succeed("alice") // a correct password does not lift a lock-out
	if ok, _ := l.Allow("alice"); ok {
		t.Fatal("lock-out lifted by a success while locked")
	}
	if ok, _ := l.Allow("bob"); !ok {
		t.Fatal("another key is locked")
	}
	now = now.Add(10 * time.Minute)
	if ok, _ := l.Allow("alice"); !ok {
		t.Fatal("still locked after the lock-out")
	}
	// Failures spread wider than the window do not add up.
	l.Fail("carol")
	now = now.Add(2 * time.Minute)
	l.Fail("carol")
	now = now.Add(2 * time.Minute)
	if l.Fail("carol") {
		t.Fatal("failures outside one window locked the key")
	}
	// Memory is bounded.
	for _, k := range []string{"k1", "k2", "k3", "k4"} {
		l.Fail(k)
	}
	l.mu.Lock()
	n := len(l.keys)
	l.mu.Unlock()
	if n > 3 {
		t.Fatalf("%d keys held with MaxKeys 2", n)
	}
}

func ismFile(t testing.TB, rows ...[]string) []byte {
	var buf bytes.Buffer
	w, err := csvx.NewWriter(&buf, csvx.UTF16LE)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(ISMHeader)
	for _, r := range rows {
		w.Write(r)
	}
	w.Flush()
	return buf.Bytes()
}

func TestISM_RoundTrip(t *testing.T) {
	accounts := []Account{
		{Name: "alice", FullName: "Alice Liddell", Reading: "ありす", Email: "alice@example.com", Role: RoleSystemAdmin, Custom: []string{"HQ", "", "x"}},
		{Name: "nolog", Role: RoleAdminNoOplog},
		{Name: "op1", Role: RoleSiteOperator, Sites: []string{"branch-1", "branch-2"}, Permissions: []Permission{PermEvents, PermTasks}},
		{Name: "viewer", Role: RoleViewer},
		{Name: "sview", Role: RoleViewer, Sites: []string{"branch-1"}},
	}
	var rows [][]string
	for i := range accounts {
		accounts[i].Normalize()
		rows = append(rows, ISMRow(&accounts[i], i == 0))
	}
	parsed, err := csvx.ReadISM(bytes.NewReader(ismFile(t, rows...)), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got, errs := ParseISM(parsed)
	if len(errs) > 0 || len(got) != len(accounts) {
		t.Fatalf("parse: %d rows, errors %v", len(got), errs)
	}
	for i, r := range got {
		w := accounts[i]
		a := r.Account
		if r.Op != OpAdd || a.Name != w.Name || a.Role != w.Role || !slices.Equal(a.Sites, w.Sites) || !slices.Equal(a.Permissions, w.Permissions) ||
			a.FullName != w.FullName || a.Reading != w.Reading || a.Email != w.Email || !slices.Equal(a.Custom, w.Custom) || r.Password != "" {
			t.Errorf("row %d: %+v (%s), want %+v", i, a, r.Op, w)
		}
	}
	if rows[0][10] != "SYS_ALL" || rows[1][10] != "SYS_LOG_EXCL" || rows[2][10] != "GRP" || rows[2][11] != "000101" || rows[2][13] != "branch-1,branch-2" {
		t.Errorf("ISM permission columns: %q %q %q", rows[0][10:14], rows[1][10:14], rows[2][10:14])
	}
	// Without edgesync's column, the role comes from the ISM columns.
	ism := func(op, name, pw, perm, mask, groups string) []string {
		return []string{op, name, pw, "", "", "", "", "", "", "", perm, mask, "", groups, "0"}
	}
	parsed, _ = csvx.ReadISM(bytes.NewReader(ismFile(t,
		ism("Add", "g1", "a long enough password", "GRP", "001001", "branch-9"),
		ism("Upd", "g2", "", "GRP", "000000", "0"),
		ism("Del", "g3", "", "", "", ""),
	)), 1<<20)
	got, errs = ParseISM(parsed)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if a := got[0].Account; a.Role != RoleSiteOperator || !slices.Equal(a.Permissions, []Permission{PermDistribute, PermTasks, PermOplog}) || got[0].Password != "a long enough password" {
		t.Errorf("GRP 001001: %+v", a)
	}
	if got[1].Account.Role != RoleViewer || got[1].Op != OpUpd || got[2].Op != OpDel {
		t.Errorf("rows 2, 3: %+v %+v", got[1], got[2])
	}
}

func TestISM_BadRows(t *testing.T) {
	ism := func(op, name, pw, perm, mask, groups string) []string {
		return []string{op, name, pw, "", "", "", "", "", "", "", perm, mask, "", groups, "0"}
	}
	for _, tc := range []struct {
		name string
		row  []string
	}{
		{"op", ism("Ins", "a", "", "SYS_ALL", "", "")},
		{"name", ism("Add", "a b", "", "SYS_ALL", "", "")},
		{"short password", ism("Add", "a", "short", "SYS_ALL", "", "")},
		{"permission", ism("Add", "a", "", "ROOT", "", "")},
		{"mask", ism("Add", "a", "", "GRP", "0101", "s1")},
		{"no groups", ism("Add", "a", "", "GRP", "010000", "")},
		{"org-wide with permissions", ism("Add", "a", "", "GRP", "010000", "0")},
		{"bad site", ism("Add", "a", "", "GRP", "010000", "Site 1")},
		{"columns", []string{"Add", "a"}},
		{"edgesync role", append(ism("Add", "a", "", "SYS_ALL", "", ""), "root")},
		{"two-step", append(ism("Add", "a", "", "SYS_ALL", "", "")[:14], "yes")},
	} {
		_, errs := ParseISM([][]string{ISMHeader, tc.row})
		if len(errs) != 1 || errs[0].Line != 2 {
			t.Errorf("%s: errors %v, want one on line 2", tc.name, errs)
		}
	}
	_, errs := ParseISM([][]string{ISMHeader, ism("Add", "a", "", "SYS_ALL", "", ""), ism("Del", "A", "", "", "", "")})
	if len(errs) != 1 || errs[0].Line != 3 {
		t.Errorf("duplicate account: %v", errs)
	}
	if _, err := csvx.ReadISM(strings.NewReader("\"種別\"\t\"x\"\r\n"), 1<<20); !errors.Is(err, csvx.ErrNotISM) {
		t.Errorf("UTF-8 file: %v, want ErrNotISM", err)
	}
}

// FuzzImportISM: any bytes either fail to parse or give rows that validate;
// no panic, and every accepted account passes Validate.
func FuzzImportISM(f *testing.F) {
	a := Account{Name: "op1", Role: RoleSiteOperator, Sites: []string{"branch-1"}, Permissions: []Permission{PermTasks}}
	f.Add(ismFile(f, ISMRow(&a, false)))
	f.Add(ismFile(f, []string{"Add", "x", "a long enough password", "", "", "", "", "", "", "", "GRP", "111111", "", "s1,s2", "1"}))
	f.Add([]byte("\xff\xfe\"\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rows, err := csvx.ReadISM(bytes.NewReader(b), 1<<20)
		if err != nil {
			return
		}
		got, _ := ParseISM(rows)
		for _, r := range got {
			if r.Op == OpDel {
				if !ValidName(r.Account.Name) {
					t.Fatalf("Del row with a bad name %q accepted", r.Account.Name)
				}
				continue
			}
			if err := r.Account.Validate(); err != nil {
				t.Fatalf("accepted row does not validate: %v", err)
			}
			if r.Password != "" && CheckPassword(r.Password) != nil {
				t.Fatal("accepted a password the policy refuses")
			}
		}
	})
}
