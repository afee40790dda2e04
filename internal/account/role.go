package account

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Role is an account's role.
type Role string

// The roles.
const (
	// RoleSystemAdmin may do everything (ISM SYS_ALL).
	RoleSystemAdmin Role = "system-admin"
	// RoleAdminNoOplog may do everything but read operation logs (ISM
	// SYS_LOG_EXCL).
	RoleAdminNoOplog Role = "admin-no-oplog"
	// RoleSiteOperator reads and acts on its sites only, with the
	// permissions listed on the account (ISM GRP).
	RoleSiteOperator Role = "site-operator"
	// RoleViewer only reads (all sites, or the sites listed).
	RoleViewer Role = "viewer"
)

// Roles lists the roles, most powerful first.
var Roles = []Role{RoleSystemAdmin, RoleAdminNoOplog, RoleSiteOperator, RoleViewer}

// Permission is one thing an account may do.
type Permission string

// The permissions. The first six are the ones a site-operator can be given.
const (
	PermSettings   Permission = "change-settings"      // offline collection kits and their settings
	PermDistribute Permission = "distribute-packages"  // package catalog and creating tasks
	PermOffline    Permission = "import-offline-media" // offline imports
	PermOplog      Permission = "read-oplog"           // operation-log records of devices
	PermTasks      Permission = "manage-tasks"         // stop, retry, remove tasks
	PermEvents     Permission = "acknowledge-events"
	PermRead       Permission = "read"            // devices, sites, events, tasks, packages, cluster status
	PermAudit      Permission = "read-audit"      // the administrators' audit trail
	PermAccounts   Permission = "manage-accounts" // accounts and other accounts' tokens
	PermCluster    Permission = "manage-cluster"  // membership, backup, state digest
)

// OperatorPermissions are the permissions a site-operator account may hold.
var OperatorPermissions = []Permission{PermSettings, PermDistribute, PermOffline, PermOplog, PermTasks, PermEvents}

// AllPermissions is every permission.
var AllPermissions = append(slices.Clone(OperatorPermissions), PermRead, PermAudit, PermAccounts, PermCluster)

// ValidRole reports whether r is a role.
func ValidRole(r Role) bool { return slices.Contains(Roles, r) }

// Access is what a credential may do: its permissions, and the sites it
// sees (nil: every site).
type Access struct {
	Role  Role         `json:"role"`
	Perms []Permission `json:"permissions"`
	Sites []string     `json:"sites,omitempty"`
}

// Has reports whether the access includes p.
func (a Access) Has(p Permission) bool { return slices.Contains(a.Perms, p) }

// Scoped reports whether the access is limited to a list of sites.
func (a Access) Scoped() bool { return a.Sites != nil }

// InScope reports whether site is one the access sees.
func (a Access) InScope(site string) bool {
	return a.Sites == nil || site != "" && slices.Contains(a.Sites, site)
}

// Full is the access of the break-glass admin token: system-admin, unscoped.
func Full() Access { return Access{Role: RoleSystemAdmin, Perms: slices.Clone(AllPermissions)} }

// AccessOf is what an account of role r with the given operator
// permissions and sites may do.
func AccessOf(r Role, perms []Permission, sites []string) Access {
	a := Access{Role: r}
	switch r {
	case RoleSystemAdmin:
		a.Perms = slices.Clone(AllPermissions)
	case RoleAdminNoOplog:
		a.Perms = slices.DeleteFunc(slices.Clone(AllPermissions), func(p Permission) bool { return p == PermOplog })
	case RoleSiteOperator:
		a.Perms = []Permission{PermRead}
		for _, p := range OperatorPermissions {
			if slices.Contains(perms, p) {
				a.Perms = append(a.Perms, p)
			}
		}
		a.Sites = append([]string{}, sites...)
	case RoleViewer:
		a.Perms = []Permission{PermRead}
		if len(sites) > 0 {
			a.Sites = append([]string{}, sites...)
		}
	}
	return a
}

// Narrow returns what both a and b allow: the common permissions and the
// common sites. The role is b's when b is no broader than a, else a's.
func Narrow(a, b Access) Access {
	out := Access{Role: b.Role}
	for _, p := range a.Perms {
		if b.Has(p) {
			out.Perms = append(out.Perms, p)
		}
	}
	switch {
	case a.Sites == nil:
		out.Sites = slices.Clone(b.Sites)
	case b.Sites == nil:
		out.Sites = slices.Clone(a.Sites)
	default:
		out.Sites = []string{}
		for _, s := range a.Sites {
			if slices.Contains(b.Sites, s) {
				out.Sites = append(out.Sites, s)
			}
		}
	}
	if slices.Index(Roles, b.Role) < slices.Index(Roles, a.Role) {
		out.Role = a.Role
	}
	return out
}

// Account is an administrator as the API shows it (never with a password
// or its hash).
type Account struct {
	Name        string       `json:"name"`
	FullName    string       `json:"full_name,omitempty"`
	Reading     string       `json:"reading,omitempty"` // ISM 氏名(よみがな)
	Custom      []string     `json:"custom,omitempty"`  // ISM 任意項目1-5
	Email       string       `json:"email,omitempty"`
	Role        Role         `json:"role"`
	Permissions []Permission `json:"permissions,omitempty"` // site-operator only
	Sites       []string     `json:"sites,omitempty"`
	Disabled    bool         `json:"disabled,omitempty"`
	HasPassword bool         `json:"has_password"`
	TwoStep     bool         `json:"two_step"` // TOTP enrolled
	CreatedAt   time.Time    `json:"created_at"`
	UpdatedAt   time.Time    `json:"updated_at"`
	Rev         uint64       `json:"rev"` // Raft index of the last change
}

// Access is what the account may do.
func (a *Account) Access() Access { return AccessOf(a.Role, a.Permissions, a.Sites) }

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$`)
	siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
)

// ReservedName is kept from accounts so that it can only ever mean the
// break-glass admin token (the file it lives in) in messages.
const ReservedName = "admin-token"

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("account: invalid")

// ValidName reports whether s can name an account: 1-32 of A-Z, a-z, 0-9,
// '_', '.', '-' (the ISM limit is 32 alphanumerics), starting with a letter
// or digit.
func ValidName(s string) bool { return nameRE.MatchString(s) && !strings.EqualFold(s, ReservedName) }

// ValidSite reports whether s can name a site.
func ValidSite(s string) bool { return siteRE.MatchString(s) }

func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return fmt.Errorf("%w: %s: at most %d characters of UTF-8", ErrInvalid, field, max)
	}
	if strings.ContainsFunc(s, unicode.IsControl) {
		return fmt.Errorf("%w: %s: control characters are not allowed", ErrInvalid, field)
	}
	return nil
}

// Validate checks the fields a caller sets (not the timestamps).
func (a *Account) Validate() error {
	var errs []error
	if !ValidName(a.Name) {
		errs = append(errs, fmt.Errorf("%w: name %q: want 1-32 of A-Z, a-z, 0-9, '_', '.', '-' (and not %q)", ErrInvalid, a.Name, ReservedName))
	}
	errs = append(errs, checkText("full name", a.FullName, 64), checkText("reading", a.Reading, 64), checkText("e-mail", a.Email, 256))
	if a.Email != "" && !strings.Contains(a.Email, "@") {
		errs = append(errs, fmt.Errorf("%w: e-mail %q has no @", ErrInvalid, a.Email))
	}
	if len(a.Custom) > 5 {
		errs = append(errs, fmt.Errorf("%w: at most 5 custom fields", ErrInvalid))
	}
	for i, c := range a.Custom {
		errs = append(errs, checkText(fmt.Sprintf("custom field %d", i+1), c, 64))
	}
	if !ValidRole(a.Role) {
		errs = append(errs, fmt.Errorf("%w: role %q: want one of %v", ErrInvalid, a.Role, Roles))
	}
	for _, p := range a.Permissions {
		if !slices.Contains(OperatorPermissions, p) {
			errs = append(errs, fmt.Errorf("%w: permission %q: want some of %v", ErrInvalid, p, OperatorPermissions))
		}
	}
	if len(a.Permissions) > 0 && a.Role != RoleSiteOperator {
		errs = append(errs, fmt.Errorf("%w: permissions are for role %s only (%s has its own)", ErrInvalid, RoleSiteOperator, a.Role))
	}
	for _, s := range a.Sites {
		if !ValidSite(s) {
			errs = append(errs, fmt.Errorf("%w: site %q: want 1-63 of a-z, 0-9 and '-'", ErrInvalid, s))
		}
	}
	switch {
	case a.Role == RoleSiteOperator && len(a.Sites) == 0:
		errs = append(errs, fmt.Errorf("%w: a %s needs at least one site", ErrInvalid, RoleSiteOperator))
	case (a.Role == RoleSystemAdmin || a.Role == RoleAdminNoOplog) && len(a.Sites) > 0:
		errs = append(errs, fmt.Errorf("%w: role %s covers every site: give no sites", ErrInvalid, a.Role))
	}
	return errors.Join(errs...)
}

// Normalize sorts and de-duplicates the lists, so equal accounts encode
// equally.
func (a *Account) Normalize() {
	slices.Sort(a.Sites)
	a.Sites = slices.Compact(a.Sites)
	slices.Sort(a.Permissions)
	a.Permissions = slices.Compact(a.Permissions)
	for len(a.Custom) > 0 && a.Custom[len(a.Custom)-1] == "" {
		a.Custom = a.Custom[:len(a.Custom)-1]
	}
	if len(a.Custom) == 0 {
		a.Custom = nil
	}
	if len(a.Sites) == 0 {
		a.Sites = nil
	}
	if len(a.Permissions) == 0 {
		a.Permissions = nil
	}
}
