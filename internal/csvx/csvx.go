package csvx

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// Encoding names accepted by NewWriter.
const (
	UTF16LE = "utf-16le" // the ISM dialect
	UTF8    = "utf-8"
)

// Writer writes rows; Flush must be called at the end.
type Writer interface {
	Write(row []string) error
	Flush() error
}

// NewWriter returns a writer for encoding (UTF16LE or UTF8).
func NewWriter(w io.Writer, encoding string) (Writer, error) {
	switch strings.ToLower(encoding) {
	case UTF16LE, "utf16le", "utf-16":
		return &ismWriter{w: bufio.NewWriter(w)}, nil
	case UTF8, "utf8", "":
		return &utf8Writer{w: csv.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("csvx: unknown encoding %q (want utf-16le or utf-8)", encoding)
}

type ismWriter struct {
	w   *bufio.Writer
	bom bool
}

func (x *ismWriter) put(s string) {
	for _, u := range utf16.Encode([]rune(s)) { // invalid UTF-8 becomes U+FFFD
		x.w.Write([]byte{byte(u), byte(u >> 8)})
	}
}

// Write writes one row: "f1"\t"f2"...\r\n, quotes doubled.
func (x *ismWriter) Write(row []string) error {
	if !x.bom {
		x.w.Write([]byte{0xFF, 0xFE})
		x.bom = true
	}
	for i, f := range row {
		if i > 0 {
			x.put("\t")
		}
		x.put(`"` + strings.ReplaceAll(f, `"`, `""`) + `"`)
	}
	x.put("\r\n")
	return nil
}

func (x *ismWriter) Flush() error {
	if !x.bom { // an empty file still carries its BOM
		x.w.Write([]byte{0xFF, 0xFE})
		x.bom = true
	}
	return x.w.Flush()
}

type utf8Writer struct{ w *csv.Writer }

func (x *utf8Writer) Write(row []string) error { return x.w.Write(row) }
func (x *utf8Writer) Flush() error             { x.w.Flush(); return x.w.Error() }
