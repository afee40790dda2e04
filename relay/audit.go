package relay

import (
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/nodemetrics"
)

// Audit trail keys: a/<raft index8> → AuditEntry JSON; m/acount holds the count.
var (
	prefixAudit   = []byte("a/")
	keyAuditCount = []byte("m/acount")
)

// maxAudit bounds the trail kept in the site's Raft state (oldest dropped).
const maxAudit = 10000

// auditTrail is the site's trail: at most maxAudit entries, counted.
var auditTrail = audit.Trail{Prefix: prefixAudit, CountKey: keyAuditCount, Limit: maxAudit}

// AuditEntry is one admin action at the site: who (the token hash prefix or
// the status page session), what, when, from where and the result. Its JSON
// matches central's, so `edgesync audit list --server RELAY` reads both.
type AuditEntry = audit.Entry

// encodeAudit is the relay's audit command (the Fields encoding).
func encodeAudit(e AuditEntry) []byte { return audit.EncodeFields(byte(cmdAudit), commandVersion, e) }

// applyAuditCmd is Apply for cmdAudit (deterministic: the time is in the command).
func (f *fsm) applyAuditCmd(txn *badger.Txn, index uint64, r *cmdenc.Reader) []byte {
	e, err := audit.DecodeFields(r)
	if err != nil {
		return errorResult(err)
	}
	if err := auditTrail.Put(txn, index, e); err != nil {
		return storageFailure(err)
	}
	return nil
}

// Audit returns the newest audit entries first.
func (n *Node) Audit(limit int) ([]AuditEntry, error) {
	var out []AuditEntry
	err := n.raft.View(func(txn *badger.Txn) (err error) { out, err = auditTrail.List(txn, limit); return err })
	return out, err
}

func (n *Node) handleAudit(w http.ResponseWriter, r *http.Request) {
	audit.Handler(n.Audit, func(r *http.Request) int { return queryInt(r, "limit", 200, maxAudit) })(w, r)
}

// newAuditLog queues entries and proposes them in the background, so an
// admin request never waits on (or fails because of) its audit record, and
// keeps working on a follower (Propose forwards to the leader). Refused
// requests are rate-limited so a token-guessing client cannot flood the
// site's Raft.
func newAuditLog(n *Node) *audit.Log {
	return audit.NewLog(audit.LogConfig{
		Node: n.cfg.NodeID, Propose: n.raft.Propose, Encode: encodeAudit, Result: resultError,
		Queue: 256, MaxField: audit.MaxField, DenyBurst: 10, DenyBudgetAtStart: true,
		DroppedHelp:  "Audit entries not recorded (queue full, Raft unavailable or refused-request rate cap).",
		RecordedHelp: "Audit entries committed to the site's Raft state by this node.",
		Registerer:   n.reg,
	})
}

// auditedGET lists the reads worth an audit entry: they hand out data or
// cost the appliance (profiles).
func auditedGET(path string) bool {
	return strings.HasPrefix(path, "/debug/") || strings.HasPrefix(path, "/api/v1/backup")
}

// audited wraps an admin handler (outside the token check) and records every
// change, every sensitive read and every refused request.
func (n *Node) audited(next http.Handler) http.Handler {
	return audit.Audited(n.audit.Record, auditedGET, next)
}

// initAdmin builds the administrator's side of the node once its Raft node
// exists: the audit trail, the status page and the metrics central also
// exposes (Raft state, applied index, Badger sizes, oldest unacked age).
func (n *Node) initAdmin() error {
	n.audit = newAuditLog(n)
	n.status = newStatusPage(n)
	oldest := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "edgesync", Subsystem: "relay",
		Name: "outbox_oldest_unacked_age_seconds", Help: "Age of the oldest record central has not acked (0 when the outbox is empty)."}, func() float64 {
		st, _ := n.outboxStats()
		if st.Depth == 0 || st.OldestUnacked.IsZero() {
			return 0
		}
		return max(time.Since(st.OldestUnacked).Seconds(), 0)
	})
	if err := n.reg.Register(oldest); err != nil {
		return err
	}
	return nodemetrics.Register(n.reg, n.raft, n.cfg.DataDir)
}
