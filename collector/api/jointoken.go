package api

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// joinTokenPrefix versions the token format.
const joinTokenPrefix = "esj1"

// JoinToken lets a new agent enroll with one site: it names the site, carries
// a secret the relays know by hash, and pins the CA the relays' certificates
// chain to, so the first connection is authenticated both ways.
type JoinToken struct {
	Site          string
	Secret        string `json:"-"`
	CAFingerprint string // hex SHA-256 of the CA certificate's DER
}

// ValidSiteID reports whether s can name a site: 1-64 characters from
// [A-Za-z0-9_-].
func ValidSiteID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// NewJoinToken makes a token for site with a fresh 32-byte secret.
// caFingerprint is normalised to lowercase hex without separators. site must
// satisfy ValidSiteID for String to round-trip through ParseJoinToken.
func NewJoinToken(site, caFingerprint string) JoinToken {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return JoinToken{
		Site:          site,
		Secret:        base64.RawURLEncoding.EncodeToString(b[:]),
		CAFingerprint: NormalizeFingerprint(caFingerprint),
	}
}

// NormalizeFingerprint lowercases a hex fingerprint and drops ':' separators.
func NormalizeFingerprint(fp string) string {
	return strings.ToLower(strings.ReplaceAll(fp, ":", ""))
}

// String returns "esj1.<site>.<secret>.<ca-fingerprint>".
func (t JoinToken) String() string {
	return joinTokenPrefix + "." + t.Site + "." + t.Secret + "." + t.CAFingerprint
}

// SecretHash is the hex SHA-256 of the secret: what relays store and compare
// against, so the secret itself is never at rest on a relay.
func (t JoinToken) SecretHash() string {
	h := sha256.Sum256([]byte(t.Secret))
	return hex.EncodeToString(h[:])
}

// Matches reports, in constant time, whether t's secret has the given hash.
func (t JoinToken) Matches(secretHash string) bool {
	return subtle.ConstantTimeCompare([]byte(t.SecretHash()), []byte(secretHash)) == 1
}

// ParseJoinToken parses the String form strictly. Errors match
// ErrInvalidJoinToken.
func ParseJoinToken(s string) (JoinToken, error) {
	bad := func(why string) (JoinToken, error) {
		return JoinToken{}, fmt.Errorf("%w: %s", ErrInvalidJoinToken, why)
	}
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) != 4 {
		return bad("want 4 dot-separated parts")
	}
	if parts[0] != joinTokenPrefix {
		return bad("unknown version prefix")
	}
	if !ValidSiteID(parts[1]) {
		return bad("bad site id")
	}
	secret, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil || len(secret) != 32 {
		return bad("secret must be 32 bytes, base64url without padding")
	}
	fp := parts[3]
	if len(fp) != 64 || strings.ToLower(fp) != fp {
		return bad("CA fingerprint must be 64 lowercase hex characters")
	}
	if _, err := hex.DecodeString(fp); err != nil {
		return bad("CA fingerprint must be 64 lowercase hex characters")
	}
	return JoinToken{Site: parts[1], Secret: parts[2], CAFingerprint: fp}, nil
}
