package console

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// browserPath is roughly what a browser makes of a Location value before
// resolving it (WHATWG URL): leading and trailing C0 controls and spaces
// trimmed, tabs and newlines removed, backslashes read as slashes.
func browserPath(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
	s = strings.NewReplacer("\t", "", "\n", "", "\r", "").Replace(s)
	return strings.ReplaceAll(s, `\`, "/")
}

// FuzzSafeNext: the login page's ?next= never redirects off the console: it
// is "/" or the value itself, and a browser reads that as a path on this
// host, never as //host or scheme:.
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/devices?q=pc", "/", "//evil.example", `/\evil.example`, "https://evil.example", "/\t/evil.example",
		"/\n/evil.example", "\t//evil.example", "/%2F/evil.example", "javascript:alert(1)", "", "/events#x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got != "/" && got != next {
			t.Fatalf("safeNext(%q) = %q", next, got)
		}
		if p := browserPath(got); !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
			t.Fatalf("safeNext(%q) = %q, which a browser reads as %q: off this host", next, got, p)
		}
	})
}

// TestSafeNext: the open-redirect cases (a tab or newline inside "//" is
// dropped by browsers, found by FuzzSafeNext).
func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/devices?q=pc":     "/devices?q=pc",
		"//evil.example":    "/",
		`/\evil.example`:    "/",
		"/\t/evil.example":  "/",
		"/\n/evil.example":  "/",
		"/\r\n/evil":        "/",
		"https://evil":      "/",
		"/events?sev=x#top": "/events?sev=x#top",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDiff: two revisions' payloads (device-supplied JSON, or not JSON at
// all) diff without panicking, in sorted unique path order, and a payload
// diffed with itself shows no change.
func FuzzDiff(f *testing.F) {
	f.Add([]byte(`{"hostname":"pc","hardware":{"interfaces":[{"mac":"a"}]}}`), []byte(`{"hostname":"pc2","hardware":{"interfaces":[]}}`))
	f.Add([]byte(`{}`), []byte(`[]`))
	f.Add([]byte(`not json`), []byte(``))
	f.Add([]byte(`{"a.b":1,"a":{"b":2}}`), []byte(`{"a":{"b":2}}`))
	f.Fuzz(func(t *testing.T, older, newer []byte) {
		out := Diff(json.RawMessage(older), json.RawMessage(newer))
		paths := make([]string, len(out))
		for i, l := range out {
			paths[i] = l.Path
			if !slices.Contains([]string{"", "+", "-", "~"}, l.Op) {
				t.Fatalf("op %q", l.Op)
			}
		}
		if !slices.IsSorted(paths) || len(slices.Compact(slices.Clone(paths))) != len(paths) {
			t.Fatalf("paths not sorted and unique: %q", paths)
		}
		for _, l := range Diff(json.RawMessage(older), json.RawMessage(older)) {
			if l.Op != "" {
				t.Fatalf("a payload differs from itself at %q", l.Path)
			}
		}
	})
}

// TestDiffDottedKeys: a key holding a dot (or nothing) gets a path of its
// own (found by FuzzDiff: {"a.b":1,"a":{"b":2}} differed from itself).
func TestDiffDottedKeys(t *testing.T) {
	doc := json.RawMessage(`{"a.b":1,"a":{"b":2},"":{"x":3},"x":4}`)
	for i := 0; i < 20; i++ {
		for _, l := range Diff(doc, doc) {
			if l.Op != "" {
				t.Fatalf("a payload differs from itself at %q", l.Path)
			}
		}
	}
	var paths []string
	for _, l := range Diff(doc, doc) {
		paths = append(paths, l.Path)
	}
	if want := []string{`[""].x`, `["a.b"]`, "a.b", "x"}; !slices.Equal(paths, want) {
		t.Fatalf("paths %q, want %q", paths, want)
	}
}
