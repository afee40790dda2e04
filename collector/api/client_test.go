package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/api/apitest"
	"github.com/edgesync/edgesync/collector/record"
)

type relayEnv struct {
	pki *apitest.PKI
	tok api.JoinToken
	b   *apitest.Backend
}

func newRelayEnv(t *testing.T) *relayEnv {
	t.Helper()
	pki, err := apitest.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	tok := api.NewJoinToken("site-a", pki.Fingerprint)
	return &relayEnv{pki: pki, tok: tok, b: apitest.NewBackend(tok)}
}

// serve starts a TLS relay serving h (or the agent API when h is nil).
func (r *relayEnv) serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	if h == nil {
		h = api.NewHandler(r.b, api.HandlerConfig{})
	}
	s := httptest.NewUnstartedServer(h)
	s.TLS = r.pki.ServerTLS()
	s.StartTLS()
	t.Cleanup(s.Close)
	return s
}

func TestClient_PinnedEnrollReport(t *testing.T) {
	r := newRelayEnv(t)
	s := r.serve(t, nil)
	ctx := context.Background()

	caPEM, err := api.FetchPinnedCA(ctx, []string{s.URL}, r.tok.CAFingerprint)
	if err != nil {
		t.Fatalf("FetchPinnedCA() = %v", err)
	}
	if string(caPEM) != string(r.pki.CAPEM) {
		t.Fatal("FetchPinnedCA() returned another certificate")
	}
	c := api.NewClient([]string{s.URL}, api.PinnedTLS(r.tok.CAFingerprint))
	enr, err := c.Enroll(ctx, api.EnrollRequest{JoinToken: r.tok.String(), Hostname: "pc"})
	if err != nil {
		t.Fatalf("Enroll() = %v", err)
	}
	conf, err := api.CATLS(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	c = api.NewClient([]string{s.URL}, conf)
	// A big batch goes zstd-compressed.
	var recs []record.Record
	for i := range 50 {
		recs = append(recs, record.Record{DeviceID: enr.DeviceID, Seq: uint64(i + 1), Kind: record.KindEvent,
			CollectedAt: time.Now(), Schema: record.SchemaVersion,
			Payload: json.RawMessage(`{"number":1,"message":"` + strings.Repeat("m", 200) + `"}`)})
	}
	resp, err := c.Report(ctx, enr.DeviceID, enr.DeviceToken, recs)
	if err != nil || resp.AckedSeq != 50 {
		t.Fatalf("Report() = %+v, %v", resp, err)
	}
	if _, err := c.Config(ctx, enr.DeviceID, enr.DeviceToken); err != nil {
		t.Fatalf("Config() = %v", err)
	}

	_, err = c.Report(ctx, enr.DeviceID, "wrong", recs[:1])
	if !errors.Is(err, api.ErrUnauthorized) {
		t.Fatalf("Report(bad token) = %v, want ErrUnauthorized", err)
	}
	bad := recs[0]
	bad.Payload = json.RawMessage(`{"number":2}`)
	_, err = c.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{bad})
	var ce *api.ConflictError
	if !errors.As(err, &ce) || ce.Seq != 1 || !errors.Is(err, api.ErrConflict) {
		t.Fatalf("Report(conflict) = %v, want *ConflictError{1}", err)
	}
	_, err = c.Enroll(ctx, api.EnrollRequest{JoinToken: api.NewJoinToken("site-a", r.tok.CAFingerprint).String(), Hostname: "pc"})
	if !errors.Is(err, api.ErrInvalidJoinToken) {
		t.Fatalf("Enroll(bad token) = %v", err)
	}
	bad.Seq = 0
	_, err = c.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{bad})
	var he *api.HTTPError
	if !errors.Is(err, api.ErrInvalidRequest) || !errors.As(err, &he) || len(he.Body.Records) != 1 || he.Body.Records[0].Code != record.CodeBadSeq {
		t.Fatalf("Report(invalid) = %v", err)
	}
}

func TestClient_PinMismatch(t *testing.T) {
	r := newRelayEnv(t)
	s := r.serve(t, nil)
	other, err := apitest.NewPKI()
	if err != nil {
		t.Fatal(err)
	}
	c := api.NewClient([]string{s.URL}, api.PinnedTLS(other.Fingerprint))
	if _, err := c.Enroll(context.Background(), api.EnrollRequest{JoinToken: r.tok.String(), Hostname: "pc"}); !errors.Is(err, api.ErrCAPinMismatch) {
		t.Fatalf("Enroll() with wrong pin = %v, want ErrCAPinMismatch", err)
	}
	if _, err := api.FetchPinnedCA(context.Background(), []string{s.URL}, other.Fingerprint); err == nil {
		t.Fatal("FetchPinnedCA() with wrong pin succeeded")
	}
}

func TestClient_Failover(t *testing.T) {
	r := newRelayEnv(t)
	var downHits atomic.Int32
	down := r.serve(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		downHits.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"code":"unavailable","message":"no leader"}`))
	}))
	dead := r.serve(t, nil)
	dead.Close() // connection refused
	good := r.serve(t, nil)
	c := api.NewClient([]string{dead.URL, down.URL, good.URL}, api.PinnedTLS(r.tok.CAFingerprint))
	ctx := context.Background()
	enr, err := c.Enroll(ctx, api.EnrollRequest{JoinToken: r.tok.String(), Hostname: "pc"})
	if err != nil {
		t.Fatalf("Enroll() = %v", err)
	}
	// Sticky: the next call goes straight to the good relay.
	hits := downHits.Load()
	if _, err := c.Config(ctx, enr.DeviceID, enr.DeviceToken); err != nil {
		t.Fatal(err)
	}
	if downHits.Load() != hits {
		t.Fatal("client did not stick to the relay that answered")
	}
}

func TestClient_Backpressure(t *testing.T) {
	r := newRelayEnv(t)
	s1, s2 := r.serve(t, nil), r.serve(t, nil)
	c := api.NewClient([]string{s1.URL, s2.URL}, api.PinnedTLS(r.tok.CAFingerprint))
	ctx := context.Background()
	enr, err := c.Enroll(ctx, api.EnrollRequest{JoinToken: r.tok.String(), Hostname: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	r.b.SetReportError(&api.BackpressureError{RetryAfter: 3 * time.Second, Reason: "outbox full"})
	rec := record.Record{DeviceID: enr.DeviceID, Seq: 1, Kind: record.KindOplog, CollectedAt: time.Now(),
		Schema: record.SchemaVersion, Payload: json.RawMessage(`{}`)}
	_, err = c.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{rec})
	var bp *api.BackpressureError
	if !errors.As(err, &bp) || bp.RetryAfter != 3*time.Second || bp.Reason != "outbox full" {
		t.Fatalf("Report() = %v, want *BackpressureError 3s", err)
	}
	if n := r.b.ReportCalls(); n != 2 {
		t.Fatalf("backend saw %d calls, want one per relay", n)
	}
}

func TestJoinToken(t *testing.T) {
	fp := strings.Repeat("0f", 32)
	tok := api.NewJoinToken("branch-01", strings.ToUpper("0F:"+strings.Repeat("0f", 31)))
	if tok.CAFingerprint != fp {
		t.Fatalf("fingerprint not normalised: %q", tok.CAFingerprint)
	}
	got, err := api.ParseJoinToken(tok.String())
	if err != nil || got != tok {
		t.Fatalf("ParseJoinToken(String()) = %+v, %v", got, err)
	}
	if !got.Matches(tok.SecretHash()) || got.Matches(api.NewJoinToken("x", fp).SecretHash()) {
		t.Fatal("Matches() wrong")
	}
	if len(tok.SecretHash()) != 64 || strings.Contains(tok.SecretHash(), tok.Secret) {
		t.Fatal("SecretHash() is not a hex SHA-256")
	}
	secret := tok.Secret
	for _, s := range []string{
		"",
		"esj2.site." + secret + "." + fp,
		"esj1..." + fp,
		"esj1.si.te." + secret + "." + fp,
		"esj1.site." + secret + "=." + fp,
		"esj1.site." + secret[:40] + "." + fp,
		"esj1.site." + secret + "." + strings.ToUpper(fp),
		"esj1.site." + secret + "." + fp[:62],
		"esj1.site." + secret + "." + strings.Repeat("zz", 32),
		"esj1.sité." + secret + "." + fp,
		"esj1.site." + secret + "." + fp + ".x",
	} {
		if _, err := api.ParseJoinToken(s); !errors.Is(err, api.ErrInvalidJoinToken) {
			t.Errorf("ParseJoinToken(%q) err = %v, want ErrInvalidJoinToken", s, err)
		}
	}
}
