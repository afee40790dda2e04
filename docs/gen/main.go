// Command gen renders docs/architecture.dot to docs/architecture.svg with
// Graphviz compiled to WebAssembly (github.com/goccy/go-graphviz), so the
// picture is made from its text source on any machine with Go and no
// Graphviz installed. It is its own module so the product does not depend
// on it. Run it with `make docs`.
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goccy/go-graphviz"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: gen SOURCE.dot OUT.svg")
		os.Exit(2)
	}
	if err := render(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func render(src, out string) error {
	dot, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	ctx := context.Background()
	g, err := graphviz.New(ctx)
	if err != nil {
		return err
	}
	defer g.Close()
	graph, err := graphviz.ParseBytes(dot)
	if err != nil {
		return fmt.Errorf("%s: %w", src, err)
	}
	defer graph.Close()
	var svg bytes.Buffer
	if err := g.Render(ctx, graph, graphviz.SVG, &svg); err != nil {
		return err
	}
	// The source's hash goes into the picture: test/arch_test.go compares it
	// with the .dot file, so a changed source without a new picture fails.
	sum := sha256.Sum256(dot)
	// It goes after the XML declaration, which must come first.
	stamp := fmt.Sprintf("<!-- source %s sha256 %s -->\n", filepath.Base(src), hex.EncodeToString(sum[:]))
	b := svg.Bytes()
	i := bytes.Index(b, []byte("<svg"))
	if i < 0 {
		return fmt.Errorf("graphviz wrote no <svg> element")
	}
	b = append(append(append([]byte{}, b[:i]...), stamp...), b[i:]...)
	return os.WriteFile(out, b, 0o644)
}
