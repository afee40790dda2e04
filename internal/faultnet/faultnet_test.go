package faultnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// The proxies log through slog.Default; keep test output quiet unless
	// FAULTNET_TEST_LOG names a level.
	var h slog.Handler = slog.NewTextHandler(io.Discard, nil)
	if lv := os.Getenv("FAULTNET_TEST_LOG"); lv != "" {
		var level slog.Level
		if err := level.UnmarshalText([]byte(lv)); err != nil {
			level = slog.LevelDebug
		}
		h = slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	}
	slog.SetDefault(slog.New(h))
	goleak.VerifyTestMain(m)
}

// checkFor polls fn until it returns nil, failing the test after timeout.
func checkFor(t testing.TB, timeout, interval time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// runProxy runs run in a goroutine and returns a stop func that cancels it
// and checks it returned nil. stop is idempotent and also runs at cleanup.
func runProxy(t *testing.T, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run() = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return 10s after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// --- UDP ---

// udpEcho is a UDP server that echoes every datagram and counts what it got.
type udpEcho struct {
	conn *net.UDPConn

	mu    sync.Mutex // guards got and total
	got   map[string]int
	total int
}

func newUDPEcho(t *testing.T) *udpEcho {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen echo: %v", err)
	}
	e := &udpEcho{conn: conn, got: make(map[string]int)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, maxDatagram)
		for {
			n, from, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return // closed at cleanup
			}
			e.mu.Lock()
			e.got[string(buf[:n])]++
			e.total++
			e.mu.Unlock()
			_, _ = conn.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		<-done
	})
	return e
}

func (e *udpEcho) addr() string { return e.conn.LocalAddr().String() }

func (e *udpEcho) count(payload string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[payload]
}

func (e *udpEcho) received() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.total
}

// newUDPProxy starts a proxy in front of upstream. setup, if not nil, runs
// before Run (to shorten timeouts or limits).
func newUDPProxy(t *testing.T, upstream string, seed uint64, setup func(*UDPProxy)) (*UDPProxy, func()) {
	t.Helper()
	p, err := NewUDPProxy("127.0.0.1:0", upstream, seed)
	if err != nil {
		t.Fatalf("NewUDPProxy: %v", err)
	}
	if setup != nil {
		setup(p)
	}
	return p, runProxy(t, p.Run)
}

func newUDPClient(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatalf("resolve %s: %v", addr, err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	// Room for a burst of replies while the test is still sending.
	if err := c.SetReadBuffer(1 << 20); err != nil {
		t.Fatalf("set read buffer: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c *net.UDPConn, payload string) {
	t.Helper()
	if _, err := c.Write([]byte(payload)); err != nil {
		t.Fatalf("send %q: %v", payload, err)
	}
}

// recvN reads until it has n datagrams or timeout passes, and returns what
// it got.
func recvN(t *testing.T, c *net.UDPConn, n int, timeout time.Duration) []string {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	var got []string
	buf := make([]byte, maxDatagram)
	for len(got) < n {
		m, err := c.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return got
			}
			t.Fatalf("read: %v", err)
		}
		got = append(got, string(buf[:m]))
	}
	return got
}

// recv reads one datagram.
func recv(t *testing.T, c *net.UDPConn, timeout time.Duration) string {
	t.Helper()
	got := recvN(t, c, 1, timeout)
	if len(got) == 0 {
		t.Fatalf("no datagram within %s", timeout)
	}
	return got[0]
}

// barrier clears the faults and checks that a marker datagram is the next
// thing the client receives: nothing else was on its way.
func barrier(t *testing.T, p *UDPProxy, c *net.UDPConn) {
	t.Helper()
	p.SetFaults(UDPFaults{})
	send(t, c, "barrier")
	if got := recv(t, c, 5*time.Second); got != "barrier" {
		t.Fatalf("after barrier got %q, want %q", got, "barrier")
	}
}

func wantStats(p *UDPProxy, want UDPStats) func() error {
	return func() error {
		if got := p.Stats(); got != want {
			return fmt.Errorf("Stats() = %+v, want %+v", got, want)
		}
		return nil
	}
}

func TestUDPProxy_NoFaults(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	c := newUDPClient(t, p.Addr())
	const n = 50
	for i := range n {
		msg := fmt.Sprintf("msg-%d", i)
		send(t, c, msg)
		if got := recv(t, c, 5*time.Second); got != msg {
			t.Fatalf("echo %d = %q, want %q", i, got, msg)
		}
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, wantStats(p, UDPStats{Forwarded: 2 * n}))
}

func TestUDPProxy_Drop(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	c := newUDPClient(t, p.Addr())
	p.SetFaults(UDPFaults{Drop: 1})
	const n = 20
	for i := range n {
		send(t, c, strconv.Itoa(i))
	}
	// Drops happen in the read loop, so once all n are counted none can
	// still be on its way.
	checkFor(t, 5*time.Second, 10*time.Millisecond, wantStats(p, UDPStats{Dropped: n}))
	if got := e.received(); got != 0 {
		t.Fatalf("upstream received %d datagrams with Drop=1, want 0", got)
	}
	barrier(t, p, c)
	if got := e.received(); got != 1 {
		t.Fatalf("upstream received %d datagrams, want only the barrier", got)
	}
}

func TestUDPProxy_Duplicate(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	c := newUDPClient(t, p.Addr())
	p.SetFaults(UDPFaults{Duplicate: 1})
	const n = 20
	for i := range n {
		send(t, c, strconv.Itoa(i))
	}
	// Each datagram reaches upstream twice, and each of the two echoes is
	// doubled on the way back.
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		for i := range n {
			if got := e.count(strconv.Itoa(i)); got != 2 {
				return fmt.Errorf("upstream got %d copies of %d, want 2", got, i)
			}
		}
		return nil
	})
	got := recvN(t, c, 4*n, 5*time.Second)
	counts := make(map[string]int)
	for _, g := range got {
		counts[g]++
	}
	for i := range n {
		if counts[strconv.Itoa(i)] != 4 {
			t.Errorf("client got %d copies of %d, want 4", counts[strconv.Itoa(i)], i)
		}
	}
	barrier(t, p, c)
	checkFor(t, 5*time.Second, 10*time.Millisecond, wantStats(p, UDPStats{
		Forwarded:  2*n + 4*n + 2, // and the barrier both ways
		Duplicated: n + 2*n,
	}))
}

func TestUDPProxy_Delay(t *testing.T) {
	tests := []struct {
		name    string
		faults  UDPFaults
		minRTT  time.Duration
		reorder bool
	}{
		{name: "delay", faults: UDPFaults{Delay: 100 * time.Millisecond}, minRTT: 200 * time.Millisecond},
		{name: "delay and jitter", faults: UDPFaults{Delay: 50 * time.Millisecond, Jitter: 50 * time.Millisecond}, minRTT: 100 * time.Millisecond},
		{name: "reorder holds back", faults: UDPFaults{Reorder: 1, ReorderDelay: 60 * time.Millisecond}, minRTT: 120 * time.Millisecond, reorder: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newUDPEcho(t)
			p, _ := newUDPProxy(t, e.addr(), 1, nil)
			c := newUDPClient(t, p.Addr())
			p.SetFaults(tt.faults)
			for i := range 3 {
				msg := strconv.Itoa(i)
				start := time.Now()
				send(t, c, msg)
				if got := recv(t, c, 5*time.Second); got != msg {
					t.Fatalf("echo = %q, want %q", got, msg)
				}
				if rtt := time.Since(start); rtt < tt.minRTT {
					t.Errorf("round trip %d took %s, want at least %s", i, rtt, tt.minRTT)
				}
			}
			if got := p.Stats().Reordered > 0; got != tt.reorder {
				t.Errorf("Reordered = %d, want > 0: %v", p.Stats().Reordered, tt.reorder)
			}
		})
	}
}

// A delayed datagram must not hold up the ones behind it.
func TestUDPProxy_DelayDoesNotBlock(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	slow, fast := newUDPClient(t, p.Addr()), newUDPClient(t, p.Addr())

	p.SetFaults(UDPFaults{Delay: time.Hour})
	send(t, slow, "slow")
	checkFor(t, 5*time.Second, time.Millisecond, func() error {
		if n := p.q.len(); n != 1 {
			return fmt.Errorf("%d datagrams queued, want 1", n)
		}
		return nil
	})
	p.SetFaults(UDPFaults{})
	send(t, fast, "fast")
	if got := recv(t, fast, 5*time.Second); got != "fast" {
		t.Fatalf("fast echo = %q", got)
	}
	if n := p.q.len(); n != 1 || e.count("slow") != 0 {
		t.Fatalf("queued %d, upstream got %d slow; want the slow datagram still queued", n, e.count("slow"))
	}
}

func TestUDPProxy_Reorder(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 42, nil)
	c := newUDPClient(t, p.Addr())
	p.SetFaults(UDPFaults{Reorder: 0.25, ReorderDelay: 30 * time.Millisecond})
	const n = 200
	for i := range n {
		send(t, c, fmt.Sprintf("%03d", i))
	}
	got := recvN(t, c, n, 10*time.Second)
	// Loopback under load may lose a few datagrams; order is what matters
	// here.
	if len(got) < n*3/4 {
		t.Fatalf("received %d of %d datagrams", len(got), n)
	}
	inversions, highest := 0, -1
	for _, g := range got {
		i, err := strconv.Atoi(g)
		if err != nil {
			t.Fatalf("unexpected payload %q", g)
		}
		if i < highest {
			inversions++
		}
		highest = max(highest, i)
	}
	if inversions == 0 {
		t.Fatalf("no datagram arrived out of order (Reordered = %d)", p.Stats().Reordered)
	}
	if p.Stats().Reordered == 0 {
		t.Fatalf("Reordered = 0 with Reorder = 0.25")
	}
	t.Logf("received %d, %d out of order, stats %+v", len(got), inversions, p.Stats())
}

func TestUDPProxy_Blackhole(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	c := newUDPClient(t, p.Addr())

	send(t, c, "before")
	if got := recv(t, c, 5*time.Second); got != "before" {
		t.Fatalf("echo = %q", got)
	}
	p.SetFaults(UDPFaults{Blackhole: true, Delay: time.Hour})
	if !p.Faults().Blackhole {
		t.Fatalf("Faults().Blackhole = false after SetFaults")
	}
	const n = 10
	for i := range n {
		send(t, c, strconv.Itoa(i))
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, wantStats(p, UDPStats{Forwarded: 2, Blackholed: n}))
	if got := e.received(); got != 1 {
		t.Fatalf("upstream received %d datagrams, want 1 (before the blackhole)", got)
	}
	barrier(t, p, c)
}

// Each client gets its own session, and replies go back to the right
// client.
func TestUDPProxy_Sessions(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, nil)
	clients := []*net.UDPConn{newUDPClient(t, p.Addr()), newUDPClient(t, p.Addr())}
	for round := range 5 {
		for i, c := range clients {
			send(t, c, fmt.Sprintf("client-%d-%d", i, round))
		}
		for i, c := range clients {
			want := fmt.Sprintf("client-%d-%d", i, round)
			if got := recv(t, c, 5*time.Second); got != want {
				t.Fatalf("client %d got %q, want %q", i, got, want)
			}
		}
	}
	if got := p.sessionCount(); got != 2 {
		t.Fatalf("sessionCount() = %d, want 2", got)
	}
}

// Idle sessions expire, and a client that comes back gets a new one.
func TestUDPProxy_SessionExpiry(t *testing.T) {
	e := newUDPEcho(t)
	p, _ := newUDPProxy(t, e.addr(), 1, func(p *UDPProxy) { p.idleTimeout = 200 * time.Millisecond })
	c := newUDPClient(t, p.Addr())
	for _, msg := range []string{"first", "again"} {
		send(t, c, msg)
		if got := recv(t, c, 5*time.Second); got != msg {
			t.Fatalf("echo = %q, want %q", got, msg)
		}
		checkFor(t, 5*time.Second, 20*time.Millisecond, func() error {
			if got := p.sessionCount(); got != 0 {
				return fmt.Errorf("%d sessions still open", got)
			}
			return nil
		})
	}
}

func TestUDPProxy_QueueLimit(t *testing.T) {
	e := newUDPEcho(t)
	const limit = 5
	p, stop := newUDPProxy(t, e.addr(), 1, func(p *UDPProxy) { p.q = newDelayQueue(limit, maxQueuedBytes) })
	c := newUDPClient(t, p.Addr())
	p.SetFaults(UDPFaults{Delay: time.Hour})
	const n = 2 * limit
	for i := range n {
		send(t, c, strconv.Itoa(i))
	}
	checkFor(t, 5*time.Second, 10*time.Millisecond, wantStats(p, UDPStats{Dropped: n - limit}))
	if got := p.q.len(); got != limit {
		t.Fatalf("queued %d, want %d", got, limit)
	}
	// Shutdown discards what is still queued, and Run still returns.
	stop()
	if got, want := p.Stats(), (UDPStats{Dropped: n}); got != want {
		t.Fatalf("Stats() after stop = %+v, want %+v", got, want)
	}
}

// The same seed gives the same sequence of fates.
func TestUDPProxy_Seed(t *testing.T) {
	faults := UDPFaults{Drop: 0.3, Duplicate: 0.3, Reorder: 0.3, Jitter: 10 * time.Millisecond}
	fates := func(seed uint64) []string {
		p, err := NewUDPProxy("127.0.0.1:0", "127.0.0.1:9", seed)
		if err != nil {
			t.Fatalf("NewUDPProxy: %v", err)
		}
		defer p.conn.Close() // never run
		p.SetFaults(faults)
		var out []string
		for range 100 {
			copies, delay := p.decide()
			out = append(out, fmt.Sprintf("%d/%s", copies, delay))
		}
		return out
	}
	a, b, other := fates(7), fates(7), fates(8)
	if !slices.Equal(a, b) {
		t.Fatalf("same seed gave different fates:\n%v\n%v", a, b)
	}
	if slices.Equal(a, other) {
		t.Fatalf("different seeds gave the same fates")
	}
}

func TestUDPFaults_Normalize(t *testing.T) {
	tests := []struct {
		name string
		in   UDPFaults
		want UDPFaults
	}{
		{name: "zero", in: UDPFaults{}, want: UDPFaults{}},
		{name: "in range", in: UDPFaults{Drop: 0.5, Delay: time.Second}, want: UDPFaults{Drop: 0.5, Delay: time.Second}},
		{name: "probabilities clamped", in: UDPFaults{Drop: 2, Duplicate: -1, Reorder: 1.5}, want: UDPFaults{Drop: 1, Reorder: 1}},
		{name: "negative durations", in: UDPFaults{Delay: -time.Second, Jitter: -1, ReorderDelay: -1}, want: UDPFaults{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.normalize(); got != tt.want {
				t.Fatalf("normalize(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestRunTwice(t *testing.T) {
	udp, err := NewUDPProxy("127.0.0.1:0", "127.0.0.1:9", 1)
	if err != nil {
		t.Fatalf("NewUDPProxy: %v", err)
	}
	tcp, err := NewTCPProxy("127.0.0.1:0", "127.0.0.1:9")
	if err != nil {
		t.Fatalf("NewTCPProxy: %v", err)
	}
	tests := []struct {
		name string
		run  func(context.Context) error
	}{
		{name: "udp", run: udp.Run},
		{name: "tcp", run: tcp.Run},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A done context makes the first Run close everything and
			// return at once.
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := tt.run(ctx); err != nil {
				t.Fatalf("first Run() = %v, want nil", err)
			}
			if err := tt.run(context.Background()); !errors.Is(err, ErrStarted) {
				t.Fatalf("second Run() = %v, want ErrStarted", err)
			}
		})
	}
}

// --- TCP ---

// newTCPEcho starts a TCP server that echoes each connection until the
// client half-closes, then closes it.
func newTCPEcho(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen echo: %v", err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex // guards conns and closed
		conns  = make(map[net.Conn]struct{})
		closed bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			mu.Lock()
			if closed {
				mu.Unlock()
				c.Close()
				continue
			}
			conns[c] = struct{}{}
			mu.Unlock()
			wg.Go(func() {
				_, _ = io.Copy(c, c)
				c.Close()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

func newTCPProxy(t *testing.T, upstream string) (*TCPProxy, func()) {
	t.Helper()
	p, err := NewTCPProxy("127.0.0.1:0", upstream)
	if err != nil {
		t.Fatalf("NewTCPProxy: %v", err)
	}
	return p, runProxy(t, p.Run)
}

// dialFrom dials addr from the loopback IP src.
func dialFrom(t *testing.T, src, addr string) *net.TCPConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// echo sends msg on c and checks it comes back.
func echo(c net.Conn, msg string) error {
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if string(buf) != msg {
		return fmt.Errorf("echo = %q, want %q", buf, msg)
	}
	return nil
}

func mustEcho(t *testing.T, c net.Conn, msg string) {
	t.Helper()
	if err := echo(c, msg); err != nil {
		t.Fatalf("echo from %s: %v", c.LocalAddr(), err)
	}
}

// mustBeClosed checks that the proxy has closed c: a read ends in EOF or
// an error, not in the deadline.
func mustBeClosed(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatalf("set deadline: %v", err)
	}
	n, err := c.Read(make([]byte, 64))
	if err == nil {
		t.Fatalf("read from %s got %d bytes, want the connection closed", c.LocalAddr(), n)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read from %s: connection still open after 5s", c.LocalAddr())
	}
}

// mustBeRefused dials addr from src and checks the proxy closes the
// connection at accept. The reset can beat connect(2) to its result, so a
// failed dial counts as refused too.
func mustBeRefused(t *testing.T, src, addr string) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dial %s from %s timed out, want it refused", addr, src)
		}
		return
	}
	defer c.Close()
	mustBeClosed(t, c)
}

func noConns(p *TCPProxy) func() error {
	return func() error {
		if n := p.connCount(); n != 0 {
			return fmt.Errorf("%d connections still open", n)
		}
		return nil
	}
}

func TestTCPProxy_Echo(t *testing.T) {
	p, _ := newTCPProxy(t, newTCPEcho(t))
	for _, src := range []string{"127.0.0.1", "127.0.0.2"} {
		t.Run(src, func(t *testing.T) {
			c := dialFrom(t, src, p.Addr())
			for i := range 3 {
				mustEcho(t, c, fmt.Sprintf("hello %d from %s", i, src))
			}
			// Half-close: the request still gets its reply, then EOF,
			// and the proxy lets go of both legs.
			if _, err := io.WriteString(c, "last"); err != nil {
				t.Fatalf("write: %v", err)
			}
			if err := c.CloseWrite(); err != nil {
				t.Fatalf("CloseWrite: %v", err)
			}
			rest, err := io.ReadAll(c)
			if err != nil || string(rest) != "last" {
				t.Fatalf("ReadAll after CloseWrite = %q, %v; want %q, nil", rest, err, "last")
			}
			checkFor(t, 5*time.Second, 10*time.Millisecond, noConns(p))
		})
	}
	if got, want := p.Stats(), (TCPStats{Accepted: 2}); got != want {
		t.Fatalf("Stats() = %+v, want %+v", got, want)
	}
}

func TestTCPProxy_Block(t *testing.T) {
	p, _ := newTCPProxy(t, newTCPEcho(t))
	a := dialFrom(t, "127.0.0.1", p.Addr())
	b := dialFrom(t, "127.0.0.2", p.Addr())
	mustEcho(t, a, "a1")
	mustEcho(t, b, "b1")

	p.Block("127.0.0.2")
	mustBeClosed(t, b)
	mustEcho(t, a, "a2")
	if got, want := p.Blocked(), []string{"127.0.0.2"}; !slices.Equal(got, want) {
		t.Fatalf("Blocked() = %v, want %v", got, want)
	}

	// A new connection from the blocked IP is closed at accept; one from
	// elsewhere is served.
	mustBeRefused(t, "127.0.0.2", p.Addr())
	mustEcho(t, dialFrom(t, "127.0.0.1", p.Addr()), "a3")
	checkFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got, want := p.Stats(), (TCPStats{Accepted: 3, Refused: 1, Cut: 1}); got != want {
			return fmt.Errorf("Stats() = %+v, want %+v", got, want)
		}
		return nil
	})

	p.Unblock("127.0.0.2")
	if got := p.Blocked(); len(got) != 0 {
		t.Fatalf("Blocked() after Unblock = %v, want none", got)
	}
	mustEcho(t, dialFrom(t, "127.0.0.2", p.Addr()), "b2")
	mustEcho(t, a, "a4")
}

func TestTCPProxy_BlockedSet(t *testing.T) {
	tests := []struct {
		name       string
		block      []string
		unblock    []string
		unblockAll bool
		want       []string
	}{
		{name: "none", want: []string{}},
		{name: "sorted", block: []string{"127.0.0.13", "127.0.0.11", "127.0.0.12"}, want: []string{"127.0.0.11", "127.0.0.12", "127.0.0.13"}},
		{name: "normalized", block: []string{"::ffff:127.0.0.2", "127.0.0.3:7000"}, want: []string{"127.0.0.2", "127.0.0.3"}},
		{name: "unblock some", block: []string{"127.0.0.2", "127.0.0.3"}, unblock: []string{"127.0.0.2", "127.0.0.9"}, want: []string{"127.0.0.3"}},
		{name: "unblock all", block: []string{"127.0.0.2", "127.0.0.3"}, unblockAll: true, want: []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewTCPProxy("127.0.0.1:0", "127.0.0.1:9")
			if err != nil {
				t.Fatalf("NewTCPProxy: %v", err)
			}
			defer p.ln.Close() // never run
			p.Block(tt.block...)
			p.Unblock(tt.unblock...)
			if tt.unblockAll {
				p.UnblockAll()
			}
			if got := p.Blocked(); !slices.Equal(got, tt.want) {
				t.Fatalf("Blocked() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTCPProxy_StopClosesConns(t *testing.T) {
	p, stop := newTCPProxy(t, newTCPEcho(t))
	c := dialFrom(t, "127.0.0.1", p.Addr())
	mustEcho(t, c, "hello")
	stop()
	mustBeClosed(t, c)
	if p.connCount() != 0 {
		t.Fatalf("connCount() = %d after Run returned", p.connCount())
	}
}

func TestTCPProxy_UpstreamDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	down := ln.Addr().String()
	ln.Close()
	p, _ := newTCPProxy(t, down)
	mustBeClosed(t, dialFrom(t, "127.0.0.1", p.Addr()))
	checkFor(t, 5*time.Second, 10*time.Millisecond, noConns(p))
}
