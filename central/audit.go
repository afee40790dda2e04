package central

import (
	"net/http"
	"strings"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/audit"
)

// prefixAudit holds the audit trail: a/<raft index8> → AuditEntry JSON.
var prefixAudit = []byte("a/")

// auditWindow bounds the trail: an entry older than this many Raft log
// entries is dropped when a new one is written (deterministic, no counter).
const auditWindow = 1 << 22

// auditTrail is central's trail, bounded by its Raft index window.
var auditTrail = audit.Trail{Prefix: prefixAudit, Window: auditWindow}

// AuditEntry is one admin action: who, what, when, from where, result.
type AuditEntry = audit.Entry

// encodeAudit is central's audit command (the JSON encoding).
func encodeAudit(e AuditEntry) []byte { return audit.EncodeJSON(byte(cmdAudit), commandVersion, e) }

// Audit returns the newest audit entries first.
func (n *Node) Audit(limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := n.raft.View(func(txn *badger.Txn) (err error) { out, err = auditTrail.List(txn, limit); return err })
	return out, err
}

func (n *Node) handleAudit(w http.ResponseWriter, r *http.Request) {
	audit.Handler(n.Audit, func(r *http.Request) int { return queryInt(r, "limit", 200, 100000) })(w, r)
}

// newAuditLog queues entries and proposes them in the background, so an
// admin request never waits on (or fails because of) its audit record.
// Refused requests are rate-limited so a token-guessing client cannot flood
// Raft (central's budget starts empty: refilled after the first second).
func newAuditLog(n *Node) *audit.Log {
	return audit.NewLog(audit.LogConfig{
		Node: n.cfg.NodeID, Propose: n.raft.Propose, Encode: encodeAudit, Result: resultError,
		Queue: 1024, DenyBurst: 10,
		DroppedHelp:  "Audit entries not recorded (queue full or refused-request rate cap).",
		RecordedHelp: "Audit entries committed to Raft by this node.",
		Registerer:   n.reg,
	})
}

// auditedGET lists the reads worth an audit entry: they hand out the data.
func auditedGET(path string) bool {
	return strings.HasPrefix(path, "/api/v1/backup") || strings.HasPrefix(path, "/api/v1/support") || strings.HasPrefix(path, "/debug/")
}

// audited wraps an admin handler (outside the token check) and records every
// change, every sensitive read and every refused request.
func (n *Node) audited(next http.Handler) http.Handler {
	return audit.Audited(func(e AuditEntry, denied bool) { n.view.audit.Record(e, denied) }, auditedGET, next)
}

// consoleAudit records an action taken in the web console.
func (n *Node) consoleAudit(r *http.Request, who, action, result string) {
	n.view.audit.Record(AuditEntry{Who: who, Action: action, From: audit.RemoteHost(r), Result: result}, strings.HasPrefix(result, "refused"))
}
