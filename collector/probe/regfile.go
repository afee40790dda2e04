package probe

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// regKey is one registry key with its values, as the live probe reads it
// or as a regedit export (.reg) holds it. Tests use exports captured on
// real PCs as fixtures.
type regKey struct {
	Path   string              `json:"path"`
	Values map[string]regValue `json:"values"`
}

// regValue is one registry value. Kind is "sz", "expand_sz", "multi_sz",
// "dword", "qword" or "binary"; strings are in Str (multi_sz joined with
// "\n"), numbers in Num.
type regValue struct {
	Kind string `json:"kind"`
	Str  string `json:"str,omitempty"`
	Num  uint64 `json:"num,omitempty"`
}

// String returns the value as text: the string, or the number in decimal.
func (v regValue) String() string {
	switch v.Kind {
	case "dword", "qword":
		return strconv.FormatUint(v.Num, 10)
	case "binary":
		return ""
	}
	return v.Str
}

// Limits for parseRegExport, well above a real Uninstall export (a PC with
// 500 programs exports about 1 MB).
const (
	maxRegExportBytes = 32 << 20
	maxRegKeys        = 100_000
	maxRegValueBytes  = 1 << 20
)

var errRegExport = errors.New("probe: bad registry export")

// parseRegExport reads a regedit export ("Windows Registry Editor Version
// 5.00"), UTF-16LE with a BOM as regedit writes it or UTF-8.
func parseRegExport(b []byte) ([]regKey, error) {
	if len(b) > maxRegExportBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errRegExport, len(b), maxRegExportBytes)
	}
	text, err := decodeRegText(b)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "Windows Registry Editor Version 5.00" {
		return nil, fmt.Errorf("%w: no \"Windows Registry Editor Version 5.00\" header", errRegExport)
	}
	var keys []regKey
	var cur *regKey
	for i := 1; i < len(lines); i++ {
		line := strings.TrimSpace(lines[i])
		// A hex value continues on the next line after a trailing backslash.
		for strings.HasSuffix(line, "\\") && strings.Contains(line, "=hex") && i+1 < len(lines) {
			i++
			line = line[:len(line)-1] + strings.TrimSpace(lines[i])
			if len(line) > 3*maxRegValueBytes {
				return nil, fmt.Errorf("%w: line %d: value over %d bytes", errRegExport, i+1, maxRegValueBytes)
			}
		}
		switch {
		case line == "" || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("%w: line %d: unterminated key", errRegExport, i+1)
			}
			if len(keys) == maxRegKeys {
				return nil, fmt.Errorf("%w: more than %d keys", errRegExport, maxRegKeys)
			}
			keys = append(keys, regKey{Path: line[1 : len(line)-1], Values: map[string]regValue{}})
			cur = &keys[len(keys)-1]
		default:
			if cur == nil {
				return nil, fmt.Errorf("%w: line %d: value before any key", errRegExport, i+1)
			}
			name, val, err := parseRegValueLine(line)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", errRegExport, i+1, err)
			}
			cur.Values[name] = val
		}
	}
	return keys, nil
}

func decodeRegText(b []byte) (string, error) {
	if len(b) >= 2 && b[0] == 0xff && b[1] == 0xfe {
		b = b[2:]
		if len(b)%2 != 0 {
			return "", fmt.Errorf("%w: odd UTF-16 length", errRegExport)
		}
		u := make([]uint16, len(b)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(b[2*i:])
		}
		return string(utf16.Decode(u)), nil
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if !utf8.Valid(b) {
		return "", fmt.Errorf("%w: neither UTF-16LE with BOM nor UTF-8", errRegExport)
	}
	return string(b), nil
}

// parseRegValueLine parses `"Name"=data` or `@=data`.
func parseRegValueLine(line string) (string, regValue, error) {
	var name, rest string
	if strings.HasPrefix(line, "@=") {
		rest = line[2:]
	} else {
		n, r, err := regQuoted(line)
		if err != nil {
			return "", regValue{}, fmt.Errorf("value name: %v", err)
		}
		if !strings.HasPrefix(r, "=") {
			return "", regValue{}, errors.New("no = after the value name")
		}
		name, rest = n, r[1:]
	}
	switch {
	case strings.HasPrefix(rest, `"`):
		s, tail, err := regQuoted(rest)
		if err != nil {
			return "", regValue{}, err
		}
		if tail != "" {
			return "", regValue{}, errors.New("text after the string value")
		}
		return name, regValue{Kind: "sz", Str: s}, nil
	case strings.HasPrefix(rest, "dword:"):
		n, err := strconv.ParseUint(rest[6:], 16, 32)
		if err != nil {
			return "", regValue{}, fmt.Errorf("dword: %v", err)
		}
		return name, regValue{Kind: "dword", Num: n}, nil
	case strings.HasPrefix(rest, "hex"):
		typ, data, ok := strings.Cut(rest, ":")
		if !ok {
			return "", regValue{}, errors.New("hex value without ':'")
		}
		raw, err := regHex(data)
		if err != nil {
			return "", regValue{}, err
		}
		v, err := regHexValue(typ, raw)
		return name, v, err
	case rest == "-":
		return name, regValue{Kind: "deleted"}, nil
	}
	return "", regValue{}, fmt.Errorf("unknown value type %.20q", rest)
}

// regQuoted reads a "..." string with \\ and \" escapes and returns the
// rest of the line.
func regQuoted(s string) (string, string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", "", errors.New("missing opening quote")
	}
	var sb strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 == len(s) {
				return "", "", errors.New("backslash at end of line")
			}
			i++
			sb.WriteByte(s[i])
		case '"':
			return sb.String(), s[i+1:], nil
		default:
			sb.WriteByte(c)
		}
	}
	return "", "", errors.New("missing closing quote")
}

func regHex(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	f := strings.Split(s, ",")
	if len(f) > maxRegValueBytes {
		return nil, fmt.Errorf("hex value over %d bytes", maxRegValueBytes)
	}
	out := make([]byte, 0, len(f))
	for _, x := range f {
		x = strings.TrimSpace(x)
		if x == "" {
			continue // a trailing comma before a line continuation
		}
		v, err := strconv.ParseUint(x, 16, 8)
		if err != nil {
			return nil, fmt.Errorf("hex byte %.8q: %v", x, err)
		}
		out = append(out, byte(v))
	}
	return out, nil
}

// regHexValue interprets hex(N) data: 2 expand_sz and 7 multi_sz are
// UTF-16LE, b a little-endian qword, 4 a dword.
func regHexValue(typ string, raw []byte) (regValue, error) {
	utf16s := func() string {
		u := make([]uint16, len(raw)/2)
		for i := range u {
			u[i] = binary.LittleEndian.Uint16(raw[2*i:])
		}
		return string(utf16.Decode(u))
	}
	switch typ {
	case "hex(2)":
		return regValue{Kind: "expand_sz", Str: strings.TrimRight(utf16s(), "\x00")}, nil
	case "hex(7)":
		parts := strings.Split(strings.TrimRight(utf16s(), "\x00"), "\x00")
		return regValue{Kind: "multi_sz", Str: strings.Join(parts, "\n")}, nil
	case "hex(b)":
		if len(raw) != 8 {
			return regValue{}, fmt.Errorf("qword of %d bytes", len(raw))
		}
		return regValue{Kind: "qword", Num: binary.LittleEndian.Uint64(raw)}, nil
	case "hex(4)":
		if len(raw) != 4 {
			return regValue{}, fmt.Errorf("dword of %d bytes", len(raw))
		}
		return regValue{Kind: "dword", Num: uint64(binary.LittleEndian.Uint32(raw))}, nil
	}
	return regValue{Kind: "binary"}, nil
}

// uninstallFromExport picks the program entries out of exported Uninstall
// keys: the 64-bit view (SOFTWARE\Microsoft\...), the 32-bit view
// (SOFTWARE\WOW6432Node\...) and per-user hives (HKEY_USERS\<SID>\... or
// HKEY_CURRENT_USER\...).
func uninstallFromExport(keys []regKey) []uninstallKey {
	var out []uninstallKey
	for _, k := range keys {
		p := strings.ToUpper(k.Path)
		i := strings.Index(p, `\MICROSOFT\WINDOWS\CURRENTVERSION\UNINSTALL\`)
		if i < 0 || strings.Contains(p[i+len(`\MICROSOFT\WINDOWS\CURRENTVERSION\UNINSTALL\`):], `\`) {
			continue // the Uninstall key itself or something deeper
		}
		u := uninstallKey{View: "x64", Values: map[string]string{}}
		switch {
		case strings.HasPrefix(p, `HKEY_USERS\`):
			u.View, u.User = "", strings.SplitN(k.Path, `\`, 3)[1]
		case strings.HasPrefix(p, `HKEY_CURRENT_USER\`):
			u.View, u.User = "", "current"
		case strings.Contains(p, `\WOW6432NODE\`):
			u.View = "x86"
		}
		for name, v := range k.Values {
			u.Values[name] = v.String()
		}
		out = append(out, u)
	}
	return out
}
