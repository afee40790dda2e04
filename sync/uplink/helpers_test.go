package uplink_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/ingest"
	"github.com/edgesync/edgesync/sync/uplink"
	"github.com/edgesync/edgesync/sync/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memOutbox is an in-memory Outbox holding records 1..n; it never trims.
type memOutbox struct {
	mu    sync.Mutex
	items []uplink.Item // items[i].Seq == i+1
	acked uint64
	acks  int
}

func newMemOutbox(n, size int) *memOutbox {
	ob := &memOutbox{}
	ob.add(n, size)
	return ob
}

// record is a deterministic JSON-ish record of about size bytes: field names repeat, values are
// pseudo-random, so it compresses roughly like inventory data rather than like a constant.
func record(seq uint64, size int) []byte {
	rng := rand.New(rand.NewPCG(seq, 0x9e3779b97f4a7c15))
	b := fmt.Appendf(nil, `{"seq":%d,"device_id":"%016x%016x","kind":"inventory","payload":{`, seq, rng.Uint64(), rng.Uint64())
	for i := 0; len(b) < size-40; i++ {
		b = fmt.Appendf(b, `"software_%d":{"name":"pkg-%x","version":"%d.%d.%d"},`, i, rng.Uint32(), rng.IntN(10), rng.IntN(30), rng.IntN(200))
	}
	for len(b) < size-2 {
		b = append(b, ' ')
	}
	return append(b[:size-2], `}}`...)
}

func (o *memOutbox) add(n, size int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		seq := uint64(len(o.items) + 1)
		o.items = append(o.items, uplink.Item{Seq: seq, Data: record(seq, size)})
	}
}

func (o *memOutbox) Pending(after uint64, maxRecords, maxBytes int) ([]uplink.Item, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []uplink.Item
	size := 0
	for i := after; i < uint64(len(o.items)) && len(out) < maxRecords; i++ {
		if len(out) > 0 && size+len(o.items[i].Data) > maxBytes {
			break
		}
		out = append(out, o.items[i])
		size += len(o.items[i].Data)
	}
	return out, nil
}

func (o *memOutbox) Ack(_ context.Context, upto uint64) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if upto > uint64(len(o.items)) {
		return fmt.Errorf("ack %d beyond outbox %d", upto, len(o.items))
	}
	o.acked = max(o.acked, upto)
	o.acks++
	return nil
}

func (o *memOutbox) Acked() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.acked
}

func (o *memOutbox) Stats() wire.OutboxStats {
	o.mu.Lock()
	defer o.mu.Unlock()
	n := uint64(len(o.items))
	return wire.OutboxStats{Depth: n - o.acked, AckedSeq: o.acked, NextSeq: n + 1}
}

// memRegistry is an in-memory central Registry. Accept is atomic; a gate can hold it.
type memRegistry struct {
	mu       sync.Mutex
	cursor   uint64
	records  [][]byte
	contacts int
	changed  chan struct{} // closed and replaced whenever the cursor moves
	// holdAt, when > 0, makes the Accept that crosses it commit, signal held, then block until
	// its ctx is done and fail: a commit whose ack never reaches the relay.
	holdAt uint64
	held   chan struct{}
}

func newMemRegistry() *memRegistry { return &memRegistry{changed: make(chan struct{})} }

func (r *memRegistry) Cursor(context.Context, string) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cursor, nil
}

func (r *memRegistry) Accept(ctx context.Context, _, _ string, first uint64, recs [][]byte) (uint64, error) {
	r.mu.Lock()
	if first > r.cursor+1 {
		defer r.mu.Unlock()
		return r.cursor, fmt.Errorf("accept %d at %d: %w", first, r.cursor, wire.ErrGap)
	}
	for i, rec := range recs {
		if seq := first + uint64(i); seq > r.cursor {
			r.records = append(r.records, append([]byte(nil), rec...))
			r.cursor = seq
		}
	}
	cur := r.cursor
	close(r.changed)
	r.changed = make(chan struct{})
	hold := r.holdAt > 0 && cur >= r.holdAt
	if hold {
		r.holdAt = 0
	}
	r.mu.Unlock()
	if hold {
		close(r.held)
		<-ctx.Done()
		return 0, ctx.Err()
	}
	return cur, nil
}

func (r *memRegistry) Contact(context.Context, string, string, wire.OutboxStats) error {
	r.mu.Lock()
	r.contacts++
	r.mu.Unlock()
	return nil
}

// waitCursor blocks until the cursor reaches n or the deadline passes.
func (r *memRegistry) waitCursor(tb testing.TB, n uint64, timeout time.Duration) {
	tb.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		cur, ch := r.cursor, r.changed
		r.mu.Unlock()
		if cur >= n {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("cursor %d, want %d within %s", cur, n, timeout)
		}
	}
}

// check asserts the registry holds exactly records 1..n of size, in order.
func (r *memRegistry) check(t *testing.T, n, size int) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cursor != uint64(n) || len(r.records) != n {
		t.Fatalf("registry cursor %d with %d records, want %d", r.cursor, len(r.records), n)
	}
	for i, rec := range r.records {
		if want := record(uint64(i+1), size); string(rec) != string(want) {
			t.Fatalf("record %d = %.40q, want %.40q", i+1, rec, want)
		}
	}
}

type testPKI struct {
	dir string
}

func newTestPKI(tb testing.TB) *testPKI {
	tb.Helper()
	dir := tb.TempDir()
	if err := pki.Init(dir); err != nil {
		tb.Fatal(err)
	}
	return &testPKI{dir: dir}
}

func (p *testPKI) bundle(tb testing.TB, req pki.IssueRequest) *pki.Bundle {
	tb.Helper()
	if _, _, err := pki.Issue(p.dir, req); err != nil {
		tb.Fatal(err)
	}
	b, err := pki.Load(p.dir, req.Name)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// central is a running ingest server that can be stopped and restarted on the same ports.
type central struct {
	tb       testing.TB
	tls      *tls.Config
	reg      ingest.Registry
	quicAddr string
	tcpAddr  string
	srv      *ingest.Server
	cancel   context.CancelFunc
	done     chan error
}

func startCentral(tb testing.TB, tc *tls.Config, reg ingest.Registry) *central {
	tb.Helper()
	c := &central{tb: tb, tls: tc, reg: reg, quicAddr: "127.0.0.1:0", tcpAddr: "127.0.0.1:0"}
	c.start()
	tb.Cleanup(c.stop)
	return c
}

func (c *central) start() {
	c.tb.Helper()
	srv, err := ingest.Listen(ingest.Config{Addr: c.quicAddr, TCPAddr: c.tcpAddr, TLS: c.tls, Logger: testLogger(c.tb)}, c.reg)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.srv, c.quicAddr, c.tcpAddr = srv, srv.Addr().String(), srv.TCPAddr().String()
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.done = cancel, make(chan error, 1)
	go func() { c.done <- srv.Run(ctx) }()
}

func (c *central) stop() {
	if c.cancel == nil {
		return
	}
	c.cancel()
	if err := <-c.done; err != nil {
		c.tb.Errorf("ingest Run() = %v", err)
	}
	c.cancel = nil
}

func (c *central) addr(transport string) string {
	if transport == uplink.TransportTCP {
		return c.tcpAddr
	}
	return c.quicAddr
}

// runUplink starts u.Run and stops it when the test ends.
func runUplink(tb testing.TB, u *uplink.Uplink) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("uplink Run() = %v", err)
		}
	}
	tb.Cleanup(stop)
	return stop
}

// waitFor polls cond until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		<-tick.C
	}
}

// testLogger keeps benchmark output clean; tests log to stderr for diagnosis.
func testLogger(tb testing.TB) *slog.Logger {
	if _, ok := tb.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.Default()
}
