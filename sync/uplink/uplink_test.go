package uplink_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/uplink"
)

const recordSize = 1024

type fixture struct {
	pki     *testPKI
	central *pki.Bundle
	relay   *pki.Bundle
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	p := newTestPKI(tb)
	return &fixture{
		pki:     p,
		central: p.bundle(tb, pki.IssueRequest{Role: pki.RoleCentral, Name: "central-1"}),
		relay:   p.bundle(tb, pki.IssueRequest{Role: pki.RoleRelay, Name: "relay-1", Site: "site-a"}),
	}
}

func testConfig(transport string, addrs ...string) uplink.Config {
	cfg := uplink.DefaultConfig()
	cfg.Site, cfg.Node, cfg.Transport, cfg.Centrals = "site-a", "relay-1", transport, addrs
	cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	cfg.PollInterval = 20 * time.Millisecond
	cfg.StatusInterval = 50 * time.Millisecond
	return cfg
}

func mustNew(tb testing.TB, cfg uplink.Config, ob uplink.Outbox) *uplink.Uplink {
	tb.Helper()
	u, err := uplink.New(cfg, ob)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

func TestUplink_DrainExactlyOnceInOrder(t *testing.T) {
	for _, transport := range []string{uplink.TransportQUIC, uplink.TransportTCP} {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t)
			reg := newMemRegistry()
			c := startCentral(t, f.central.ServerTLS(), reg)
			const n = 10000
			ob := newMemOutbox(n, recordSize)
			cfg := testConfig(transport, c.addr(transport))
			cfg.TLS = f.relay.ClientTLS()
			u := mustNew(t, cfg, ob)
			runUplink(t, u)
			reg.waitCursor(t, n, 30*time.Second)
			reg.check(t, n, recordSize)
			waitFor(t, 10*time.Second, func() error {
				if ob.Acked() != n {
					return fmt.Errorf("outbox acked %d", ob.Acked())
				}
				return nil
			})
			// Records added later are kicked through on the same session.
			ob.add(100, recordSize)
			u.Kick()
			reg.waitCursor(t, n+100, 10*time.Second)
			reg.check(t, n+100, recordSize)
			st := u.Status()
			if !st.Connected || st.Transport != transport || st.Central != c.addr(transport) || st.BatchesSent == 0 || st.BytesSent == 0 || st.LastContact.IsZero() {
				t.Fatalf("Status() = %+v", st)
			}
			waitFor(t, 10*time.Second, func() error {
				if got := u.Status().RecordsAcked; got != n+100 {
					return fmt.Errorf("RecordsAcked = %d", got)
				}
				return nil
			})
		})
	}
}

func TestUplink_CentralRestartMidStream(t *testing.T) {
	for _, transport := range []string{uplink.TransportQUIC, uplink.TransportTCP} {
		t.Run(transport, func(t *testing.T) {
			f := newFixture(t)
			reg := newMemRegistry()
			reg.holdAt, reg.held = 3000, make(chan struct{})
			c := startCentral(t, f.central.ServerTLS(), reg)
			const n = 10000
			ob := newMemOutbox(n, recordSize)
			cfg := testConfig(transport, c.addr(transport))
			cfg.TLS = f.relay.ClientTLS()
			runUplink(t, mustNew(t, cfg, ob))

			// A batch past 3000 is committed but its ack is lost when central stops.
			select {
			case <-reg.held:
			case <-time.After(30 * time.Second):
				t.Fatal("registry never reached the hold point")
			}
			c.stop()
			if ob.Acked() >= 3000 {
				t.Fatalf("outbox acked %d before the held batch was acked", ob.Acked())
			}
			c.start()
			reg.waitCursor(t, n, 30*time.Second)
			reg.check(t, n, recordSize)
			waitFor(t, 10*time.Second, func() error {
				if ob.Acked() != n {
					return fmt.Errorf("outbox acked %d", ob.Acked())
				}
				return nil
			})
		})
	}
}

func TestUplink_FailoverToSecondCentral(t *testing.T) {
	f := newFixture(t)
	reg := newMemRegistry()
	c := startCentral(t, f.central.ServerTLS(), reg)
	ob := newMemOutbox(500, recordSize)
	// The first address has nothing listening (a closed TCP port).
	cfg := testConfig(uplink.TransportTCP, "127.0.0.1:1", c.addr(uplink.TransportTCP))
	cfg.TLS = f.relay.ClientTLS()
	runUplink(t, mustNew(t, cfg, ob))
	reg.waitCursor(t, 500, 20*time.Second)
	reg.check(t, 500, recordSize)
}

func TestUplink_CursorReconcile(t *testing.T) {
	tests := []struct {
		name          string
		centralCursor uint64 // records already at central
		outboxAcked   uint64 // outbox acked before start
	}{
		// Central committed a batch whose ack the relay never saw: the outbox catches up.
		{"central ahead", 700, 200},
		// Central lost data (restored from an old snapshot): the relay resends from its cursor.
		{"central behind", 100, 600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			reg := newMemRegistry()
			for seq := uint64(1); seq <= tt.centralCursor; seq++ {
				reg.records = append(reg.records, record(seq, recordSize))
			}
			reg.cursor = tt.centralCursor
			const n = 1000
			ob := newMemOutbox(n, recordSize)
			ob.acked = tt.outboxAcked
			c := startCentral(t, f.central.ServerTLS(), reg)
			cfg := testConfig(uplink.TransportQUIC, c.addr(uplink.TransportQUIC))
			cfg.TLS = f.relay.ClientTLS()
			runUplink(t, mustNew(t, cfg, ob))
			reg.waitCursor(t, n, 20*time.Second)
			reg.check(t, n, recordSize)
		})
	}
}

func TestUplink_CentralCursorAheadOfOutboxStops(t *testing.T) {
	f := newFixture(t)
	reg := newMemRegistry()
	reg.cursor = 5000 // e.g. the relay site was rebuilt with an empty outbox
	c := startCentral(t, f.central.ServerTLS(), reg)
	ob := newMemOutbox(10, recordSize)
	cfg := testConfig(uplink.TransportQUIC, c.addr(uplink.TransportQUIC))
	cfg.TLS = f.relay.ClientTLS()
	u := mustNew(t, cfg, ob)
	runUplink(t, u)
	waitFor(t, 10*time.Second, func() error {
		if st := u.Status(); !strings.Contains(st.LastError, uplink.ErrCursorAhead.Error()) {
			return fmt.Errorf("LastError = %q", st.LastError)
		}
		return nil
	})
	if ob.Acked() != 0 {
		t.Fatalf("outbox acked %d; a cursor ahead of the outbox must not ack anything", ob.Acked())
	}
}

func TestUplink_Refused(t *testing.T) {
	f := newFixture(t)
	otherSite := f.pki.bundle(t, pki.IssueRequest{Role: pki.RoleRelay, Name: "relay-b", Site: "site-b"})
	tests := []struct {
		name    string
		tls     *tls.Config
		wantErr string
	}{
		{"certificate for another site", otherSite.ClientTLS(), "site mismatch"},
		{"no client certificate", &tls.Config{RootCAs: f.relay.Pool, MinVersion: tls.VersionTLS13}, "certificate"},
	}
	for _, tt := range tests {
		for _, transport := range []string{uplink.TransportQUIC, uplink.TransportTCP} {
			t.Run(tt.name+"/"+transport, func(t *testing.T) {
				reg := newMemRegistry()
				c := startCentral(t, f.central.ServerTLS(), reg)
				ob := newMemOutbox(10, recordSize)
				cfg := testConfig(transport, c.addr(transport))
				cfg.TLS = tt.tls
				u := mustNew(t, cfg, ob)
				stop := runUplink(t, u)
				waitFor(t, 10*time.Second, func() error {
					if st := u.Status(); !strings.Contains(st.LastError, tt.wantErr) {
						return fmt.Errorf("LastError = %q", st.LastError)
					}
					return nil
				})
				stop()
				reg.mu.Lock()
				defer reg.mu.Unlock()
				if reg.cursor != 0 || reg.contacts != 0 {
					t.Fatalf("refused relay reached the registry: cursor %d contacts %d", reg.cursor, reg.contacts)
				}
				if u.Status().Connected {
					t.Fatal("Status().Connected after refusal")
				}
			})
		}
	}
}

func TestNew_Validates(t *testing.T) {
	good := testConfig(uplink.TransportQUIC, "127.0.0.1:1")
	good.TLS = &tls.Config{}
	tests := []struct {
		name string
		mod  func(*uplink.Config)
	}{
		{"bad site", func(c *uplink.Config) { c.Site = "Site A" }},
		{"no centrals", func(c *uplink.Config) { c.Centrals = nil }},
		{"bad transport", func(c *uplink.Config) { c.Transport = "udp" }},
		{"no tls", func(c *uplink.Config) { c.TLS = nil }},
		{"negative rate", func(c *uplink.Config) { c.RateLimit = -1 }},
		{"backoff inverted", func(c *uplink.Config) { c.MinBackoff, c.MaxBackoff = time.Second, time.Millisecond }},
		{"huge batch", func(c *uplink.Config) { c.BatchBytes = 1 << 30 }},
	}
	if _, err := uplink.New(good, newMemOutbox(0, 1)); err != nil {
		t.Fatalf("New(good) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mod(&cfg)
			if _, err := uplink.New(cfg, newMemOutbox(0, 1)); err == nil {
				t.Fatal("New() accepted an invalid config")
			}
		})
	}
	if _, err := uplink.New(good, nil); err == nil || errors.Is(err, nil) {
		t.Fatal("New() accepted a nil outbox")
	}
}
