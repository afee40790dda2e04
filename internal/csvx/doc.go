// Package csvx writes CSV in the ISM dialect (manual-ism.md §3.1: UTF-16LE
// with BOM, tab-separated, every field double-quoted with "" escaping, CRLF)
// and plain UTF-8 CSV (RFC 4180, encoding/csv).
package csvx
