package faultnet

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// tcpDialTimeout bounds the dial to upstream. Upstream is a local
	// process, so a slow dial means it is hung; the client then sees its
	// connection close, as it would if the node were down.
	tcpDialTimeout = 5 * time.Second

	// acceptBackoff is the pause after a failed Accept (EMFILE and the
	// like), so a persistent failure does not spin.
	acceptBackoff = 50 * time.Millisecond
)

// TCPStats counts a TCPProxy's connections.
type TCPStats struct {
	Accepted uint64 // connections accepted and proxied
	Refused  uint64 // connections closed at accept because their client IP was blocked
	Cut      uint64 // open connections closed by Block
}

// TCPProxy forwards TCP connections to one upstream address and can cut and
// refuse connections by client IP. See the package documentation.
type TCPProxy struct {
	ln       *net.TCPListener
	upstream string
	log      *slog.Logger
	started  atomic.Bool

	// mu protects blocked, conns and closed, and every tcpConn's up and
	// cut fields. Block checks and cuts under it, and accept checks and
	// registers under it, so no connection from a blocked IP slips between
	// the two.
	mu      sync.Mutex
	blocked map[string]struct{}
	conns   map[*tcpConn]struct{}
	closed  bool // set by shutdown

	wg sync.WaitGroup // every goroutine Run starts

	accepted, refused, cut atomic.Uint64
}

// tcpConn is one proxied connection.
type tcpConn struct {
	ip     string // client IP, normalized
	client *net.TCPConn
	up     *net.TCPConn // nil until the upstream dial succeeds
	cut    bool         // closed by Block or shutdown; a later upstream must be closed at once
}

// NewTCPProxy binds listen (e.g. "127.0.0.11:0") and returns a proxy that
// forwards to upstream once Run is called.
func NewTCPProxy(listen, upstream string) (*TCPProxy, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("listen tcp %s: %w", listen, err)
	}
	return &TCPProxy{
		ln:       ln.(*net.TCPListener),
		upstream: upstream,
		log:      slog.Default().With("proxy", "tcp", "listen", ln.Addr().String(), "upstream", upstream),
		blocked:  make(map[string]struct{}),
		conns:    make(map[*tcpConn]struct{}),
	}, nil
}

// Addr returns the address clients dial.
func (p *TCPProxy) Addr() string { return p.ln.Addr().String() }

// Block cuts every open connection whose client IP is in srcIPs, and makes
// the proxy close new connections from them as soon as it accepts them.
// The cut is a reset (SO_LINGER 0) on both legs, so both ends see an error
// at once rather than a graceful end of stream. Block returns after the
// connections are closed.
func (p *TCPProxy) Block(srcIPs ...string) {
	var victims []*net.TCPConn
	p.mu.Lock()
	for _, ip := range srcIPs {
		p.blocked[normalizeIP(ip)] = struct{}{}
	}
	n := 0
	for tc := range p.conns {
		if _, ok := p.blocked[tc.ip]; !ok || tc.cut {
			continue
		}
		tc.cut = true
		n++
		victims = append(victims, tc.client)
		if tc.up != nil {
			victims = append(victims, tc.up)
		}
	}
	p.mu.Unlock()
	for _, c := range victims {
		reset(c)
	}
	p.cut.Add(uint64(n))
	p.log.Info("TCP fault proxy blocked", "ips", srcIPs, "cut", n)
}

// Unblock lets srcIPs connect again. Connections cut earlier stay closed.
func (p *TCPProxy) Unblock(srcIPs ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ip := range srcIPs {
		delete(p.blocked, normalizeIP(ip))
	}
}

// UnblockAll lets every client connect again.
func (p *TCPProxy) UnblockAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.blocked)
}

// Blocked returns the blocked client IPs, sorted.
func (p *TCPProxy) Blocked() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	ips := make([]string, 0, len(p.blocked))
	for ip := range p.blocked {
		ips = append(ips, ip)
	}
	slices.Sort(ips)
	return ips
}

// Stats returns the counters so far.
func (p *TCPProxy) Stats() TCPStats {
	return TCPStats{Accepted: p.accepted.Load(), Refused: p.refused.Load(), Cut: p.cut.Load()}
}

// Run accepts and proxies connections until ctx is done, then closes the
// listener and every connection and returns after all its goroutines have
// exited. It returns nil when ctx ends it, and an error if Accept keeps
// failing.
func (p *TCPProxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p.log.Info("TCP fault proxy started")
	defer p.log.Info("TCP fault proxy stopped")

	p.wg.Go(func() {
		<-ctx.Done()
		p.shutdown()
	})
	// acceptLoop runs here rather than in p.wg: it is the only caller of
	// p.wg.Go after this point, so once it returns Wait is safe.
	err := p.acceptLoop(ctx)
	cancel()
	p.wg.Wait()
	return err
}

func (p *TCPProxy) acceptLoop(ctx context.Context) error {
	fails := 0
	for {
		c, err := p.ln.AcceptTCP()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fails++
			p.log.Warn("TCP fault proxy accept failed", "error", err, "failures", fails)
			if fails >= maxReadErrors {
				return fmt.Errorf("accept on %s: %w", p.Addr(), err)
			}
			t := time.NewTimer(acceptBackoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		fails = 0
		tc := &tcpConn{ip: clientIP(c.RemoteAddr()), client: c}
		p.mu.Lock()
		_, blocked := p.blocked[tc.ip]
		if blocked || p.closed {
			p.mu.Unlock()
			if blocked {
				p.refused.Add(1)
			}
			reset(c)
			continue
		}
		p.conns[tc] = struct{}{}
		p.mu.Unlock()
		p.accepted.Add(1)
		p.wg.Go(func() { p.serve(ctx, tc) })
	}
}

// shutdown closes the listener and every connection.
func (p *TCPProxy) shutdown() {
	p.ln.Close()
	var all []*net.TCPConn
	p.mu.Lock()
	p.closed = true
	for tc := range p.conns {
		tc.cut = true
		all = append(all, tc.client)
		if tc.up != nil {
			all = append(all, tc.up)
		}
	}
	p.mu.Unlock()
	for _, c := range all {
		c.Close()
	}
}

// serve dials upstream for tc and copies both ways until both directions
// are done.
func (p *TCPProxy) serve(ctx context.Context, tc *tcpConn) {
	defer p.forget(tc)
	d := net.Dialer{Timeout: tcpDialTimeout}
	c, err := d.DialContext(ctx, "tcp", p.upstream)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Warn("TCP fault proxy dial failed", "client", tc.client.RemoteAddr().String(), "error", err)
		}
		return
	}
	up := c.(*net.TCPConn)
	p.mu.Lock()
	if tc.cut {
		// Blocked or shut down while dialling.
		p.mu.Unlock()
		reset(up)
		return
	}
	tc.up = up
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { pipe(up, tc.client) })
	pipe(tc.client, up)
	wg.Wait()
}

// forget drops tc from the connection table and closes both legs.
func (p *TCPProxy) forget(tc *tcpConn) {
	p.mu.Lock()
	delete(p.conns, tc)
	up := tc.up
	p.mu.Unlock()
	tc.client.Close()
	if up != nil {
		up.Close()
	}
}

// connCount returns the number of open connections.
func (p *TCPProxy) connCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// pipe copies src to dst. At end of stream it half-closes dst, so the peer
// sees EOF while the other direction keeps flowing (a client may send its
// request, CloseWrite, and still read the reply). On an error it closes both,
// which ends the copy in the other direction too; without that, a reset on
// one leg would leave the other direction's copy blocked forever.
func pipe(dst, src *net.TCPConn) {
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		src.Close()
		return
	}
	_ = dst.CloseWrite()
}

// reset closes c with a RST instead of a FIN.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	c.Close()
}

// clientIP returns the IP of a remote address in the form normalizeIP gives.
func clientIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().WithZone("").String()
	}
	return a.String()
}

// normalizeIP returns ip in canonical form (so "::ffff:127.0.0.2" and
// "127.0.0.2" match). An "ip:port" is reduced to its IP; anything else is
// kept as given.
func normalizeIP(ip string) string {
	if a, err := netip.ParseAddr(ip); err == nil {
		return a.Unmap().WithZone("").String()
	}
	if ap, err := netip.ParseAddrPort(ip); err == nil {
		return ap.Addr().Unmap().WithZone("").String()
	}
	return ip
}
