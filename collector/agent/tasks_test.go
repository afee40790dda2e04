package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/collector/api"
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

// TestExecuteTask_RefusesANonHashName: the package hash names the download
// file, so a hash that is not 64 hex characters fails the task and writes
// nothing, wherever it points.
func TestExecuteTask_RefusesANonHashName(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	dir := t.TempDir()
	a := newTestAgent(t, dir, s, srv.URL)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	for _, sum := range []string{"../../escape", "/etc/passwd", "", strings.Repeat("A", 64), strings.Repeat("a", 63) + "/"} {
		a.executeTask(context.Background(), api.Task{ID: "t-bad", Package: api.TaskPackage{ID: "p1", SHA256: sum, Size: 1}})
	}
	if _, err := os.Stat(filepath.Join(dir, "downloads")); !os.IsNotExist(err) {
		t.Fatalf("downloads dir exists after refused hashes (%v)", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "escape.part")); !os.IsNotExist(err) {
		t.Fatal("a file was written outside the state dir")
	}
}
