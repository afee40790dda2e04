package uplink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edgesync/edgesync/sync/wire"
)

// span is one batch awaiting its ack.
type span struct {
	first, last uint64
	sent        time.Time
}

// session runs one connection to central. connected reports whether the hello completed (which
// resets the backoff); err says why the session ended.
func (u *Uplink) session(ctx context.Context) (connected bool, err error) {
	l, central, rd, err := u.dial(ctx)
	if err != nil {
		return false, err
	}
	defer l.close()

	start, pace, err := u.hello(ctx, l.ctrl, rd)
	if err != nil {
		return false, fmt.Errorf("hello %s: %w", central, err)
	}
	rate := u.cfg.RateLimit
	if pace > 0 && (rate == 0 || pace < rate) {
		rate = pace
	}
	u.limiter.setRate(rate)
	up, readers, err := l.openUpload(ctx)
	if err != nil {
		return true, fmt.Errorf("open upload stream: %w", err)
	}
	u.update(func(s *Status) { s.Connected, s.Central, s.LastError = true, central, "" })
	u.m.connected.Set(1)
	u.log.InfoContext(ctx, "Uplink connected", "central", central, "transport", u.cfg.Transport, "from", start, "rate", rate)

	g, gctx := errgroup.WithContext(ctx)
	var lastRecv atomic.Int64
	lastRecv.Store(time.Now().UnixNano())
	acks := make(chan wire.Ack, u.cfg.MaxInFlight)
	inflight := make(chan span, u.cfg.MaxInFlight)
	g.Go(func() error {
		<-gctx.Done()
		l.close() // unblocks readers and writers
		return nil
	})
	for _, r := range readers {
		g.Go(func() error { return u.readLoop(gctx, r, acks, &lastRecv) })
	}
	g.Go(func() error { return u.ackLoop(gctx, acks, inflight) })
	g.Go(func() error { return u.sendLoop(gctx, up, start, inflight) })
	g.Go(func() error { return u.statusLoop(gctx, l.ctrl, &lastRecv) })
	return true, g.Wait()
}

// hello sends Hello, reads HelloAck and reconciles the outbox with central's cursor. It returns the
// sequence after which to send.
func (u *Uplink) hello(ctx context.Context, ctrl *wire.Conn, rd readDeadliner) (start uint64, pace int64, err error) {
	st := u.ob.Stats()
	if _, err := ctrl.Send(wire.Hello{ProtoVersion: wire.ProtoVersion, Site: u.cfg.Site, Node: u.cfg.Node,
		Version: u.cfg.Version, Outbox: st}); err != nil {
		return 0, 0, wire.FromCloseError(err)
	}
	_ = rd.SetReadDeadline(time.Now().Add(helloTimeout))
	m, err := ctrl.Recv()
	_ = rd.SetReadDeadline(time.Time{})
	if err != nil {
		return 0, 0, wire.FromCloseError(err)
	}
	var ha wire.HelloAck
	switch m := m.(type) {
	case wire.HelloAck:
		ha = m
	case wire.Error:
		return 0, 0, m.Err()
	default:
		return 0, 0, fmt.Errorf("%s instead of hello-ack: %w", m.Type(), ErrProtocol)
	}
	u.touch()
	start, err = u.reconcile(ctx, ha.Cursor, st)
	return start, ha.PaceBytesPerSec, err
}

func (u *Uplink) reconcile(ctx context.Context, cursor uint64, st wire.OutboxStats) (uint64, error) {
	acked := u.ob.Acked()
	switch {
	case cursor > acked:
		if st.NextSeq > 0 && cursor >= st.NextSeq {
			return 0, fmt.Errorf("central cursor %d, outbox next sequence %d: %w", cursor, st.NextSeq, ErrCursorAhead)
		}
		if err := u.advance(ctx, cursor); err != nil {
			return 0, err
		}
		return cursor, nil
	case cursor < acked:
		items, err := u.ob.Pending(cursor, 1, 1)
		if err != nil {
			return 0, fmt.Errorf("read outbox: %w", err)
		}
		if len(items) > 0 && items[0].Seq == cursor+1 {
			u.log.ErrorContext(ctx, "Central cursor behind acknowledged outbox; resending", "cursor", cursor, "acked", acked)
			return cursor, nil
		}
		u.log.ErrorContext(ctx, "Central cursor behind acknowledged outbox and the records are gone",
			"cursor", cursor, "acked", acked)
		return acked, nil
	}
	return acked, nil
}

// advance acknowledges up to upto in the outbox if that moves it forward.
func (u *Uplink) advance(ctx context.Context, upto uint64) error {
	acked := u.ob.Acked()
	if upto <= acked {
		return nil
	}
	actx, cancel := context.WithTimeout(ctx, ackTimeout)
	defer cancel()
	if err := u.ob.Ack(actx, upto); err != nil {
		return fmt.Errorf("ack outbox to %d: %w", upto, err)
	}
	n := upto - acked
	u.update(func(s *Status) { s.RecordsAcked += n })
	u.m.recordsAcked.Add(float64(n))
	return nil
}

func (u *Uplink) readLoop(ctx context.Context, c *wire.Conn, acks chan<- wire.Ack, lastRecv *atomic.Int64) error {
	for {
		m, err := c.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("central closed the stream: %w", err)
			}
			return wire.FromCloseError(err)
		}
		lastRecv.Store(time.Now().UnixNano())
		switch m := m.(type) {
		case wire.Ack:
			select {
			case acks <- m:
			case <-ctx.Done():
				return nil
			}
		case wire.Pong:
			u.touch()
		case wire.Error:
			return m.Err()
		default:
			return fmt.Errorf("unexpected %s: %w", m.Type(), ErrProtocol)
		}
	}
}

func (u *Uplink) ackLoop(ctx context.Context, acks <-chan wire.Ack, inflight <-chan span) error {
	for {
		var a wire.Ack
		select {
		case <-ctx.Done():
			return nil
		case a = <-acks:
		}
		var sp span
		select {
		case sp = <-inflight:
		default:
			return fmt.Errorf("ack %d with no batch in flight: %w", a.Upto, ErrProtocol)
		}
		u.touch()
		switch a.Code {
		case wire.CodeOK:
			if a.Upto < sp.last {
				return fmt.Errorf("ack %d for batch %d..%d: %w", a.Upto, sp.first, sp.last, ErrProtocol)
			}
			u.m.ackSeconds.Observe(time.Since(sp.sent).Seconds())
			if err := u.advance(ctx, a.Upto); err != nil {
				return err
			}
		case wire.CodeGap:
			// Central is behind what we sent (another node or a restore); take what it has and
			// reconnect, which resends from its cursor.
			if err := u.advance(ctx, a.Upto); err != nil {
				return err
			}
			return fmt.Errorf("batch %d..%d at cursor %d: %w", sp.first, sp.last, a.Upto, wire.CodeToError(a.Code, a.Message))
		default:
			return fmt.Errorf("batch %d..%d: %w", sp.first, sp.last, wire.CodeToError(a.Code, a.Message))
		}
	}
}

func (u *Uplink) sendLoop(ctx context.Context, up *wire.Conn, next uint64, inflight chan<- span) error {
	poll := time.NewTimer(u.cfg.PollInterval)
	defer poll.Stop()
	for {
		items, err := u.ob.Pending(next, u.cfg.BatchRecords, u.cfg.BatchBytes)
		if err != nil {
			return fmt.Errorf("read outbox after %d: %w", next, err)
		}
		if len(items) == 0 {
			poll.Reset(u.cfg.PollInterval)
			select {
			case <-ctx.Done():
				return nil
			case <-u.kick:
			case <-poll.C:
			}
			continue
		}
		recs := make([][]byte, len(items))
		for i, it := range items {
			if it.Seq != next+1+uint64(i) {
				return fmt.Errorf("outbox returned %d, want %d: %w", it.Seq, next+1+uint64(i), ErrOutboxGap)
			}
			recs[i] = it.Data
		}
		f, err := up.Encode(wire.Batch{FirstSeq: next + 1, Records: recs})
		if err != nil {
			return fmt.Errorf("encode batch: %w", err)
		}
		size := wire.HeaderSize + len(f.Payload)
		if err := u.limiter.wait(ctx, size); err != nil {
			return nil
		}
		sp := span{first: next + 1, last: items[len(items)-1].Seq, sent: time.Now()}
		select {
		case inflight <- sp:
		case <-ctx.Done():
			return nil
		}
		if err := up.WriteFrame(f); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return wire.FromCloseError(err)
		}
		u.update(func(s *Status) { s.BatchesSent++; s.BytesSent += uint64(size) })
		u.m.batchesSent.Inc()
		u.m.bytesSent.Add(float64(size))
		next = sp.last
	}
}

func (u *Uplink) statusLoop(ctx context.Context, ctrl *wire.Conn, lastRecv *atomic.Int64) error {
	idle := max(3*u.cfg.StatusInterval, minIdleTimeout)
	t := time.NewTicker(u.cfg.StatusInterval)
	defer t.Stop()
	var nonce uint64
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if since := time.Since(time.Unix(0, lastRecv.Load())); since > idle {
			return fmt.Errorf("nothing received for %s: %w", since.Round(time.Second), ErrIdle)
		}
		st := u.ob.Stats()
		u.m.backlog.Set(float64(st.Depth))
		nonce++
		if _, err := ctrl.Send(wire.Status{OutboxStats: st}); err != nil {
			return ctxOr(ctx, wire.FromCloseError(err))
		}
		if _, err := ctrl.Send(wire.Ping{Nonce: nonce}); err != nil {
			return ctxOr(ctx, wire.FromCloseError(err))
		}
	}
}

func ctxOr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
