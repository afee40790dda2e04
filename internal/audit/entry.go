package audit

import "time"

// Entry is one admin action: who (a token's hash prefix, a console or status
// page session), what, when, from where and the result. Relay and central
// serve the same JSON, so `edgesync audit list` reads either.
type Entry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	Result string    `json:"result"`
}

// clip cuts s to at most max bytes (max 0: no limit).
func clip(s string, max int) string {
	if max > 0 && len(s) > max {
		return s[:max]
	}
	return s
}
