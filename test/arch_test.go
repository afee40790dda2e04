package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
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

// TestCmdHoldsNoLogic keeps cmd/ a thin layer of flags, requests and
// printing: storage, consensus, the QUIC link and compression live in the
// packages below it, so cmd/ imports none of them.
func TestCmdHoldsNoLogic(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "../cmd/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{"github.com/dgraph-io/badger", "github.com/hashicorp/raft", "github.com/quic-go/", "github.com/klauspost/compress", "net"}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		for _, imp := range f[1:] {
			for _, b := range banned {
				if imp == b || (strings.HasSuffix(b, "/") || strings.Contains(b, ".")) && strings.HasPrefix(imp, b) {
					t.Errorf("%s imports %s: that logic belongs in a package below cmd/", f[0], imp)
				}
			}
		}
	}
}

// TestEveryPackageHasDoc: each package says what it is for in its doc.go,
// starting "Package NAME" (or "Command NAME" for a main package).
func TestEveryPackageHasDoc(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.Dir}} {{.Name}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		dir, name, _ := strings.Cut(line, " ")
		b, err := os.ReadFile(filepath.Join(dir, "doc.go"))
		if err != nil {
			t.Errorf("%s: no doc.go saying what package %s is for", dir, name)
			continue
		}
		want := "// Package " + name + " "
		if name == "main" {
			want = "// Command "
		}
		if !strings.HasPrefix(string(b), want) {
			t.Errorf("%s/doc.go does not open with %q", dir, want)
		}
	}
}

// TestNoLongFiles: no non-test source file over 800 lines; a file that
// grows past that holds two things and wants splitting.
func TestNoLongFiles(t *testing.T) {
	const limit = 800
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "artifacts" || strings.HasPrefix(d.Name(), ".")) && path != ".." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if n := bytes.Count(b, []byte("\n")); n > limit {
			t.Errorf("%s: %d lines, over %d: split it by what it does", path, n, limit)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestArchitecturePictureIsCurrent: docs/architecture.svg was made from
// the docs/architecture.dot in the tree (`make docs` stamps the source's
// hash into the picture).
func TestArchitecturePictureIsCurrent(t *testing.T) {
	dot, err := os.ReadFile("../docs/architecture.dot")
	if err != nil {
		t.Fatal(err)
	}
	svg, err := os.ReadFile("../docs/architecture.svg")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(dot)
	if want := "<!-- source architecture.dot sha256 " + hex.EncodeToString(sum[:]) + " -->"; !bytes.Contains(svg, []byte(want)) {
		t.Errorf("docs/architecture.svg is older than docs/architecture.dot: run make docs")
	}
	for _, folder := range []string{"cmd/edgesync", "relay", "central", "sync/uplink", "sync/ingest", "sync/wire", "offline", "collector/agent", "collector/api", "internal/node", "internal/raftnode"} {
		if !bytes.Contains(dot, []byte(folder)) {
			t.Errorf("docs/architecture.dot does not show %s", folder)
		}
	}
}
