package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesync/edgesync/sync/wire"
)

// Item is one outbox record with its site sequence.
type Item struct {
	Seq  uint64
	Data []byte
}

// Outbox is the relay's Raft-replicated queue of records for central.
type Outbox interface {
	// Pending returns records after `after`, oldest first, with contiguous sequences, at most
	// maxRecords and about maxBytes (at least one record if any is pending).
	Pending(after uint64, maxRecords, maxBytes int) ([]Item, error)
	// Ack marks everything up to upto as delivered; it returns once that is durable (committed).
	Ack(ctx context.Context, upto uint64) error
	// Acked is the highest acknowledged sequence.
	Acked() uint64
	// Stats describes the outbox for central.
	Stats() wire.OutboxStats
}

// Status is a snapshot of the uplink for status endpoints.
type Status struct {
	Connected    bool      `json:"connected"`
	Central      string    `json:"central,omitempty"`
	Transport    string    `json:"transport"`
	LastContact  time.Time `json:"lastContact,omitzero"`
	LastError    string    `json:"lastError,omitempty"`
	BatchesSent  uint64    `json:"batchesSent"`
	RecordsAcked uint64    `json:"recordsAcked"`
	BytesSent    uint64    `json:"bytesSent"`
}

// Uplink ships the outbox to central.
type Uplink struct {
	cfg     Config
	ob      Outbox
	tls     *tls.Config
	log     *slog.Logger
	m       *metrics
	limiter *tokenBucket
	kick    chan struct{}
	running atomic.Bool

	// mu guards st.
	mu sync.Mutex
	st Status
}

// New validates cfg (zero fields take DefaultConfig values) and returns an Uplink.
func New(cfg Config, ob Outbox) (*Uplink, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if ob == nil {
		return nil, errors.New("uplink: nil Outbox")
	}
	tc := cfg.TLS.Clone()
	tc.NextProtos = []string{wire.ALPN}
	tc.MinVersion = tls.VersionTLS13
	return &Uplink{
		cfg:     cfg,
		ob:      ob,
		tls:     tc,
		log:     cfg.Logger.With("site", cfg.Site, "node", cfg.Node),
		m:       newMetrics(cfg.Registerer),
		limiter: newTokenBucket(cfg.RateLimit, time.Now),
		kick:    make(chan struct{}, 1),
		st:      Status{Transport: cfg.Transport},
	}, nil
}

// Kick tells the uplink the outbox has grown; it never blocks.
func (u *Uplink) Kick() {
	select {
	case u.kick <- struct{}{}:
	default:
	}
}

// Status returns a snapshot.
func (u *Uplink) Status() Status {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.st
}

func (u *Uplink) update(f func(*Status)) {
	u.mu.Lock()
	f(&u.st)
	u.mu.Unlock()
}

func (u *Uplink) touch() { u.update(func(s *Status) { s.LastContact = time.Now() }) }

// Run connects and ships records until ctx is done, reconnecting with jittered exponential
// backoff. It returns nil once ctx is done and all its goroutines have stopped.
func (u *Uplink) Run(ctx context.Context) error {
	if !u.running.CompareAndSwap(false, true) {
		return ErrRunning
	}
	defer u.running.Store(false)
	u.log.InfoContext(ctx, "Uplink started", "centrals", u.cfg.Centrals, "transport", u.cfg.Transport)
	defer u.log.InfoContext(ctx, "Uplink stopped")
	attempt := 0
	for {
		connected, err := u.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			attempt = 0
		}
		u.update(func(s *Status) { s.Connected = false; s.LastError = err.Error() })
		u.m.connected.Set(0)
		d := backoff(u.cfg.MinBackoff, u.cfg.MaxBackoff, attempt)
		attempt++
		u.logSessionEnd(ctx, err, d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

func (u *Uplink) logSessionEnd(ctx context.Context, err error, retry time.Duration) {
	switch {
	case errors.Is(err, ErrCursorAhead), errors.Is(err, ErrOutboxGap):
		u.log.ErrorContext(ctx, "Uplink cannot continue without operator action", "error", err, "retryIn", retry)
	case errors.Is(err, wire.ErrSiteMismatch), errors.Is(err, wire.ErrUnauthenticated), errors.Is(err, wire.ErrForbidden):
		u.log.ErrorContext(ctx, "Uplink refused by central", "error", err, "retryIn", retry)
	default:
		u.log.WarnContext(ctx, "Uplink session ended", "error", err, "retryIn", retry)
	}
}

// backoff is min·2^attempt capped at max, jittered to [d/2, d).
func backoff(minD, maxD time.Duration, attempt int) time.Duration {
	d := maxD
	if attempt < 32 && minD<<attempt > 0 && minD<<attempt < maxD {
		d = minD << attempt
	}
	half := d / 2
	return half + rand.N(half+1)
}

// link is one connection to central: QUIC with a control and an upload stream, or one TCP+TLS
// connection carrying both.
type link struct {
	ctrl *wire.Conn
	// openUpload returns the stream batches go on (a new QUIC stream, or ctrl on TCP) and the
	// conns to read from afterwards.
	openUpload func(ctx context.Context) (up *wire.Conn, readers []*wire.Conn, err error)
	close      func()
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// dial tries each central in order.
func (u *Uplink) dial(ctx context.Context) (*link, string, readDeadliner, error) {
	var errs []error
	for _, addr := range u.cfg.Centrals {
		l, rd, err := u.dialOne(ctx, addr)
		if err == nil {
			u.m.dials.WithLabelValues("ok").Inc()
			return l, addr, rd, nil
		}
		u.m.dials.WithLabelValues("error").Inc()
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, "", nil, fmt.Errorf("dial central: %w", errors.Join(errs...))
}

func (u *Uplink) dialOne(ctx context.Context, addr string) (*link, readDeadliner, error) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if u.cfg.Transport == TransportTCP {
		d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}, Config: u.tls}
		c, err := d.DialContext(dctx, "tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		wc := wire.NewConn(c, wire.MaxFrameSize, writeTimeout)
		return &link{
			ctrl: wc,
			openUpload: func(context.Context) (*wire.Conn, []*wire.Conn, error) {
				return wc, []*wire.Conn{wc}, nil
			},
			close: func() { _ = c.Close() },
		}, c, nil
	}
	conn, err := quic.DialAddr(dctx, addr, u.tls, quicConfig)
	if err != nil {
		return nil, nil, err
	}
	str, err := conn.OpenStreamSync(dctx)
	if err != nil {
		_ = conn.CloseWithError(wire.CloseNoError, "")
		return nil, nil, err
	}
	wc := wire.NewConn(str, wire.MaxFrameSize, writeTimeout)
	return &link{
		ctrl: wc,
		openUpload: func(ctx context.Context) (*wire.Conn, []*wire.Conn, error) {
			octx, cancel := context.WithTimeout(ctx, dialTimeout)
			defer cancel()
			us, err := conn.OpenStreamSync(octx)
			if err != nil {
				return nil, nil, wire.FromCloseError(err)
			}
			up := wire.NewConn(us, wire.MaxFrameSize, writeTimeout)
			return up, []*wire.Conn{wc, up}, nil
		},
		close: func() { _ = conn.CloseWithError(wire.CloseNoError, "") },
	}, str, nil
}
