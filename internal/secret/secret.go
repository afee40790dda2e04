package secret

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strings"
)

// NewToken returns 24 random bytes, base64url without padding.
func NewToken() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// LoadOrCreate returns the token saved at path. When there is none it saves
// and returns given, or gen() when given is empty. A given token that differs
// from the saved one is an error: silently replacing it would lock out every
// holder of the old one.
func LoadOrCreate(path, given string, gen func() string) (string, error) {
	if b, err := os.ReadFile(path); err == nil {
		saved := strings.TrimSpace(string(b))
		if saved == "" {
			return "", fmt.Errorf("%s holds no token: remove it to create a new one", path)
		}
		if given != "" && given != saved {
			return "", fmt.Errorf("%s holds a different token than the one given", path)
		}
		return saved, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	tok := given
	if tok == "" {
		tok = gen()
	}
	if err := WriteFile(path, []byte(tok+"\n")); err != nil {
		return "", err
	}
	return tok, nil
}

// WriteFile writes data with mode 0600 atomically: temp file, fsync, rename.
func WriteFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}
