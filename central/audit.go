package central

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
)

// prefixAudit holds the audit trail: a/<raft index8> → AuditEntry JSON.
var prefixAudit = []byte("a/")

// auditWindow bounds the trail: an entry older than this many Raft log
// entries is dropped when a new one is written (deterministic, no counter).
const auditWindow = 1 << 22

// AuditEntry is one admin action: who, what, when, from where, result.
type AuditEntry struct {
	ID     uint64    `json:"id"`
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	Who    string    `json:"who"`
	Action string    `json:"action"`
	From   string    `json:"from"`
	Result string    `json:"result"`
}

func encodeAudit(e AuditEntry) []byte {
	b, _ := json.Marshal(e)
	w := cmdenc.NewWriter(byte(cmdAudit), commandVersion, len(b)+8)
	w.Bytes(b)
	return w.Done()
}

func putAudit(txn *badger.Txn, index uint64, e AuditEntry) error {
	e.ID = index
	if err := kv.PutJSON(txn, seqKey(prefixAudit, index), e); err != nil {
		return err
	}
	if index <= auditWindow {
		return nil
	}
	opts := badger.DefaultIteratorOptions
	opts.PrefetchValues = false
	opts.Prefix = prefixAudit
	it := txn.NewIterator(opts)
	var old [][]byte
	for it.Rewind(); it.Valid() && len(old) < 16; it.Next() {
		k := it.Item().KeyCopy(nil)
		if decodeSeq(k) >= index-auditWindow {
			break
		}
		old = append(old, k)
	}
	it.Close()
	for _, k := range old {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func decodeSeq(k []byte) uint64 {
	var v uint64
	for _, b := range k[len(k)-8:] {
		v = v<<8 | uint64(b)
	}
	return v
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
	entries, err := n.Audit(queryInt(r, "limit", 200, 100000))
	writeResult(w, entries, err)
}

// auditLog queues entries and proposes them in the background, so an admin
// request never waits on (or fails because of) its audit record. Refused
// requests are rate-limited so a token-guessing client cannot flood Raft.
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
		node: n.cfg.NodeID, propose: n.raft.Propose, q: make(chan AuditEntry, 1024),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_dropped_total", Help: "Audit entries not recorded (queue full or refused-request rate cap)."}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_recorded_total", Help: "Audit entries committed to Raft by this node."}),
		denyBudget: make(chan struct{}, 10),
	}
	n.reg.MustRegister(a.dropped, a.written)
	return a
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

// auditedGET lists the reads worth an audit entry: they hand out the data.
func auditedGET(path string) bool {
	return strings.HasPrefix(path, "/api/v1/backup") || strings.HasPrefix(path, "/api/v1/support") || strings.HasPrefix(path, "/debug/")
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
		result := http.StatusText(rec.status)
		if rec.status == 0 || rec.status < 300 {
			result = "ok"
		} else {
			result = "refused: " + strings.ToLower(result)
		}
		n.view.audit.record(AuditEntry{Who: tokenWho(r), Action: r.Method + " " + r.URL.Path, From: remoteHost(r), Result: result}, denied)
	})
}

// consoleAudit records an action taken in the web console.
func (n *Node) consoleAudit(r *http.Request, who, action, result string) {
	n.view.audit.record(AuditEntry{Who: who, Action: action, From: remoteHost(r), Result: result}, strings.HasPrefix(result, "refused"))
}
