package account

import (
	"fmt"
	"slices"
	"strings"
)

// The ISM administrator-account CSV (ISM CloudOne manual 004, §11-12-9),
// in the ISM dialect (internal/csvx). Line 1 is the header. Columns:
//
//	0 種別 Add/Upd/Del · 1 管理者アカウント · 2 パスワード · 3 氏名 ·
//	4 氏名(よみがな) · 5-9 任意項目1-5 · 10 管理権限 SYS_ALL/SYS_LOG_EXCL/GRP
//	(legacy ALL/SELECT) · 11 管理権限詳細 (6-character 0/1 mask) ·
//	12 メールアドレス · 13 管理グループ (comma list; "0" the whole
//	organisation) · 14 二段階認証 (0/1)
//
// edgesync adds column 15, edgesync権限: the role, and for a site-operator
// its permissions ("site-operator:manage-tasks,read-oplog"), because the
// ISM mask cannot say everything edgesync's roles can. Without it the role
// comes from columns 10, 11 and 13. Management groups are edgesync sites.
// Exports never carry a password: the column is empty.
var ISMHeader = []string{"種別", "管理者アカウント", "パスワード", "氏名", "氏名(よみがな)",
	"任意項目1", "任意項目2", "任意項目3", "任意項目4", "任意項目5",
	"管理権限", "管理権限詳細", "メールアドレス", "管理グループ", "二段階認証", "edgesync権限"}

// ismColumns is how many columns an ISM row has without edgesync's own.
const ismColumns = 15

// The ISM processing types (種別).
const (
	OpAdd = "Add"
	OpUpd = "Upd"
	OpDel = "Del"
)

// ImportRow is one data row of an account CSV.
type ImportRow struct {
	Line     int     `json:"line"`
	Op       string  `json:"op"`
	Account  Account `json:"account"`
	Password string  `json:"-"` // empty: unchanged (Upd) or none set (Add)
}

// RowError is a CSV row that cannot be imported.
type RowError struct {
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// The ISM permission-mask positions (管理権限詳細): 1 operation settings,
// 2 group operation settings, 3 operation-log viewing, 4 external-device
// request approval, 5 remote control, 6 command execution. maskPerms maps
// them to edgesync permissions; 5 has no equivalent.
var maskPerms = [6][]Permission{{PermSettings}, {PermSettings}, {PermOplog}, {PermEvents}, nil, {PermDistribute, PermTasks}}

// ParseISM reads the rows of an account CSV (as csvx.ReadISM returns them,
// header first). It returns the rows and, for any bad row, why; a caller
// imports nothing when errs is not empty.
func ParseISM(rows [][]string) (out []ImportRow, errs []RowError) {
	if len(rows) == 0 {
		return nil, []RowError{{Line: 1, Error: "no header row"}}
	}
	seen := map[string]int{}
	for i, row := range rows[1:] {
		line := i + 2
		if len(row) == 1 && row[0] == "" {
			continue // a blank line
		}
		r, err := parseRow(row)
		if err == nil {
			if prev, dup := seen[strings.ToLower(r.Account.Name)]; dup {
				err = fmt.Errorf("account %q is also on line %d", r.Account.Name, prev)
			}
		}
		if err != nil {
			errs = append(errs, RowError{Line: line, Error: err.Error()})
			continue
		}
		seen[strings.ToLower(r.Account.Name)] = line
		r.Line = line
		out = append(out, r)
	}
	return out, errs
}

func parseRow(row []string) (ImportRow, error) {
	if len(row) != ismColumns && len(row) != ismColumns+1 {
		return ImportRow{}, fmt.Errorf("%d columns, want %d (or %d with edgesync権限)", len(row), ismColumns, ismColumns+1)
	}
	r := ImportRow{Op: row[0], Password: row[2]}
	a := &r.Account
	a.Name = row[1]
	if !ValidName(a.Name) {
		return r, fmt.Errorf("管理者アカウント %q: want 1-32 of A-Z, a-z, 0-9, '_', '.', '-'", a.Name)
	}
	switch r.Op {
	case OpDel:
		return r, nil
	case OpAdd, OpUpd:
	default:
		return r, fmt.Errorf("種別 %q: want Add, Upd or Del", r.Op)
	}
	if r.Password != "" {
		if err := CheckPassword(r.Password); err != nil {
			return r, fmt.Errorf("パスワード: %w", err)
		}
	}
	a.FullName, a.Reading, a.Custom, a.Email = row[3], row[4], slices.Clone(row[5:10]), row[12]
	if v := row[14]; v != "" && v != "0" && v != "1" {
		return r, fmt.Errorf("二段階認証 %q: want 0 or 1", v)
	}
	var groups []string
	for _, g := range strings.Split(row[13], ",") {
		if g = strings.TrimSpace(g); g != "" {
			groups = append(groups, g)
		}
	}
	if err := ismRole(a, row[10], row[11], groups); err != nil {
		return r, err
	}
	if len(row) > ismColumns && row[ismColumns] != "" {
		role, perms, _ := strings.Cut(row[ismColumns], ":")
		a.Role, a.Permissions = Role(role), nil
		for _, p := range strings.Split(perms, ",") {
			if p = strings.TrimSpace(p); p != "" {
				a.Permissions = append(a.Permissions, Permission(p))
			}
		}
		if a.Role == RoleSystemAdmin || a.Role == RoleAdminNoOplog {
			a.Sites = nil
		}
	}
	a.Normalize()
	if err := a.Validate(); err != nil {
		return r, err
	}
	return r, nil
}

func ismRole(a *Account, perm, mask string, groups []string) error {
	switch perm {
	case "SYS_ALL", "ALL":
		a.Role = RoleSystemAdmin
		return nil
	case "SYS_LOG_EXCL":
		a.Role = RoleAdminNoOplog
		return nil
	case "GRP", "SELECT":
	default:
		return fmt.Errorf("管理権限 %q: want SYS_ALL, SYS_LOG_EXCL or GRP", perm)
	}
	if len(mask) != 6 || strings.Trim(mask, "01") != "" {
		return fmt.Errorf("管理権限詳細 %q: want 6 characters of 0 and 1 with GRP", mask)
	}
	if len(groups) == 0 {
		return fmt.Errorf("管理グループ is required with GRP")
	}
	for i, c := range mask {
		if c == '1' {
			a.Permissions = append(a.Permissions, maskPerms[i]...)
		}
	}
	if slices.Contains(groups, "0") {
		if len(groups) > 1 || len(a.Permissions) > 0 {
			return fmt.Errorf("管理グループ 0 (the whole organisation) with GRP permissions: use SYS_ALL or SYS_LOG_EXCL, or list sites")
		}
		a.Role, a.Permissions = RoleViewer, nil
		return nil
	}
	a.Role, a.Sites = RoleSiteOperator, groups
	return nil
}

// ISMRow is an account as an export row (種別 Add, no password). Re-import
// it elsewhere with passwords filled in, or without them to create the
// accounts with no password until `account passwd` sets one.
func ISMRow(a *Account, twoStep bool) []string {
	row := make([]string, len(ISMHeader))
	row[0], row[1], row[3], row[4], row[12] = OpAdd, a.Name, a.FullName, a.Reading, a.Email
	copy(row[5:10], a.Custom)
	row[14] = "0"
	if twoStep {
		row[14] = "1"
	}
	switch a.Role {
	case RoleSystemAdmin:
		row[10] = "SYS_ALL"
	case RoleAdminNoOplog:
		row[10] = "SYS_LOG_EXCL"
	default:
		row[10] = "GRP"
		m := []byte("000000")
		for i, ps := range maskPerms {
			for _, p := range ps {
				if slices.Contains(a.Permissions, p) {
					m[i] = '1'
				}
			}
		}
		if a.Role == RoleViewer {
			m = []byte("000000")
		}
		row[11] = string(m)
		row[13] = strings.Join(a.Sites, ",")
		if row[13] == "" {
			row[13] = "0"
		}
	}
	role := string(a.Role)
	if len(a.Permissions) > 0 {
		ps := make([]string, len(a.Permissions))
		for i, p := range a.Permissions {
			ps[i] = string(p)
		}
		role += ":" + strings.Join(ps, ",")
	}
	row[ismColumns] = role
	return row
}
