package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Role is the role a certificate grants its holder.
type Role string

// Roles.
const (
	RoleCentral Role = "central"
	RoleRelay   Role = "relay"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleCentral || r == RoleRelay }

// siteURIScheme and siteURIHost form the URI SAN that carries a relay's site: edgesync://site/<site>.
const (
	siteURIScheme = "edgesync"
	siteURIHost   = "site"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// ValidName reports whether s is a valid node or site name: [a-z0-9][a-z0-9-]{0,62}.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// Identity is who a certificate says its holder is.
type Identity struct {
	Role Role   `json:"role"`
	Name string `json:"name"`
	Site string `json:"site,omitempty"`
}

func (id Identity) validate() error {
	if !id.Role.Valid() {
		return fmt.Errorf("role %q: %w", id.Role, ErrInvalidRequest)
	}
	if !ValidName(id.Name) {
		return fmt.Errorf("name %q: %w", id.Name, ErrInvalidRequest)
	}
	switch id.Role {
	case RoleRelay:
		if !ValidName(id.Site) {
			return fmt.Errorf("relay site %q: %w", id.Site, ErrInvalidRequest)
		}
	case RoleCentral:
		if id.Site != "" {
			return fmt.Errorf("central must not have a site: %w", ErrInvalidRequest)
		}
	}
	return nil
}

func siteURI(site string) *url.URL {
	return &url.URL{Scheme: siteURIScheme, Host: siteURIHost, Path: "/" + site}
}

// IdentityFromCert extracts and validates the edgesync identity of a leaf certificate. It does not
// verify the certificate chain; callers use it on certificates TLS has already verified.
func IdentityFromCert(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, fmt.Errorf("nil certificate: %w", ErrNoIdentity)
	}
	if len(c.Subject.OrganizationalUnit) != 1 {
		return Identity{}, fmt.Errorf("want exactly one OU, got %d: %w", len(c.Subject.OrganizationalUnit), ErrNoIdentity)
	}
	id := Identity{Role: Role(c.Subject.OrganizationalUnit[0]), Name: c.Subject.CommonName}
	for _, u := range c.URIs {
		if u.Scheme != siteURIScheme || u.Host != siteURIHost {
			continue
		}
		if id.Site != "" {
			return Identity{}, fmt.Errorf("more than one site URI: %w", ErrNoIdentity)
		}
		id.Site = strings.TrimPrefix(u.Path, "/")
		if id.Site == "" {
			return Identity{}, fmt.Errorf("empty site URI: %w", ErrNoIdentity)
		}
	}
	if err := id.validate(); err != nil {
		return Identity{}, fmt.Errorf("%w: %w", ErrNoIdentity, err)
	}
	return id, nil
}
