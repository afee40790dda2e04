package secret

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadOrCreate: whatever a token file holds, LoadOrCreate never
// returns an empty token without an error, refuses a given token that
// differs from the saved one, and never rewrites an existing file.
func FuzzLoadOrCreate(f *testing.F) {
	tok := NewToken()
	for _, s := range [][2]string{{tok + "\n", ""}, {tok + "\n", tok}, {tok, "other"}, {"", ""}, {" \n\t", ""}, {"\n", "given"}, {"a b\n", ""}} {
		f.Add([]byte(s[0]), s[1])
	}
	f.Fuzz(func(t *testing.T, content []byte, given string) {
		path := filepath.Join(t.TempDir(), "token")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := LoadOrCreate(path, given, func() string { t.Fatal("gen called for an existing file"); return "" })
		if after, _ := os.ReadFile(path); !bytes.Equal(after, content) {
			t.Fatalf("existing token file rewritten: %q -> %q", content, after)
		}
		if err != nil {
			return
		}
		saved := strings.TrimSpace(string(content))
		if got == "" {
			t.Fatalf("empty token from %q without an error", content)
		}
		if got != saved || (given != "" && given != saved) {
			t.Fatalf("LoadOrCreate(%q, given %q) = %q", content, given, got)
		}
	})
}
