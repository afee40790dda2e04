package ingest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memRegistry is an in-memory Registry with the same dedup rules as central's.
type memRegistry struct {
	mu       sync.Mutex
	cursor   map[string]uint64
	records  map[string][][]byte
	contacts int
	failWith error
}

func newMemRegistry() *memRegistry {
	return &memRegistry{cursor: map[string]uint64{}, records: map[string][][]byte{}}
}

func (r *memRegistry) Cursor(_ context.Context, site string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor[site], nil
}

func (r *memRegistry) Accept(_ context.Context, site, _ string, first uint64, recs [][]byte) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failWith != nil {
		return 0, r.failWith
	}
	cur := r.cursor[site]
	if first > cur+1 {
		return cur, fmt.Errorf("accept %d at %d: %w", first, cur, wire.ErrGap)
	}
	for i, rec := range recs {
		if seq := first + uint64(i); seq > cur {
			r.records[site] = append(r.records[site], rec)
			cur = seq
		}
	}
	r.cursor[site] = cur
	return cur, nil
}

func (r *memRegistry) Contact(context.Context, string, string, wire.OutboxStats) error {
	r.mu.Lock()
	r.contacts++
	r.mu.Unlock()
	return nil
}

type testPKI struct {
	dir     string
	central *pki.Bundle
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	dir := t.TempDir()
	if err := pki.Init(dir); err != nil {
		t.Fatal(err)
	}
	p := &testPKI{dir: dir}
	p.central = p.issue(t, pki.IssueRequest{Role: pki.RoleCentral, Name: "central-1"})
	return p
}

func (p *testPKI) issue(t *testing.T, req pki.IssueRequest) *pki.Bundle {
	t.Helper()
	if _, _, err := pki.Issue(p.dir, req); err != nil {
		t.Fatal(err)
	}
	b, err := pki.Load(p.dir, req.Name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// startServer runs a Server on loopback (QUIC and TCP) until the test ends.
func startServer(t *testing.T, p *testPKI, reg Registry) *Server {
	t.Helper()
	s, err := Listen(Config{Addr: "127.0.0.1:0", TCPAddr: "127.0.0.1:0", TLS: p.central.ServerTLS()}, reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run() = %v", err)
		}
	})
	return s
}

// client is a raw protocol client: ctrl and up are the same conn on TCP.
type client struct {
	ctrl, up *wire.Conn
	close    func()
}

func dialQUIC(t *testing.T, s *Server, tc *tls.Config) (*client, error) {
	t.Helper()
	tc = tc.Clone()
	tc.NextProtos = []string{wire.ALPN}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := quic.DialAddr(ctx, s.Addr().String(), tc, nil)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = conn.CloseWithError(0, "") })
	cs, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	us, err := conn.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &client{ctrl: wire.NewConn(cs, 0, time.Second), up: wire.NewConn(us, 0, time.Second),
		close: func() { _ = conn.CloseWithError(0, "") }}, nil
}

func dialTCP(t *testing.T, s *Server, tc *tls.Config) (*client, error) {
	t.Helper()
	tc = tc.Clone()
	tc.NextProtos = []string{wire.ALPN}
	c, err := tls.Dial("tcp", s.TCPAddr().String(), tc)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = c.Close() })
	wc := wire.NewConn(c, 0, time.Second)
	return &client{ctrl: wc, up: wc, close: func() { _ = c.Close() }}, nil
}

func roundTrip(t *testing.T, c *wire.Conn, m wire.Message) (wire.Message, error) {
	t.Helper()
	if _, err := c.Send(m); err != nil {
		return nil, err
	}
	got, err := c.Recv()
	return got, wire.FromCloseError(err)
}

func recs(n int, tag string) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", tag, i)
	}
	return out
}

func TestServer_Protocol(t *testing.T) {
	for _, transport := range []string{"quic", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			p := newTestPKI(t)
			relay := p.issue(t, pki.IssueRequest{Role: pki.RoleRelay, Name: "relay-1", Site: "s1"})
			reg := newMemRegistry()
			s := startServer(t, p, reg)
			dial := dialQUIC
			if transport == "tcp" {
				dial = dialTCP
			}
			c, err := dial(t, s, relay.ClientTLS())
			if err != nil {
				t.Fatal(err)
			}
			got, err := roundTrip(t, c.ctrl, wire.Hello{ProtoVersion: wire.ProtoVersion, Site: "s1", Node: "relay-1"})
			if err != nil || got != (wire.HelloAck{}) {
				t.Fatalf("hello = %#v, %v", got, err)
			}
			steps := []struct {
				name string
				in   wire.Message
				want wire.Message
			}{
				{"first batch", wire.Batch{FirstSeq: 1, Records: recs(3, "a")}, wire.Ack{Upto: 3}},
				{"duplicate", wire.Batch{FirstSeq: 1, Records: recs(2, "dup")}, wire.Ack{Upto: 3}},
				{"gap", wire.Batch{FirstSeq: 10, Records: recs(1, "g")}, wire.Ack{Upto: 3, Code: wire.CodeGap, Message: "batch starts at 10, cursor is 3"}},
				{"overlap", wire.Batch{FirstSeq: 3, Records: recs(3, "b")}, wire.Ack{Upto: 5}},
				{"empty", wire.Batch{FirstSeq: 6, Records: [][]byte{}}, wire.Ack{Upto: 5}},
			}
			for _, st := range steps {
				got, err := roundTrip(t, c.up, st.in)
				if err != nil || got != st.want {
					t.Fatalf("%s: got %#v, %v; want %#v", st.name, got, err, st.want)
				}
			}
			if got, err := roundTrip(t, c.ctrl, wire.Ping{Nonce: 7}); err != nil || got != (wire.Pong{Nonce: 7}) {
				t.Fatalf("ping = %#v, %v", got, err)
			}
			reg.mu.Lock()
			want := []string{"a-0", "a-1", "a-2", "b-1", "b-2"}
			for i, r := range reg.records["s1"] {
				if string(r) != want[i] {
					t.Errorf("record %d = %q, want %q", i+1, r, want[i])
				}
			}
			reg.mu.Unlock()
		})
	}
}

func TestServer_RegistryErrorsMapToCodes(t *testing.T) {
	p := newTestPKI(t)
	relay := p.issue(t, pki.IssueRequest{Role: pki.RoleRelay, Name: "relay-1", Site: "s1"})
	reg := newMemRegistry()
	reg.failWith = fmt.Errorf("raft: %w", wire.ErrUnavailable)
	s := startServer(t, p, reg)
	c, err := dialQUIC(t, s, relay.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := roundTrip(t, c.ctrl, wire.Hello{ProtoVersion: 1, Site: "s1", Node: "relay-1"}); err != nil {
		t.Fatal(err)
	}
	got, err := roundTrip(t, c.up, wire.Batch{FirstSeq: 1, Records: recs(1, "x")})
	if err != nil {
		t.Fatal(err)
	}
	if ack, ok := got.(wire.Ack); !ok || ack.Code != wire.CodeUnavailable || ack.Upto != 0 {
		t.Fatalf("ack = %#v, want code unavailable", got)
	}
}

func TestServer_Refusals(t *testing.T) {
	p := newTestPKI(t)
	relayA := p.issue(t, pki.IssueRequest{Role: pki.RoleRelay, Name: "relay-a", Site: "a"})
	central2 := p.issue(t, pki.IssueRequest{Role: pki.RoleCentral, Name: "central-2"})
	reg := newMemRegistry()
	s := startServer(t, p, reg)

	tests := []struct {
		name    string
		tls     *tls.Config
		first   wire.Message
		wantErr error
	}{
		{"site mismatch", relayA.ClientTLS(), wire.Hello{ProtoVersion: 1, Site: "b", Node: "relay-a"}, wire.ErrSiteMismatch},
		{"old version", relayA.ClientTLS(), wire.Hello{ProtoVersion: 99, Site: "a", Node: "relay-a"}, wire.ErrVersionUnsupported},
		{"batch before hello", relayA.ClientTLS(), wire.Batch{FirstSeq: 1, Records: recs(1, "x")}, wire.ErrBadRequest},
		{"central certificate", central2.ClientTLS(), wire.Hello{ProtoVersion: 1, Site: "a", Node: "central-2"}, wire.ErrForbidden},
		{"no client certificate", &tls.Config{RootCAs: p.central.Pool, MinVersion: tls.VersionTLS13}, wire.Hello{ProtoVersion: 1, Site: "a", Node: "x"}, nil},
	}
	for _, tt := range tests {
		for _, transport := range []string{"quic", "tcp"} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				dial := dialQUIC
				if transport == "tcp" {
					dial = dialTCP
				}
				c, err := dial(t, s, tt.tls)
				if err != nil {
					if tt.wantErr == nil {
						return // refused during the handshake
					}
					t.Fatalf("dial: %v", err)
				}
				got, err := roundTrip(t, c.ctrl, tt.first)
				if e, ok := got.(wire.Error); ok {
					err = e.Err()
				}
				if err == nil {
					t.Fatalf("got %#v, want refusal", got)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			})
		}
	}
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if reg.contacts != 0 || len(reg.records) != 0 {
		t.Fatalf("refused clients reached the registry: contacts=%d records=%d", reg.contacts, len(reg.records))
	}
}
