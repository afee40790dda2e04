package raftnode

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Layer is the network under the raft transport (STYLE rule 10): a listener
// for inbound raft connections plus a dialer for outbound ones. Tests can
// wrap it to drop or delay traffic.
type Layer interface {
	net.Listener
	Dial(addr string, timeout time.Duration) (net.Conn, error)
}

// tcpLayer is a TCP Layer, optionally with mutual TLS on both sides.
type tcpLayer struct {
	net.Listener
	tls   *tls.Config
	local *net.TCPAddr // source address for Dial; nil lets the kernel choose
}

// NewTCPLayer listens on addr (HOST:PORT). With tlsConf non-nil both the
// listener and Dial use mutual TLS: the listener requires and verifies a
// client certificate against tlsConf.ClientCAs, and Dial presents
// tlsConf.Certificates and verifies the server against tlsConf.RootCAs,
// using the dialled host as ServerName unless tlsConf.ServerName is set.
func NewTCPLayer(addr string, tlsConf *tls.Config) (Layer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen raft %s: %w", addr, err)
	}
	l := &tcpLayer{Listener: ln}
	// Dial from the listen IP when it is a specific one: on a multi-homed
	// appliance raft traffic then leaves from the raft interface, and peers
	// (or a firewall) see the same address the node listens on.
	if ta, ok := ln.Addr().(*net.TCPAddr); ok && !ta.IP.IsUnspecified() {
		l.local = &net.TCPAddr{IP: ta.IP}
	}
	if tlsConf != nil {
		srv := tlsConf.Clone()
		srv.ClientAuth = tls.RequireAndVerifyClientCert
		if srv.MinVersion < tls.VersionTLS12 {
			srv.MinVersion = tls.VersionTLS12
		}
		l.Listener = tls.NewListener(ln, srv)
		l.tls = tlsConf.Clone()
	}
	return l, nil
}

func (l *tcpLayer) Dial(addr string, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	if l.local != nil {
		d.LocalAddr = l.local
	}
	if l.tls == nil {
		return d.Dial("tcp", addr)
	}
	conf := l.tls
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("dial raft %s: %w", addr, err)
		}
		conf = conf.Clone()
		conf.ServerName = host
	}
	return tls.DialWithDialer(d, "tcp", addr, conf)
}

// advertisedLayer reports addr as its address, which raft replicates as
// this node's ServerAddress and peers dial.
type advertisedLayer struct {
	Layer
	addr string
}

func (l advertisedLayer) Addr() net.Addr { return advertAddr(l.addr) }

type advertAddr string

func (a advertAddr) Network() string { return "tcp" }
func (a advertAddr) String() string  { return string(a) }

// streamLayer adapts a Layer to raft.StreamLayer. It also tracks every
// connection it hands to raft and closes them all on Close: raft's
// NetworkTransport.Close only closes the listener, leaving pooled outbound
// connections open and inbound handler goroutines blocked in Read until the
// peer hangs up.
type streamLayer struct {
	Layer

	// mu guards conns and closed.
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

func newStreamLayer(l Layer) *streamLayer {
	return &streamLayer{Layer: l, conns: map[*trackedConn]struct{}{}}
}

func (s *streamLayer) track(c net.Conn) (net.Conn, error) {
	tc := &trackedConn{Conn: c, owner: s}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	s.conns[tc] = struct{}{}
	return tc, nil
}

func (s *streamLayer) Accept() (net.Conn, error) {
	c, err := s.Layer.Accept()
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.Layer.Dial(string(addr), timeout)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

func (s *streamLayer) Close() error {
	err := s.Layer.Close()
	s.mu.Lock()
	s.closed = true
	conns := s.conns
	s.conns = map[*trackedConn]struct{}{}
	s.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return err
}

type trackedConn struct {
	net.Conn
	owner *streamLayer
}

func (c *trackedConn) Close() error {
	c.owner.mu.Lock()
	delete(c.owner.conns, c)
	c.owner.mu.Unlock()
	return c.Conn.Close()
}

// serialHeartbeats turns off hashicorp/raft's heartbeat fast path, so
// heartbeats go through the main raft loop like every other RPC.
//
// The fast path handles a heartbeat on the transport goroutine; one that
// carries a newer term bumps currentTerm and makes a deposed leader a
// follower without synchronising with the leader loop, which may at that
// moment dispatch a client entry stamped with the new term at an index the
// new leader already used. Followers then keep their own entry (same index,
// same term) and the logs diverge on committed entries. The chaos suite
// caught it: a central leader SIGCONT'd after a pause wrote a command at
// (5468, term 12) where the term-12 leader had written its no-op, and the
// members applied different commands (hashicorp/raft#695, #701, unfixed in
// v1.8.0). Serialised heartbeats can wait behind a log write; that costs
// election slack, never safety.
type serialHeartbeats struct {
	*raft.NetworkTransport
}

// SetHeartbeatHandler ignores the handler: no fast path.
func (serialHeartbeats) SetHeartbeatHandler(func(rpc raft.RPC)) {}

// The wrapper must keep the optional interfaces raft looks for.
var (
	_ raft.WithPreVote = serialHeartbeats{}
	_ raft.WithClose   = serialHeartbeats{}
)
