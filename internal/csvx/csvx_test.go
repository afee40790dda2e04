package csvx

import (
	"bytes"
	"testing"
	"unicode/utf16"
)

func decodeUTF16LE(t *testing.T, b []byte) string {
	t.Helper()
	if len(b) < 2 || b[0] != 0xFF || b[1] != 0xFE {
		t.Fatalf("no UTF-16LE BOM: % x", b[:min(4, len(b))])
	}
	b = b[2:]
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
	}
	return string(utf16.Decode(u))
}

func TestWriter(t *testing.T) {
	tests := []struct {
		name     string
		encoding string
		rows     [][]string
		want     string
	}{
		{"ism header and rows", UTF16LE, [][]string{{"Host Name", "Serial #"}, {"pc-1", "X1"}}, "\"Host Name\"\t\"Serial #\"\r\n\"pc-1\"\t\"X1\"\r\n"},
		{"ism quotes doubled", UTF16LE, [][]string{{`a"`, `say "hi"`}}, "\"a\"\"\"\t\"say \"\"hi\"\"\"\r\n"},
		{"ism tabs and newlines kept inside quotes", UTF16LE, [][]string{{"a\tb", "c\nd"}}, "\"a\tb\"\t\"c\nd\"\r\n"},
		{"ism non-BMP and Japanese", UTF16LE, [][]string{{"端末", "😀"}}, "\"端末\"\t\"😀\"\r\n"},
		{"ism empty field", UTF16LE, [][]string{{"", "x"}}, "\"\"\t\"x\"\r\n"},
		{"ism no rows is just the BOM", UTF16LE, nil, ""},
		{"utf8 plain", UTF8, [][]string{{"a", "b,c", `d"e`}}, "a,\"b,c\",\"d\"\"e\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, tt.encoding)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.rows {
				if err := w.Write(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Flush(); err != nil {
				t.Fatal(err)
			}
			got := buf.String()
			if tt.encoding == UTF16LE {
				got = decodeUTF16LE(t, buf.Bytes())
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if _, err := NewWriter(&bytes.Buffer{}, "latin1"); err == nil {
		t.Error("unknown encoding accepted")
	}
}
