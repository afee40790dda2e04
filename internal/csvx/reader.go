package csvx

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// ErrNotISM is returned by ReadISM for input that is not UTF-16LE with a
// BOM (the product refuses such a file with "an error occurred while
// uploading the file").
var ErrNotISM = errors.New("csvx: not an ISM CSV (want UTF-16LE with a BOM)")

// ReadISM reads a whole file in the ISM dialect (UTF-16LE with BOM, tab
// separated, quoted, CRLF) of at most max bytes and returns its rows,
// header included. Unpaired surrogates become U+FFFD.
func ReadISM(r io.Reader, max int64) ([][]string, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("read ISM CSV: %w", err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("csvx: ISM CSV larger than %d bytes", max)
	}
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xFE || len(b)%2 != 0 {
		return nil, ErrNotISM
	}
	u := make([]uint16, 0, len(b)/2-1)
	for i := 2; i+1 < len(b); i += 2 {
		u = append(u, uint16(b[i])|uint16(b[i+1])<<8)
	}
	text := string(utf16.Decode(u))
	if strings.ContainsRune(text, 0) {
		return nil, fmt.Errorf("%w: NUL character", ErrNotISM)
	}
	cr := csv.NewReader(bytes.NewReader([]byte(text)))
	cr.Comma = '\t'
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse ISM CSV: %w", err)
	}
	return rows, nil
}
