package audit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LogConfig is what a node gives its Log.
type LogConfig struct {
	Node    string                                                // stamped on every entry
	Propose func(ctx context.Context, cmd []byte) ([]byte, error) // the node's Raft propose (forwards from a follower)
	Encode  func(Entry) []byte                                    // the node's audit command
	Result  func(out []byte) error                                // Apply's answer as an error; nil when recorded

	Queue    int // entries waiting to be proposed; more are dropped
	MaxField int // Who, Action, From and Result are clipped to this many bytes (0: not clipped)

	// DenyBurst is how many refused-request entries may be recorded per
	// second (a token-guessing client must not flood Raft). The budget is
	// refilled each second; DenyBudgetAtStart fills it at start too.
	DenyBurst         int
	DenyBudgetAtStart bool

	// The help texts of edgesync_audit_entries_dropped_total and
	// edgesync_audit_entries_recorded_total.
	DroppedHelp, RecordedHelp string

	Registerer prometheus.Registerer // the node's registry (MustRegister)
}

// Log queues entries and proposes them in the background, so an admin
// request never waits on (or fails because of) its audit record.
type Log struct {
	cfg     LogConfig
	q       chan Entry
	dropped prometheus.Counter
	written prometheus.Counter

	pending    atomic.Int64  // entries queued or being proposed
	denyBudget chan struct{} // tokens for refused-request entries, refilled each second by Run
}

// NewLog builds a Log and registers its counters with cfg.Registerer.
func NewLog(cfg LogConfig) *Log {
	l := &Log{
		cfg: cfg, q: make(chan Entry, cfg.Queue),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_dropped_total", Help: cfg.DroppedHelp}),
		written: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "audit",
			Name: "entries_recorded_total", Help: cfg.RecordedHelp}),
		denyBudget: make(chan struct{}, cfg.DenyBurst),
	}
	if cfg.DenyBudgetAtStart {
		l.refill()
	}
	cfg.Registerer.MustRegister(l.dropped, l.written)
	return l
}

func (l *Log) refill() {
	for len(l.denyBudget) < cap(l.denyBudget) {
		l.denyBudget <- struct{}{}
	}
}

// Record queues e (denied: a refused request, rate-limited). It stamps the
// node, the time when e has none, and clips the fields; it never blocks.
func (l *Log) Record(e Entry, denied bool) {
	if denied {
		select {
		case <-l.denyBudget:
		default:
			l.dropped.Inc()
			return
		}
	}
	l.pending.Add(1)
	e.Node = l.cfg.Node
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	m := l.cfg.MaxField
	e.Who, e.Action, e.From, e.Result = clip(e.Who, m), clip(e.Action, m), clip(e.From, m), clip(e.Result, m)
	select {
	case l.q <- e:
	default:
		l.pending.Add(-1)
		l.dropped.Inc()
	}
}

// Idle reports whether every recorded entry has been proposed (or
// dropped): nothing is queued or in flight.
func (l *Log) Idle() bool { return l.pending.Load() == 0 }

// Run proposes queued entries one at a time until ctx is done.
func (l *Log) Run(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			l.refill()
		case e := <-l.q:
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			out, err := l.cfg.Propose(pctx, l.cfg.Encode(e))
			cancel()
			l.pending.Add(-1)
			if err == nil && l.cfg.Result(out) == nil {
				l.written.Inc()
			} else {
				l.dropped.Inc()
			}
		}
	}
}
