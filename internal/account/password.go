package account

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password policy: length in characters (code points).
const (
	MinPasswordLength = 12
	MaxPasswordLength = 128
)

// The argon2id parameters of new hashes (OWASP's minimum for argon2id:
// 19 MiB, 2 passes, 1 lane). Stored hashes carry their own parameters, so
// these can rise without invalidating existing passwords.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024 // KiB
	argonThreads = 1
	argonKeyLen  = 32
	saltLen      = 16
)

// ErrPasswordPolicy is returned for a password the policy refuses.
var ErrPasswordPolicy = errors.New("account: password does not meet the policy")

// ErrBadHash is returned by Verify for a stored hash it cannot parse.
var ErrBadHash = errors.New("account: unparsable password hash")

// CheckPassword applies the policy: MinPasswordLength to MaxPasswordLength
// characters of valid UTF-8 with no control characters.
func CheckPassword(pw string) error {
	if !utf8.ValidString(pw) {
		return fmt.Errorf("%w: not valid UTF-8", ErrPasswordPolicy)
	}
	n := utf8.RuneCountInString(pw)
	if n < MinPasswordLength || n > MaxPasswordLength {
		return fmt.Errorf("%w: want %d to %d characters, got %d", ErrPasswordPolicy, MinPasswordLength, MaxPasswordLength, n)
	}
	for _, r := range pw {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: control characters are not allowed", ErrPasswordPolicy)
		}
	}
	return nil
}

// HashPassword checks pw against the policy and returns its argon2id hash in
// the PHC string format ($argon2id$v=19$m=..,t=..,p=..$salt$key), with a
// fresh random salt.
func HashPassword(pw string) (string, error) {
	if err := CheckPassword(pw); err != nil {
		return "", err
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the stored hash, in constant
// time with respect to the key. An empty hash (an account with no password
// set) matches nothing.
func VerifyPassword(hash, pw string) (bool, error) {
	if hash == "" {
		return false, nil
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, ErrBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, ErrBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m == 0 || m > 1<<20 || t == 0 || t > 16 || p == 0 {
		return false, ErrBadHash
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	key, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(salt) < 8 || len(key) < 16 || len(key) > 64 {
		return false, ErrBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}
