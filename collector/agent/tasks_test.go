package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// TestPlaceFile_Mode: a placed file gets the package's mode, 0644 when it
// declares none (not the 0600 of the temporary file it is written through).
func TestPlaceFile_Mode(t *testing.T) {
	src := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(src, []byte("package bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, mode string
		want       os.FileMode
	}{
		{"default", "", 0o644},
		{"executable", "0755", 0o755},
		{"three digits", "750", 0o750},
		{"private", "0600", 0o600},
		{"invalid falls back to the default", "u+x", 0o644},
		{"beyond permission bits falls back", "4755", 0o644},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := filepath.Join(t.TempDir(), "sub", "tool")
			if err := placeFile(src, dst, fileMode(tt.mode)); err != nil {
				t.Fatalf("placeFile: %v", err)
			}
			fi, err := os.Stat(dst)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != tt.want {
				t.Fatalf("mode %v, want %v", fi.Mode().Perm(), tt.want)
			}
			if b, _ := os.ReadFile(dst); string(b) != "package bytes" {
				t.Fatalf("placed bytes %q", b)
			}
		})
	}
}
