package record

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
)

// tokenCheckStrings is the reference: walk every string token with the
// standard decoder. checkStrings must agree with it on all valid JSON.
func tokenCheckStrings(p []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(p))
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return true
		}
		if s, ok := tok.(string); ok {
			for _, r := range s {
				if isControl(r) {
					return false
				}
			}
		}
	}
}

func TestCheckStrings(t *testing.T) {
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"plain", `{"a":"b c","n":[1,2,{"x":"y"}]}`, true},
		{"tab newline cr allowed", `{"a":"x\ty\nz\r"}`, true},
		{"escaped bell", `{"a":"x\u0007"}`, false},
		{"escaped in key", `{"\u0001":"x"}`, false},
		{"backspace escape", `{"a":"\b"}`, false},
		{"form feed escape", `{"a":"\f"}`, false},
		{"escaped backslash then u", `{"a":"\\u0007"}`, true},
		{"raw DEL", "{\"a\":\"x\x7f\"}", false},
		{"escaped DEL", `{"a":"\u007f"}`, false},
		{"raw C1", "{\"a\":\"x\u0085\"}", false},
		{"escaped C1", `{"a":"\u009b"}`, false},
		{"latin-1 ok", `{"a":"é ñ ¡"}`, true},
		{"surrogate pair ok", `{"a":"\ud83d\ude00"}`, true},
		{"whitespace between tokens", "{\n\t\"a\" :\r\n \"b\"}", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !json.Valid([]byte(tt.in)) {
				t.Fatalf("test input is not valid JSON")
			}
			err := checkStrings([]byte(tt.in))
			if (err == nil) != tt.ok {
				t.Fatalf("checkStrings = %v, want ok %v", err, tt.ok)
			}
			if ref := tokenCheckStrings([]byte(tt.in)); ref != tt.ok {
				t.Fatalf("reference = %v, want %v", ref, tt.ok)
			}
		})
	}
}

func FuzzCheckStrings(f *testing.F) {
	for _, s := range []string{`{"a":"\u0007"}`, `{"a":"\\u0007"}`, "{\"a\":\"\x7f\"}", `{"a":"\b\f\t"}`, `["\u0085","ok"]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, p []byte) {
		if !json.Valid(p) {
			return
		}
		if got, want := checkStrings(p) == nil, tokenCheckStrings(p); got != want {
			t.Fatalf("checkStrings ok=%v, token walk ok=%v for %q", got, want, p)
		}
	})
}

func BenchmarkCheckStrings(b *testing.B) {
	inv, _ := json.Marshal(Inventory{Hostname: "pc-001", OS: OS{Name: "Debian GNU/Linux", Version: "12"},
		Software: []Software{{Name: "openssl", Version: "3.0.11"}, {Name: "bash", Version: "5.2"}, {Name: "coreutils", Version: "9.1"}}})
	b.Run("byte-scan", func(b *testing.B) {
		b.SetBytes(int64(len(inv)))
		for b.Loop() {
			checkStrings(inv)
		}
	})
	b.Run("token-walk-baseline", func(b *testing.B) {
		b.SetBytes(int64(len(inv)))
		for b.Loop() {
			tokenCheckStrings(inv)
		}
	})
}
