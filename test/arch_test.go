package test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps DESIGN.md §4 true: cmd → relay, central,
// offline, collector → sync/*, internal/*; relay and central never import
// each other; sync/* imports neither; internal/* imports no top-level package.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/edgesync/edgesync/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	top := func(p string) string {
		p = strings.TrimPrefix(p, mod)
		if i := strings.IndexByte(p, '/'); i >= 0 {
			return p[:i]
		}
		return p
	}
	forbidden := map[string][]string{
		"relay":     {"central", "cmd", "localnet", "test"},
		"central":   {"relay", "cmd", "localnet", "test"},
		"sync":      {"relay", "central", "offline", "collector", "cmd", "localnet", "test"},
		"internal":  {"relay", "central", "offline", "collector", "sync", "cmd", "localnet", "test"},
		"collector": {"relay", "central", "cmd", "localnet", "test"},
		"offline":   {"relay", "central", "cmd", "localnet", "test"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		if !strings.HasPrefix(pkg, mod) {
			continue
		}
		for _, dep := range f[1:] {
			if !strings.HasPrefix(dep, mod) {
				continue
			}
			for _, bad := range forbidden[top(pkg)] {
				if top(dep) == bad {
					t.Errorf("%s imports %s: %s must not depend on %s", pkg, dep, top(pkg), bad)
				}
			}
		}
	}
}
