package secret

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLoadOrCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin-token")
	tok, err := LoadOrCreate(path, "", NewToken)
	if err != nil || len(tok) != 32 {
		t.Fatalf("create: %q %v", tok, err)
	}
	again, err := LoadOrCreate(path, "", NewToken)
	if err != nil || again != tok {
		t.Fatalf("reload = %q %v, want %q", again, err, tok)
	}
	if _, err := LoadOrCreate(path, "other", NewToken); err == nil {
		t.Fatal("a different given token must be refused")
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, %v; want 0600", st.Mode(), err)
	}
	given, err := LoadOrCreate(filepath.Join(t.TempDir(), "t"), "fixed", NewToken)
	if err != nil || given != "fixed" {
		t.Fatalf("given = %q %v", given, err)
	}
}

// TestLoadOrCreateEmptyFile: an empty or blank token file is an error, not
// an empty token (found by FuzzLoadOrCreate: every admin request would then
// be refused with no hint why).
func TestLoadOrCreateEmptyFile(t *testing.T) {
	for name, content := range map[string]string{"empty": "", "blank": " \n\t"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if tok, err := LoadOrCreate(path, "", NewToken); err == nil {
				t.Fatalf("LoadOrCreate = %q, nil; want an error", tok)
			}
		})
	}
}
