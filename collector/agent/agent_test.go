package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/api/apitest"
	"github.com/edgesync/edgesync/collector/record"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type site struct {
	pki *apitest.PKI
	tok api.JoinToken
	b   *apitest.Backend
}

func newSite(t *testing.T) *site {
	t.Helper()
	pki, err := apitest.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	tok := api.NewJoinToken("site-a", pki.Fingerprint)
	return &site{pki: pki, tok: tok, b: apitest.NewBackend(tok)}
}

// relay starts a TLS relay; wrap, when set, wraps the agent API handler.
func (s *site) relay(t *testing.T, wrap func(http.Handler) http.Handler) *httptest.Server {
	t.Helper()
	var h http.Handler = api.NewHandler(s.b, api.HandlerConfig{})
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = s.pki.ServerTLS()
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// deadURL returns the URL of a relay that refuses connections.
func (s *site) deadURL(t *testing.T) string {
	t.Helper()
	srv := s.relay(t, nil)
	srv.Close()
	return srv.URL
}

func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

var probeCalls atomic.Int64

func fakeProbe(context.Context) (record.Inventory, error) {
	n := probeCalls.Add(1)
	return record.Inventory{Hostname: "pc-test", OS: record.OS{Name: "Debian"},
		CustomFields: map[string]string{"run": fmt.Sprint(n)}}, errors.New("probe users: who: not found")
}

func newTestAgent(t *testing.T, dir string, s *site, relays ...string) *Agent {
	t.Helper()
	a, err := New(Config{
		Relays: relays, JoinToken: s.tok.String(), StateDir: dir, Once: true,
		Logger: testLogger(t), Probe: fakeProbe, OnceAttempts: 3, MaxRetryWait: 2 * time.Second,
	})
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	return a
}

func seqsUpTo(n uint64) []uint64 {
	var out []uint64
	for i := uint64(1); i <= n; i++ {
		out = append(out, i)
	}
	return out
}

func TestAgent_OnceEnrollsAndSends(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	dir := t.TempDir()
	a := newTestAgent(t, dir, s, srv.URL)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	id := a.DeviceID()
	if got := s.b.Seqs(id); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("site has seqs %v, want [1]", got)
	}
	for _, f := range []string{fileDeviceID, fileIdentity, fileCA, fileNextSeq} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("state file %s: %v", f, err)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, fileIdentity)); fi != nil && fi.Mode().Perm() != 0o600 {
		t.Errorf("identity mode %v, want 0600", fi.Mode().Perm())
	}
	// A second run keeps the identity and the CA, and needs no join token.
	a2, err := New(Config{Relays: []string{srv.URL}, StateDir: dir, Once: true, Logger: testLogger(t), Probe: fakeProbe})
	if err != nil {
		t.Fatal(err)
	}
	if err := a2.Run(context.Background()); err != nil {
		t.Fatalf("second Run() = %v", err)
	}
	if a2.DeviceID() != id || len(s.b.Devices()) != 1 {
		t.Fatalf("device ID changed or re-enrolled: %s vs %s, devices %v", a2.DeviceID(), id, s.b.Devices())
	}
	if got := s.b.Seqs(id); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("site has seqs %v, want [1 2]", got)
	}
	var inv record.Inventory
	recs := s.b.Records(id)
	if err := json.Unmarshal(recs[1].Payload, &inv); err != nil || inv.Hostname != "pc-test" {
		t.Fatalf("stored payload %s: %v", recs[1].Payload, err)
	}
}

func TestAgent_SpoolSurvivesRestart(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	dir := t.TempDir()
	if err := newTestAgent(t, dir, s, srv.URL).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.b.SetReportError(api.ErrUnavailable)
	a := newTestAgent(t, dir, s, srv.URL)
	a.cfg.OnceAttempts = 1
	if err := a.Run(context.Background()); !errors.Is(err, ErrNotAcked) {
		t.Fatalf("Run() during outage = %v, want ErrNotAcked", err)
	}
	if a.Pending() != 1 {
		t.Fatalf("pending = %d, want 1", a.Pending())
	}
	// Restart: the spooled record is still there and goes out first.
	s.b.SetReportError(nil)
	a = newTestAgent(t, dir, s, srv.URL)
	if a.Pending() != 1 {
		t.Fatalf("pending after restart = %d, want 1", a.Pending())
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.b.Seqs(a.DeviceID()); !slices.Equal(got, seqsUpTo(3)) {
		t.Fatalf("site has seqs %v, want 1..3", got)
	}
	if a.Pending() != 0 {
		t.Fatalf("pending = %d after ack", a.Pending())
	}
}

func TestAgent_FailoverToSecondRelay(t *testing.T) {
	s := newSite(t)
	good := s.relay(t, nil)
	a := newTestAgent(t, t.TempDir(), s, s.deadURL(t), good.URL)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got := s.b.Seqs(a.DeviceID()); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("site has seqs %v", got)
	}
}

func TestAgent_BackpressureHonored(t *testing.T) {
	s := newSite(t)
	var refused atomic.Int32
	srv := s.relay(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == api.PathReports && refused.Add(1) == 1 {
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(`{"code":"backpressure","message":"disk critical"}`))
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	a := newTestAgent(t, t.TempDir(), s, srv.URL)
	start := time.Now()
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Fatalf("Run() took %s, want it to wait the 1s Retry-After", el)
	}
	if got := s.b.Seqs(a.DeviceID()); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("site has seqs %v", got)
	}
}

func TestAgent_ConflictRenumbers(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	a := newTestAgent(t, t.TempDir(), s, srv.URL)
	// Someone (a restored backup of this disk) already used seq 1.
	other := record.Record{DeviceID: a.DeviceID(), Seq: 1, Kind: record.KindOplog, CollectedAt: time.Now(),
		Schema: record.SchemaVersion, Payload: json.RawMessage(`{"x":1}`)}
	if _, err := s.b.Report(context.Background(), a.DeviceID(), []record.Record{other}); err != nil {
		t.Fatal(err)
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	recs := s.b.Records(a.DeviceID())
	if len(recs) != 2 || recs[1].Kind != record.KindInventory {
		t.Fatalf("stored %+v, want the inventory renumbered to seq 2", recs)
	}
}

func TestAgent_ReenrollsWhenTokenRefused(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	dir := t.TempDir()
	if err := newTestAgent(t, dir, s, srv.URL).Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	id, _, err := loadIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	id.DeviceToken = "stale"
	if err := saveIdentity(dir, id); err != nil {
		t.Fatal(err)
	}
	a := newTestAgent(t, dir, s, srv.URL)
	if err := a.Run(context.Background()); err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if got := s.b.Seqs(a.DeviceID()); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("site has seqs %v", got)
	}
}

func TestAgent_WrongPinRefused(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	other, err := apitest.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	s.tok.CAFingerprint = other.Fingerprint
	a := newTestAgent(t, t.TempDir(), s, srv.URL)
	if err := a.Run(context.Background()); !errors.Is(err, api.ErrCAPinMismatch) {
		t.Fatalf("Run() = %v, want ErrCAPinMismatch", err)
	}
}

func TestAgent_RunLoop(t *testing.T) {
	s := newSite(t)
	s.b.ConfigValue.InventoryIntervalSeconds = 1
	srv := s.relay(t, nil)
	a := newTestAgent(t, t.TempDir(), s, srv.URL)
	a.cfg.Once = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.b.Seqs(a.DeviceID())) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("site has seqs %v after 10s", s.b.Seqs(a.DeviceID()))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run() = %v", err)
	}
}

func TestResetID(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	dir := t.TempDir()
	a := newTestAgent(t, dir, s, srv.URL)
	s.b.SetReportError(api.ErrUnavailable)
	a.cfg.OnceAttempts = 1
	_ = a.Run(context.Background())
	old := a.DeviceID()
	id, err := ResetID(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id == old || !record.ValidDeviceID(id) {
		t.Fatalf("ResetID() = %q (old %q)", id, old)
	}
	s.b.SetReportError(nil)
	a = newTestAgent(t, dir, s, srv.URL)
	if a.DeviceID() != id || a.Pending() != 0 {
		t.Fatalf("after reset: id %s, pending %d", a.DeviceID(), a.Pending())
	}
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := s.b.Seqs(id); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("new device seqs %v, want [1]", got)
	}
}

func TestConfigValidate(t *testing.T) {
	for name, c := range map[string]Config{
		"no relays":    {StateDir: "x"},
		"no state dir": {Relays: []string{"https://r"}},
		"tiny spool":   {Relays: []string{"https://r"}, StateDir: "x", MaxSpoolBytes: 10},
	} {
		if err := c.Validate(); err == nil {
			t.Errorf("%s: Validate() = nil", name)
		}
	}
}

func TestFitInventory(t *testing.T) {
	inv := record.Inventory{Hostname: "h", OS: record.OS{Name: "L"}}
	for i := range 5000 {
		inv.Software = append(inv.Software, record.Software{Name: fmt.Sprintf("package-%05d", i), Version: "1.0.0-1",
			Publisher: "Some Maintainer <maintainer@example.org>"})
	}
	b, err := fitInventory(inv, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 64<<10 {
		t.Fatalf("fitted payload is %d bytes", len(b))
	}
	var got record.Inventory
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.CustomFields["edgesync.software_truncated"] != "5000" || len(got.Software) == 0 || len(got.Software) >= 5000 {
		t.Fatalf("software %d, custom %v", len(got.Software), got.CustomFields)
	}
}
