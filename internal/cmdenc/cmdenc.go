package cmdenc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// ErrShort is returned when a command ends before its declared contents.
var ErrShort = errors.New("cmdenc: truncated command")

// MaxField caps any single length-prefixed field so a corrupt length cannot
// make the decoder allocate without bound.
const MaxField = 64 << 20

// Writer appends encoded fields to a byte slice.
type Writer struct {
	buf []byte
}

// NewWriter starts a command of type t at version v.
func NewWriter(t, v byte, sizeHint int) *Writer {
	w := &Writer{buf: make([]byte, 0, sizeHint+2)}
	w.buf = append(w.buf, t, v)
	return w
}

// Uint appends an unsigned varint.
func (w *Writer) Uint(v uint64) { w.buf = binary.AppendUvarint(w.buf, v) }

// Bytes appends a length-prefixed byte string.
func (w *Writer) Bytes(b []byte) {
	w.Uint(uint64(len(b)))
	w.buf = append(w.buf, b...)
}

// String appends a length-prefixed string.
func (w *Writer) String(s string) {
	w.Uint(uint64(len(s)))
	w.buf = append(w.buf, s...)
}

// Time appends t as Unix nanoseconds (zero time encodes as 0).
func (w *Writer) Time(t time.Time) {
	if t.IsZero() {
		w.Uint(0)
		return
	}
	w.Uint(uint64(t.UnixNano()))
}

// Len is the encoded size so far.
func (w *Writer) Len() int { return len(w.buf) }

// Done returns the encoded command.
func (w *Writer) Done() []byte { return w.buf }

// Reader decodes fields written by Writer. The first error sticks; callers
// check Err once at the end.
type Reader struct {
	buf []byte
	err error
}

// NewReader splits cmd into its type, version and a reader over its body.
func NewReader(cmd []byte) (t, v byte, r *Reader, err error) {
	if len(cmd) < 2 {
		return 0, 0, nil, ErrShort
	}
	return cmd[0], cmd[1], &Reader{buf: cmd[2:]}, nil
}

// Uint reads an unsigned varint.
func (r *Reader) Uint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.err = ErrShort
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// Bytes reads a length-prefixed byte string. The result aliases the command.
func (r *Reader) Bytes() []byte {
	n := r.Uint()
	if r.err != nil {
		return nil
	}
	if n > MaxField || n > uint64(len(r.buf)) {
		r.err = fmt.Errorf("%w: field of %d bytes, %d left", ErrShort, n, len(r.buf))
		return nil
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b
}

// String reads a length-prefixed string.
func (r *Reader) String() string { return string(r.Bytes()) }

// Time reads a time written by Writer.Time.
func (r *Reader) Time() time.Time {
	n := r.Uint()
	if n == 0 || r.err != nil {
		return time.Time{}
	}
	return time.Unix(0, int64(n)).UTC()
}

// Count reads a collection length and checks it against a cap.
func (r *Reader) Count(max int) int {
	n := r.Uint()
	if r.err == nil && n > uint64(max) {
		r.err = fmt.Errorf("cmdenc: count %d exceeds %d", n, max)
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}

// Err is the first decoding error, or ErrShort-wrapped trailing garbage is
// not reported: versions may append fields.
func (r *Reader) Err() error { return r.err }
