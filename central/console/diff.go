package console

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// DiffLine is one field of an inventory diff: Op is "" (same), "+" (only in
// the newer revision), "-" (only in the older) or "~" (changed).
type DiffLine struct {
	Op   string
	Path string
	Old  string
	New  string
}

// Diff compares two inventory payloads field by field (JSON paths such as
// hardware.interfaces[0].mac), in path order. Unchanged fields are kept so
// the page can show context; the template hides them by default.
func Diff(older, newer json.RawMessage) []DiffLine {
	a, b := map[string]string{}, map[string]string{}
	flatten("", decode(older), a)
	flatten("", decode(newer), b)
	paths := make([]string, 0, len(a)+len(b))
	for p := range a {
		paths = append(paths, p)
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			paths = append(paths, p)
		}
	}
	slices.Sort(paths)
	out := make([]DiffLine, 0, len(paths))
	for _, p := range paths {
		va, inA := a[p]
		vb, inB := b[p]
		l := DiffLine{Path: p, Old: va, New: vb}
		switch {
		case !inA:
			l.Op = "+"
		case !inB:
			l.Op = "-"
		case va != vb:
			l.Op = "~"
		}
		out = append(out, l)
	}
	return out
}

func decode(b json.RawMessage) any {
	var v any
	if len(b) == 0 || json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	return v
}

func flatten(prefix string, v any, out map[string]string) {
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			out[prefix] = "{}"
		}
		for k, x := range t {
			var p string
			switch {
			case k == "" || strings.ContainsAny(k, `.[]"`):
				// {"a.b":1} and {"a":{"b":1}} must not both be a.b: the
				// winner would depend on map order.
				p = prefix + "[" + strconv.Quote(k) + "]"
			case prefix == "":
				p = k
			default:
				p = prefix + "." + k
			}
			flatten(p, x, out)
		}
	case []any:
		if len(t) == 0 {
			out[prefix] = "[]"
		}
		for i, x := range t {
			flatten(prefix+"["+strconv.Itoa(i)+"]", x, out)
		}
	default:
		b, _ := json.Marshal(t)
		out[prefix] = string(b)
	}
}
