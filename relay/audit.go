package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/internal/nodemetrics"
)

// Audit trail keys: a/<raft index8> → AuditEntry JSON; m/acount holds the count.
var (
	prefixAudit   = []byte("a/")
	keyAuditCount = []byte("m/acount")
)

// maxAudit bounds the trail kept in the site's Raft state (oldest dropped).
const maxAudit = 10000

// AuditEntry is one admin action at the site: who (the token hash prefix or
// the status page session), what, when, from where and the result. Its JSON
// matches central's, so `edgesync audit list --server RELAY` reads both.
type AuditEntry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	Result string    `json:"result"`
}

// Bounds on decoded fields: an entry is small and must stay so.
const maxAuditField = 512

func encodeAudit(e AuditEntry) []byte {
	w := cmdenc.NewWriter(byte(cmdAudit), commandVersion, 128+len(e.Action)+len(e.Result))
	w.Time(e.Time)
	w.String(e.Node)
	w.String(e.Who)
	w.String(e.Action)
	w.String(e.From)
	w.String(e.Result)
	return w.Done()
}

func decodeAudit(r *cmdenc.Reader) (AuditEntry, error) {
	e := AuditEntry{Time: r.Time(), Node: r.String(), Who: r.String(), Action: r.String(), From: r.String(), Result: r.String()}
	if err := r.Err(); err != nil {
		return e, fmt.Errorf("decode audit command: %w", err)
	}
	return e, nil
}

// applyAuditCmd is Apply for cmdAudit (deterministic: the time is in the command).
func (f *fsm) applyAuditCmd(txn *badger.Txn, index uint64, r *cmdenc.Reader) []byte {
	e, err := decodeAudit(r)
	if err != nil {
		return errorResult(err)
	}
	if err := applyAudit(txn, index, e, maxAudit); err != nil {
		return storageFailure(err)
	}
	return nil
}

func applyAudit(txn *badger.Txn, index uint64, e AuditEntry, limit uint64) error {
	e.ID = index
	b, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := txn.Set(seqKey(prefixAudit, index), b); err != nil {
		return err
	}
	n, err := kv.GetUint(txn, keyAuditCount)
	if err != nil {
		return err
	}
	n++
	if n > limit {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = prefixAudit
		it := txn.NewIterator(opts)
		it.Rewind()
		var oldest []byte
		if it.Valid() {
			oldest = it.Item().KeyCopy(nil)
		}
		it.Close()
		if oldest != nil {
			if err := txn.Delete(oldest); err != nil {
				return err
			}
			n--
		}
	}
	return kv.SetUint(txn, keyAuditCount, n)
}

// Audit returns the newest audit entries first.
func (n *Node) Audit(limit int) ([]AuditEntry, error) {
	out := []AuditEntry{}
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixAudit
		opts.Reverse = true
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Seek(seqKey(prefixAudit, ^uint64(0))); it.Valid() && len(out) < limit; it.Next() {
			var e AuditEntry
			if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &e) }); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

func (n *Node) handleAudit(w http.ResponseWriter, r *http.Request) {
	entries, err := n.Audit(queryInt(r, "limit", 200, maxAudit))
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, entries)
}

// auditLog queues entries and proposes them in the background, so an admin
// request never waits on (or fails because of) its audit record, and keeps
// working on a follower (Propose forwards to the leader). Refused requests
// are rate-limited so a token-guessing client cannot flood the site's Raft.
type auditLog struct {
	node    string
	propose func(ctx context.Context, cmd []byte) ([]byte, error)
	q       chan AuditEntry
	dropped prometheus.Counter
	written prometheus.Counter

	denyBudget chan struct{} // tokens for refused-request entries, refilled each second
}

func newAuditLog(n *Node) *auditLog {
	a := &auditLog{
		node: n.cfg.NodeID, propose: n.raft.Propose, q: make(chan AuditEntry, 256),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_dropped_total", Help: "Audit entries not recorded (queue full, Raft unavailable or refused-request rate cap)."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_recorded_total", Help: "Audit entries committed to the site's Raft state by this node."}),
		denyBudget: make(chan struct{}, 10),
	}
	for len(a.denyBudget) < cap(a.denyBudget) {
		a.denyBudget <- struct{}{}
	}
	n.reg.MustRegister(a.dropped, a.written)
	return a
}

func clip(s string) string {
	if len(s) > maxAuditField {
		return s[:maxAuditField]
	}
	return s
}

func (a *auditLog) record(e AuditEntry, denied bool) {
	if denied {
		select {
		case <-a.denyBudget:
		default:
			a.dropped.Inc()
			return
		}
	}
	e.Node = a.node
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	e.Who, e.Action, e.From, e.Result = clip(e.Who), clip(e.Action), clip(e.From), clip(e.Result)
	select {
	case a.q <- e:
	default:
		a.dropped.Inc()
	}
}

func (a *auditLog) run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			for len(a.denyBudget) < cap(a.denyBudget) {
				a.denyBudget <- struct{}{}
			}
		case e := <-a.q:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			out, err := a.propose(pctx, encodeAudit(e))
			cancel()
			if err == nil && resultError(out) == nil {
				a.written.Inc()
			} else {
				a.dropped.Inc()
			}
		}
	}
}

// tokenWho names the caller of an admin API request by its token's hash
// prefix (never the token).
func tokenWho(r *http.Request) string {
	tok := httpx.BearerToken(r)
	if tok == "" {
		return "anonymous"
	}
	return "token:" + httpx.HashToken(tok)[:12]
}

func remoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (pprof profiles
// set write deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// auditedGET lists the reads worth an audit entry: they hand out data or
// cost the appliance (profiles).
func auditedGET(path string) bool {
	return strings.HasPrefix(path, "/debug/") || strings.HasPrefix(path, "/api/v1/backup")
}

func resultOf(status int) string {
	if status == 0 || status < 300 {
		return "ok"
	}
	return "refused: " + strings.ToLower(http.StatusText(status))
}

// audited wraps an admin handler (outside the token check) and records every
// change, every sensitive read and every refused request.
func (n *Node) audited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		denied := rec.status == http.StatusUnauthorized
		if r.Method == http.MethodGet && !denied && !auditedGET(r.URL.Path) {
			return
		}
		n.audit.record(AuditEntry{Who: tokenWho(r), Action: r.Method + " " + r.URL.Path, From: remoteHost(r), Result: resultOf(rec.status)}, denied)
	})
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
