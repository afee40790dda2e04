package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/wire"
)

// peerIdentity returns the relay identity of a verified client certificate.
func peerIdentity(cs tls.ConnectionState) (pki.Identity, error) {
	if len(cs.PeerCertificates) == 0 {
		return pki.Identity{}, fmt.Errorf("no client certificate: %w", wire.ErrUnauthenticated)
	}
	id, err := pki.IdentityFromCert(cs.PeerCertificates[0])
	if err != nil {
		return pki.Identity{}, fmt.Errorf("%w: %w", wire.ErrUnauthenticated, err)
	}
	if id.Role != pki.RoleRelay {
		return pki.Identity{}, fmt.Errorf("certificate role %q is not relay: %w", id.Role, wire.ErrForbidden)
	}
	return id, nil
}

// session is one authenticated relay connection: QUIC with a control stream and upload streams,
// or TCP carrying everything on one stream.
type session struct {
	s         *Server
	ctx       context.Context
	cancel    context.CancelFunc
	site      string // from the certificate
	certName  string
	transport string
	remote    string
	closeFn   func(quic.ApplicationErrorCode, string)
	closeOnce sync.Once

	// mu guards node, helloDone, cursor and err.
	mu        sync.Mutex
	node      string
	helloDone bool
	cursor    uint64 // highest cursor seen for the site; never ahead of the registry
	err       error
}

func (ss *session) close(code quic.ApplicationErrorCode, msg string) {
	ss.closeOnce.Do(func() {
		ss.cancel()
		ss.closeFn(code, msg)
	})
}

func (ss *session) setErr(err error) {
	ss.mu.Lock()
	if ss.err == nil {
		ss.err = err
	}
	ss.mu.Unlock()
}

func (ss *session) summary() (site, node string, err error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.site, ss.node, ss.err
}

func (ss *session) state() (node string, ok bool, cursor uint64) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.node, ss.helloDone, ss.cursor
}

func (ss *session) raiseCursor(c uint64) {
	ss.mu.Lock()
	ss.cursor = max(ss.cursor, c)
	ss.mu.Unlock()
}

type readDeadliner interface{ SetReadDeadline(time.Time) error }

// serveStream answers frames on one stream until it ends. idle, when set, gets a read deadline
// before each frame (TCP has no transport keepalive of its own).
func (ss *session) serveStream(rw io.ReadWriter, idle readDeadliner) {
	wc := wire.NewConn(rw, wire.MaxFrameSize, writeTimeout)
	for {
		if idle != nil {
			_ = idle.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		}
		m, err := wc.Recv()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || ss.ctx.Err() != nil {
				return
			}
			if errors.Is(err, wire.ErrMalformed) || errors.Is(err, wire.ErrFrameTooLarge) ||
				errors.Is(err, wire.ErrBatchTooLarge) || errors.Is(err, wire.ErrUnknownType) {
				ss.fail(wc, err)
				return
			}
			ss.setErr(wire.FromCloseError(err))
			return
		}
		switch m := m.(type) {
		case wire.Hello:
			err = ss.hello(wc, m)
		case wire.Batch:
			err = ss.batch(wc, m)
		case wire.Status:
			ss.contact(m.OutboxStats)
		case wire.Ping:
			_, err = wc.Send(wire.Pong(m))
		case wire.CatalogRequest:
			err = ss.catalog(wc, m)
		case wire.BlobRequest:
			// The raw bytes end the stream: nothing else may follow on it.
			if err := ss.blob(rw, wc, m); err != nil {
				ss.s.log.DebugContext(ss.ctx, "Blob stream ended", "site", ss.site, "peer", ss.remote, "error", err)
			}
			return
		default:
			err = fmt.Errorf("unexpected %s from relay: %w", m.Type(), wire.ErrBadRequest)
		}
		if err != nil {
			ss.fail(wc, err)
			return
		}
	}
}

// fail tells the relay why and closes the connection.
func (ss *session) fail(wc *wire.Conn, err error) {
	ss.setErr(err)
	code := wire.ErrorToCode(err)
	ss.s.log.WarnContext(ss.ctx, "Relay session failed", "site", ss.site, "peer", ss.remote, "code", code.String(), "error", err)
	_, _ = wc.Send(wire.Error{Code: code, Message: err.Error()})
	ss.close(wire.CloseCode(err), err.Error())
}

func (ss *session) hello(wc *wire.Conn, h wire.Hello) error {
	if _, done, _ := ss.state(); done {
		return fmt.Errorf("second hello: %w", wire.ErrBadRequest)
	}
	if h.ProtoVersion < wire.MinProtoVersion || h.ProtoVersion > wire.ProtoVersion {
		return fmt.Errorf("protocol version %d, want %d..%d: %w", h.ProtoVersion, wire.MinProtoVersion, wire.ProtoVersion, wire.ErrVersionUnsupported)
	}
	if h.Site != ss.site {
		ss.s.m.refused.WithLabelValues(wire.CodeSiteMismatch.String()).Inc()
		return fmt.Errorf("hello for site %q from a certificate for site %q: %w", h.Site, ss.site, wire.ErrSiteMismatch)
	}
	if !pki.ValidName(h.Node) {
		return fmt.Errorf("node name %q: %w", h.Node, wire.ErrBadRequest)
	}
	ctx, cancel := context.WithTimeout(ss.ctx, registryTimeout)
	defer cancel()
	if err := ss.s.reg.Contact(ctx, ss.site, h.Node, h.Outbox); err != nil {
		return fmt.Errorf("record contact: %w", err)
	}
	cur, err := ss.s.reg.Cursor(ctx, ss.site)
	if err != nil {
		return fmt.Errorf("read cursor: %w", err)
	}
	ss.mu.Lock()
	ss.node, ss.helloDone = h.Node, true
	ss.cursor = max(ss.cursor, cur)
	ss.mu.Unlock()
	ss.s.log.InfoContext(ss.ctx, "Relay connected", "site", ss.site, "node", h.Node, "version", h.Version,
		"transport", ss.transport, "peer", ss.remote, "cursor", cur, "relayAcked", h.Outbox.AckedSeq, "backlog", h.Outbox.Depth)
	_, err = wc.Send(wire.HelloAck{Cursor: cur, ServerVersion: ss.s.cfg.ServerVersion, PaceBytesPerSec: ss.s.cfg.PaceBytesPerSec})
	return err
}

func (ss *session) contact(st wire.OutboxStats) {
	node, ok, _ := ss.state()
	if !ok {
		return
	}
	ctx, cancel := context.WithTimeout(ss.ctx, registryTimeout)
	defer cancel()
	if err := ss.s.reg.Contact(ctx, ss.site, node, st); err != nil {
		ss.s.log.WarnContext(ctx, "Record relay contact failed", "site", ss.site, "node", node, "error", err)
	}
}

// batch commits one batch and answers it with an Ack. Only a broken stream is an error here:
// registry failures and gaps are reported in the Ack and the relay decides what to do.
func (ss *session) batch(wc *wire.Conn, b wire.Batch) error {
	node, ok, cached := ss.state()
	if !ok {
		return fmt.Errorf("batch before hello: %w", wire.ErrBadRequest)
	}
	n := 0
	for _, r := range b.Records {
		n += len(r)
	}
	ss.s.m.bytesReceived.Add(float64(n))
	ack := ss.commit(node, cached, b)
	ss.s.m.batches.WithLabelValues(ack.Code.String()).Inc()
	_, err := wc.Send(ack)
	return err
}

func (ss *session) commit(node string, cached uint64, b wire.Batch) wire.Ack {
	if len(b.Records) == 0 || b.LastSeq() <= cached {
		return wire.Ack{Upto: cached} // duplicate: already committed
	}
	if b.FirstSeq > cached+1 {
		// The cache may lag another node's uploads; ask the registry before calling it a gap.
		ctx, cancel := context.WithTimeout(ss.ctx, registryTimeout)
		cur, err := ss.s.reg.Cursor(ctx, ss.site)
		cancel()
		if err != nil {
			return wire.Ack{Upto: cached, Code: wire.ErrorToCode(err), Message: err.Error()}
		}
		ss.raiseCursor(cur)
		cached = max(cached, cur)
		if b.LastSeq() <= cached {
			return wire.Ack{Upto: cached}
		}
		if b.FirstSeq > cached+1 {
			return wire.Ack{Upto: cached, Code: wire.CodeGap,
				Message: fmt.Sprintf("batch starts at %d, cursor is %d", b.FirstSeq, cached)}
		}
	}
	ctx, cancel := context.WithTimeout(ss.ctx, acceptTimeout)
	defer cancel()
	start := time.Now()
	cur, err := ss.s.reg.Accept(ctx, ss.site, node, b.FirstSeq, b.Records)
	ss.s.m.acceptSeconds.Observe(time.Since(start).Seconds())
	if err != nil {
		code := wire.ErrorToCode(err)
		ss.s.log.WarnContext(ctx, "Batch not committed", "site", ss.site, "node", node, "first", b.FirstSeq,
			"records", len(b.Records), "code", code.String(), "error", err)
		return wire.Ack{Upto: cached, Code: code, Message: err.Error()}
	}
	if cur > cached {
		ss.s.m.recordsAccepted.Add(float64(cur - cached))
	}
	ss.raiseCursor(cur)
	return wire.Ack{Upto: cur}
}
