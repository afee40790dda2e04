package faultnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// DefaultReorderDelay is how long a datagram picked for reordering is
	// held back when UDPFaults.ReorderDelay is zero. A QUIC sender puts
	// several datagrams on the wire within a few milliseconds, so 10ms lets
	// the ones behind a held datagram overtake it.
	DefaultReorderDelay = 10 * time.Millisecond

	// DefaultSessionIdle is how long a UDP session lives without a datagram
	// in either direction. It is longer than the QUIC idle timeout we use
	// (30s), so the proxy never expires a session QUIC still considers
	// alive.
	DefaultSessionIdle = 2 * time.Minute

	// maxDatagram is the largest UDP payload.
	maxDatagram = 64 << 10

	// maxReadErrors is how many read or accept errors in a row end a loop. One
	// error is usually transient; a run of them means the socket is broken
	// and spinning on it would only burn CPU.
	maxReadErrors = 10
)

// UDPFaults are the faults a UDPProxy applies to every datagram, in both
// directions. The zero value forwards everything at once. Probabilities are
// in [0, 1]; values outside are clamped, and negative durations count as 0.
type UDPFaults struct {
	Drop      float64       // probability a datagram is dropped
	Duplicate float64       // probability a datagram is sent twice
	Reorder   float64       // probability a datagram is held back by ReorderDelay, so the next one(s) overtake it
	Delay     time.Duration // added one-way latency for every datagram
	Jitter    time.Duration // uniform random extra latency in [0, Jitter)
	Blackhole bool          // drop everything both ways

	// ReorderDelay is the extra delay of a reordered datagram;
	// 0 means DefaultReorderDelay.
	ReorderDelay time.Duration
}

// normalize clamps f into the documented ranges.
func (f UDPFaults) normalize() UDPFaults {
	clamp := func(p float64) float64 { return min(max(p, 0), 1) }
	f.Drop, f.Duplicate, f.Reorder = clamp(f.Drop), clamp(f.Duplicate), clamp(f.Reorder)
	f.Delay, f.Jitter, f.ReorderDelay = max(f.Delay, 0), max(f.Jitter, 0), max(f.ReorderDelay, 0)
	return f
}

// UDPStats counts what a UDPProxy did with datagrams, in both directions.
// Every datagram read ends up in exactly one of Forwarded, Dropped or
// Blackholed, and so does the extra copy of each duplicated one:
// Forwarded + Dropped + Blackholed = datagrams read + Duplicated.
type UDPStats struct {
	Forwarded  uint64 // copies written to a socket
	Dropped    uint64 // dropped by Drop, by a full delay queue, by a failed write or at shutdown
	Duplicated uint64 // datagrams sent twice
	Reordered  uint64 // datagrams held back by ReorderDelay
	Blackholed uint64 // dropped by Blackhole
}

// UDPProxy forwards UDP datagrams between clients and one upstream address
// and injects faults. See the package documentation.
type UDPProxy struct {
	conn     *net.UDPConn // the listening socket; clients send here
	upstream *net.UDPAddr
	log      *slog.Logger
	epoch    time.Time // session activity is kept as a monotonic offset from here
	started  atomic.Bool
	q        *delayQueue

	// idleTimeout is DefaultSessionIdle; tests shorten it before Run.
	idleTimeout time.Duration

	// fmu protects faults and rng. Every datagram's fate is drawn under it,
	// so one seed gives one sequence of draws.
	fmu    sync.Mutex
	faults UDPFaults
	rng    *rand.Rand

	// smu protects sessions and closed.
	smu      sync.Mutex
	sessions map[netip.AddrPort]*udpSession
	closed   bool // set by shutdown; no session is created after it

	wg sync.WaitGroup // every goroutine Run starts

	forwarded, dropped, duplicated, reordered, blackholed atomic.Uint64
}

// udpSession is one client's path to upstream: a connected socket whose
// replies go back to client.
type udpSession struct {
	client netip.AddrPort
	conn   *net.UDPConn
	last   atomic.Int64 // time of the last datagram either way, as time.Since(epoch)
}

// NewUDPProxy binds listen (e.g. "127.0.0.1:0") and returns a proxy that
// forwards to upstream once Run is called. seed seeds the PCG source from
// which every fault decision is drawn: the n-th datagram through the proxy
// always gets the n-th draw, so a chaos schedule is reproducible in intent
// (not exactly, since the interleaving of datagrams is not).
func NewUDPProxy(listen, upstream string, seed uint64) (*UDPProxy, error) {
	laddr, err := net.ResolveUDPAddr("udp", listen)
	if err != nil {
		return nil, fmt.Errorf("resolve listen address %s: %w", listen, err)
	}
	uaddr, err := net.ResolveUDPAddr("udp", upstream)
	if err != nil {
		return nil, fmt.Errorf("resolve upstream address %s: %w", upstream, err)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, fmt.Errorf("listen udp %s: %w", listen, err)
	}
	return &UDPProxy{
		conn:        conn,
		upstream:    uaddr,
		log:         slog.Default().With("proxy", "udp", "listen", conn.LocalAddr().String(), "upstream", uaddr.String()),
		epoch:       time.Now(),
		q:           newDelayQueue(maxQueuedDatagrams, maxQueuedBytes),
		idleTimeout: DefaultSessionIdle,
		rng:         rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		sessions:    make(map[netip.AddrPort]*udpSession),
	}, nil
}

// Addr returns the address clients send to.
func (p *UDPProxy) Addr() string { return p.conn.LocalAddr().String() }

// SetFaults replaces the faults. They apply to the next datagram read in
// either direction; datagrams already delayed keep their send time.
func (p *UDPProxy) SetFaults(f UDPFaults) {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	p.faults = f.normalize()
}

// Faults returns the current faults (clamped as described on UDPFaults).
func (p *UDPProxy) Faults() UDPFaults {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	return p.faults
}

// Stats returns the counters so far.
func (p *UDPProxy) Stats() UDPStats {
	return UDPStats{
		Forwarded:  p.forwarded.Load(),
		Dropped:    p.dropped.Load(),
		Duplicated: p.duplicated.Load(),
		Reordered:  p.reordered.Load(),
		Blackholed: p.blackholed.Load(),
	}
}

// Run forwards datagrams until ctx is done, then closes every socket and
// returns after all its goroutines have exited. It returns nil when ctx
// ends it, and an error if the listening socket fails.
func (p *UDPProxy) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return ErrStarted
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	p.log.Info("UDP fault proxy started")
	defer p.log.Info("UDP fault proxy stopped")

	p.wg.Go(func() { p.schedule(ctx) })
	p.wg.Go(func() {
		<-ctx.Done()
		p.shutdown()
	})
	// serveClients runs here rather than in p.wg: it is the only caller of
	// p.wg.Go after this point, so once it returns nothing adds to p.wg and
	// Wait is safe.
	err := p.serveClients(ctx)
	cancel()
	p.wg.Wait()
	return err
}

// shutdown closes the listening socket and every session, which ends every
// read loop.
func (p *UDPProxy) shutdown() {
	p.smu.Lock()
	p.closed = true
	for _, s := range p.sessions {
		s.conn.Close()
	}
	p.smu.Unlock()
	p.conn.Close()
}

// serveClients reads datagrams from clients and sends them upstream through
// each client's session.
func (p *UDPProxy) serveClients(ctx context.Context) error {
	buf := make([]byte, maxDatagram)
	fails := 0
	for {
		n, from, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fails++
			p.log.Warn("UDP proxy read failed", "error", err, "failures", fails)
			if fails >= maxReadErrors {
				return fmt.Errorf("read from clients on %s: %w", p.Addr(), err)
			}
			continue
		}
		fails = 0
		copies, delay := p.decide()
		if copies == 0 {
			continue
		}
		s, err := p.session(from)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				p.log.Warn("UDP proxy session failed", "client", from.String(), "error", err)
			}
			p.dropped.Add(uint64(copies))
			continue
		}
		s.touch(p.epoch)
		p.forward(buf[:n], s.conn, netip.AddrPort{}, copies, delay)
	}
}

// session returns client's session, creating it and its reader if needed.
func (p *UDPProxy) session(client netip.AddrPort) (*udpSession, error) {
	p.smu.Lock()
	defer p.smu.Unlock()
	if s, ok := p.sessions[client]; ok {
		return s, nil
	}
	if p.closed {
		return nil, net.ErrClosed
	}
	conn, err := net.DialUDP("udp", nil, p.upstream)
	if err != nil {
		return nil, fmt.Errorf("dial upstream %s for client %s: %w", p.upstream, client, err)
	}
	s := &udpSession{client: client, conn: conn}
	s.touch(p.epoch)
	p.sessions[client] = s
	p.log.Debug("UDP proxy session opened", "client", client.String(), "local", conn.LocalAddr().String())
	p.wg.Go(func() { p.serveSession(s) })
	return s, nil
}

// serveSession reads upstream's replies to one client and sends them back
// to it, until the session is closed or has been idle for idleTimeout.
func (p *UDPProxy) serveSession(s *udpSession) {
	defer p.closeSession(s)
	buf := make([]byte, maxDatagram)
	// The deadline is moved only when it fires, rather than on every
	// datagram: the read loop stays cheap and the check is the same.
	_ = s.conn.SetReadDeadline(time.Now().Add(p.idleTimeout))
	fails := 0
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			switch {
			case errors.Is(err, net.ErrClosed):
				return
			case errors.Is(err, os.ErrDeadlineExceeded):
				last := s.lastActive(p.epoch)
				if time.Since(last) >= p.idleTimeout {
					p.log.Debug("UDP proxy session expired", "client", s.client.String())
					return
				}
				_ = s.conn.SetReadDeadline(last.Add(p.idleTimeout))
			case errors.Is(err, syscall.ECONNREFUSED):
				// An ICMP port unreachable for an earlier datagram:
				// upstream is not listening, perhaps restarting. Keep the
				// session; the client's retransmissions will find it.
			default:
				fails++
				if fails >= maxReadErrors {
					p.log.Warn("UDP proxy session read failed", "client", s.client.String(), "error", err)
					return
				}
			}
			continue
		}
		fails = 0
		s.touch(p.epoch)
		copies, delay := p.decide()
		if copies == 0 {
			continue
		}
		p.forward(buf[:n], p.conn, s.client, copies, delay)
	}
}

// closeSession forgets s and closes its socket.
func (p *UDPProxy) closeSession(s *udpSession) {
	p.smu.Lock()
	if p.sessions[s.client] == s {
		delete(p.sessions, s.client)
	}
	p.smu.Unlock()
	s.conn.Close()
}

// sessionCount returns the number of open sessions.
func (p *UDPProxy) sessionCount() int {
	p.smu.Lock()
	defer p.smu.Unlock()
	return len(p.sessions)
}

func (s *udpSession) touch(epoch time.Time) { s.last.Store(int64(time.Since(epoch))) }

func (s *udpSession) lastActive(epoch time.Time) time.Time {
	return epoch.Add(time.Duration(s.last.Load()))
}

// decide draws the fate of one datagram: how many copies to send (0 when it
// is dropped) and after what delay. It draws the same four numbers for
// every datagram whatever the faults, so changing one fault does not shift
// the draws the others see.
func (p *UDPProxy) decide() (copies int, delay time.Duration) {
	p.fmu.Lock()
	defer p.fmu.Unlock()
	f := p.faults
	drop, dup, reorder, jitter := p.rng.Float64(), p.rng.Float64(), p.rng.Float64(), p.rng.Float64()
	if f.Blackhole {
		p.blackholed.Add(1)
		return 0, 0
	}
	if drop < f.Drop {
		p.dropped.Add(1)
		return 0, 0
	}
	copies = 1
	if dup < f.Duplicate {
		copies = 2
		p.duplicated.Add(1)
	}
	delay = f.Delay + time.Duration(jitter*float64(f.Jitter))
	if reorder < f.Reorder {
		rd := f.ReorderDelay
		if rd == 0 {
			rd = DefaultReorderDelay
		}
		delay += rd
		p.reordered.Add(1)
	}
	return copies, delay
}

// forward sends copies of b on conn (to to, if conn is unconnected) now, or
// queues them for the scheduler when there is a delay. b is only borrowed.
func (p *UDPProxy) forward(b []byte, conn *net.UDPConn, to netip.AddrPort, copies int, delay time.Duration) {
	if delay <= 0 {
		for range copies {
			p.write(datagram{b: b, conn: conn, to: to})
		}
		return
	}
	d := datagram{at: time.Now().Add(delay), b: append([]byte(nil), b...), conn: conn, to: to}
	for range copies {
		if !p.q.push(d) {
			p.dropped.Add(1)
		}
	}
}

// write sends d. A failed write loses the datagram, as a real link would:
// the socket was closed by shutdown or session expiry, or upstream refused
// an earlier datagram.
func (p *UDPProxy) write(d datagram) {
	var err error
	if d.to.IsValid() {
		_, err = d.conn.WriteToUDPAddrPort(d.b, d.to)
	} else {
		_, err = d.conn.Write(d.b)
	}
	if err != nil {
		p.dropped.Add(1)
		return
	}
	p.forwarded.Add(1)
}

// schedule sends delayed datagrams when they are due, until ctx is done.
func (p *UDPProxy) schedule(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		for {
			d, ok := p.q.popDue(time.Now())
			if !ok {
				break
			}
			p.write(d)
		}
		// Since Go 1.23 Reset and Stop discard a stale expiry, so no drain
		// is needed.
		if at, ok := p.q.next(); ok {
			timer.Reset(time.Until(at))
		} else {
			timer.Stop()
		}
		select {
		case <-ctx.Done():
			p.dropped.Add(uint64(p.q.close()))
			return
		case <-timer.C:
		case <-p.q.wake:
		}
	}
}
