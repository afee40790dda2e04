package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"
	"golang.org/x/sync/errgroup"

	"github.com/edgesync/edgesync/sync/wire"
)

// Registry is central's per-site sequence state; central implements it on its Raft FSM.
type Registry interface {
	// Cursor returns the highest site sequence committed for site (0 if none).
	Cursor(ctx context.Context, site string) (uint64, error)
	// Accept commits records [first, first+len(records)); those at or below the cursor are skipped.
	// It returns the new cursor, only after the Raft commit. A batch that would leave a gap
	// returns an error wrapping wire.ErrGap.
	Accept(ctx context.Context, site, relayNode string, first uint64, records [][]byte) (uint64, error)
	// Contact records a relay hello or status: last contact time and outbox stats.
	Contact(ctx context.Context, site, relayNode string, st wire.OutboxStats) error
}

// Config configures a Server.
type Config struct {
	// Addr is the UDP address for QUIC, e.g. ":7443" or "127.0.0.1:0".
	Addr string
	// TLS is the server config (pki.Bundle.ServerTLS()). Listen clones it, sets NextProtos to
	// wire.ALPN and requires and verifies client certificates.
	TLS *tls.Config
	// TCPAddr, if set, also serves the same protocol over TCP+TLS for networks that block UDP.
	TCPAddr string
	// PaceBytesPerSec is sent to relays in HelloAck as an upload rate hint (0 = none).
	PaceBytesPerSec int64
	// ServerVersion is sent in HelloAck.
	ServerVersion string
	// Catalog and Blobs, when set, serve the catalog and blob streams (catalog.go, blobs.go).
	Catalog    Catalog
	Blobs      Blobs
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("ingest: Addr is required")
	}
	if c.TLS == nil || (len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil) {
		return errors.New("ingest: TLS with a server certificate is required")
	}
	if c.TLS.ClientCAs == nil {
		return errors.New("ingest: TLS.ClientCAs is required to verify relays")
	}
	if c.PaceBytesPerSec < 0 {
		return errors.New("ingest: PaceBytesPerSec must not be negative")
	}
	return nil
}

// quicConfig is the QUIC configuration of the ingest listener.
// Receive windows carry an uplink's pipelined batches (4 MiB each before
// zstd) across a WAN's bandwidth-delay product; see sync/uplink's quicConfig.
var quicConfig = &quic.Config{
	MaxIdleTimeout:                 30 * time.Second,
	KeepAlivePeriod:                10 * time.Second,
	MaxIncomingStreams:             16,
	InitialStreamReceiveWindow:     4 << 20,
	MaxStreamReceiveWindow:         16 << 20,
	InitialConnectionReceiveWindow: 8 << 20,
	MaxConnectionReceiveWindow:     24 << 20,
}

// Per-operation limits.
const (
	handshakeTimeout = 10 * time.Second
	registryTimeout  = 15 * time.Second
	acceptTimeout    = 60 * time.Second
	writeTimeout     = 30 * time.Second
	// tcpIdleTimeout closes a TCP session that sent nothing (relays send Status and Ping).
	tcpIdleTimeout = 2 * time.Minute
	// maxAcceptFailures consecutive accept errors end Run so a supervisor can restart it.
	maxAcceptFailures = 10
)

// Server is the ingest listener.
type Server struct {
	cfg  Config
	reg  Registry
	log  *slog.Logger
	m    *metrics
	udp  *net.UDPConn
	tr   *quic.Transport
	ql   *quic.Listener
	tl   net.Listener
	wg   sync.WaitGroup // connection and stream goroutines
	once sync.Once

	// mu guards sessions and closed.
	mu       sync.Mutex
	sessions map[*session]struct{}
	closed   bool
}

// Listen validates cfg and binds the listeners now (so callers can use port 0 and read Addr).
func Listen(cfg Config, reg Registry) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil {
		return nil, errors.New("ingest: nil Registry")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	tlsConf := cfg.TLS.Clone()
	tlsConf.NextProtos = []string{wire.ALPN}
	tlsConf.ClientAuth = tls.RequireAndVerifyClientCert
	tlsConf.MinVersion = tls.VersionTLS13
	// Our own UDP socket and Transport (not quic.ListenAddr) so Close releases the port at once:
	// a single-use transport keeps it until closed connections finish draining, and a restart on
	// the same port would fail.
	ua, err := net.ResolveUDPAddr("udp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("ingest: resolve %s: %w", cfg.Addr, err)
	}
	pc, err := net.ListenUDP("udp", ua)
	if err != nil {
		return nil, fmt.Errorf("ingest: listen quic %s: %w", cfg.Addr, err)
	}
	tr := &quic.Transport{Conn: pc}
	ql, err := tr.Listen(tlsConf, quicConfig)
	if err != nil {
		_ = pc.Close()
		return nil, fmt.Errorf("ingest: listen quic %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, reg: reg, log: cfg.Logger, udp: pc, tr: tr, ql: ql, sessions: map[*session]struct{}{}}
	if cfg.TCPAddr != "" {
		tl, err := tls.Listen("tcp", cfg.TCPAddr, tlsConf)
		if err != nil {
			s.closeQUIC()
			return nil, fmt.Errorf("ingest: listen tcp %s: %w", cfg.TCPAddr, err)
		}
		s.tl = tl
	}
	s.m = newMetrics(cfg.Registerer)
	return s, nil
}

// Addr is the QUIC (UDP) address.
func (s *Server) Addr() net.Addr { return s.ql.Addr() }

// TCPAddr is the TCP+TLS address, or nil when not configured.
func (s *Server) TCPAddr() net.Addr {
	if s.tl == nil {
		return nil
	}
	return s.tl.Addr()
}

// Run serves until ctx is done or the listeners fail, then closes every connection and waits for
// its goroutines. It returns nil on cancellation.
func (s *Server) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	s.log.InfoContext(ctx, "Ingest started", "quic", s.Addr().String(), "tcp", addrString(s.TCPAddr()))
	defer s.log.InfoContext(ctx, "Ingest stopped")
	g.Go(func() error { return s.acceptQUIC(gctx) })
	if s.tl != nil {
		g.Go(func() error { return s.acceptTCP(gctx) })
	}
	g.Go(func() error {
		<-gctx.Done()
		s.Close()
		return nil
	})
	err := g.Wait()
	s.Close()
	s.wg.Wait()
	return err
}

// Close closes the listeners and every open connection. Run calls it on the way out; call it
// directly only for a Server that was never run.
func (s *Server) Close() {
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		open := make([]*session, 0, len(s.sessions))
		for ss := range s.sessions {
			open = append(open, ss)
		}
		s.mu.Unlock()
		for _, ss := range open {
			ss.close(wire.CloseShuttingDown, "central shutting down")
		}
		s.closeQUIC()
		if s.tl != nil {
			_ = s.tl.Close()
		}
	})
}

func (s *Server) closeQUIC() {
	_ = s.ql.Close()
	_ = s.tr.Close()
	_ = s.udp.Close()
}

func (s *Server) acceptQUIC(ctx context.Context) error {
	failures := 0
	for {
		conn, err := s.ql.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, quic.ErrServerClosed) {
				return nil
			}
			failures++
			s.log.WarnContext(ctx, "QUIC accept failed", "error", err, "failures", failures)
			if failures >= maxAcceptFailures {
				return fmt.Errorf("ingest: quic accept: %w", err)
			}
			continue
		}
		failures = 0
		s.wg.Go(func() { s.serveQUIC(ctx, conn) })
	}
}

func (s *Server) acceptTCP(ctx context.Context) error {
	failures := 0
	for {
		c, err := s.tl.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			failures++
			s.log.WarnContext(ctx, "TCP accept failed", "error", err, "failures", failures)
			if failures >= maxAcceptFailures {
				return fmt.Errorf("ingest: tcp accept: %w", err)
			}
			continue
		}
		failures = 0
		s.wg.Go(func() { s.serveTCP(ctx, c.(*tls.Conn)) })
	}
}

func (s *Server) serveQUIC(ctx context.Context, conn *quic.Conn) {
	ss, err := s.newSession(ctx, "quic", conn.RemoteAddr(), conn.ConnectionState().TLS,
		func(code quic.ApplicationErrorCode, msg string) { _ = conn.CloseWithError(code, msg) })
	if err != nil {
		_ = conn.CloseWithError(wire.CloseCode(err), err.Error())
		return
	}
	defer s.endSession(ss)
	for {
		str, err := conn.AcceptStream(ss.ctx)
		if err != nil {
			ss.setErr(wire.FromCloseError(err))
			return
		}
		s.wg.Go(func() {
			defer str.CancelRead(0)
			defer str.Close()
			ss.serveStream(str, nil)
		})
	}
}

func (s *Server) serveTCP(ctx context.Context, c *tls.Conn) {
	defer c.Close()
	hctx, cancel := context.WithTimeout(ctx, handshakeTimeout)
	err := c.HandshakeContext(hctx)
	cancel()
	if err != nil {
		s.m.refused.WithLabelValues(wire.CodeUnauthenticated.String()).Inc()
		s.log.WarnContext(ctx, "TCP handshake failed", "peer", c.RemoteAddr().String(), "error", err)
		return
	}
	ss, err := s.newSession(ctx, "tcp", c.RemoteAddr(), c.ConnectionState(),
		func(quic.ApplicationErrorCode, string) { _ = c.Close() })
	if err != nil {
		// TCP has no close code: say why in an Error frame first.
		_ = c.SetWriteDeadline(time.Now().Add(handshakeTimeout))
		_, _ = wire.NewConn(c, 0, 0).Send(wire.Error{Code: wire.ErrorToCode(err), Message: err.Error()})
		return
	}
	defer s.endSession(ss)
	ss.serveStream(c, c)
}

// newSession authenticates the peer and registers the session. On error the caller tells the
// peer why and closes the connection.
func (s *Server) newSession(ctx context.Context, transport string, remote net.Addr, cs tls.ConnectionState, closeFn func(quic.ApplicationErrorCode, string)) (*session, error) {
	id, err := peerIdentity(cs)
	if err != nil {
		s.m.refused.WithLabelValues(wire.ErrorToCode(err).String()).Inc()
		s.log.WarnContext(ctx, "Relay refused", "peer", remote.String(), "transport", transport, "error", err)
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	ss := &session{s: s, ctx: sctx, cancel: cancel, site: id.Site, certName: id.Name,
		transport: transport, remote: remote.String(), closeFn: closeFn}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return nil, fmt.Errorf("central closing: %w", wire.ErrShuttingDown)
	}
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	s.m.connections.Inc()
	return ss, nil
}

func (s *Server) endSession(ss *session) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
	s.m.connections.Dec()
	ss.close(wire.CloseNoError, "")
	site, node, err := ss.summary()
	if node != "" {
		s.log.InfoContext(ss.ctx, "Relay disconnected", "site", site, "node", node, "transport", ss.transport, "error", errString(err))
	}
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func errString(err error) string {
	if err == nil || errors.Is(err, io.EOF) {
		return ""
	}
	return err.Error()
}
