package agent

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/api"
)

func TestSimulate(t *testing.T) {
	s := newSite(t)
	var refused atomic.Int32
	flaky := s.relay(t, func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// The first few reports meet backpressure, then no leader.
			if r.URL.Path == api.PathReports {
				switch n := refused.Add(1); {
				case n <= 3:
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"code":"backpressure","message":"outbox full"}`))
					return
				case n <= 6:
					w.WriteHeader(http.StatusServiceUnavailable)
					_, _ = w.Write([]byte(`{"code":"unavailable","message":"no leader"}`))
					return
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	good := s.relay(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := Simulate(ctx, SimConfig{
		Relays: []string{s.deadURL(t), flaky.URL, good.URL}, JoinToken: s.tok.String(),
		Agents: 6, Reports: 120, RecordBytes: 2048, Concurrency: 3, BatchSize: 50,
		Logger: testLogger(t),
	})
	if err != nil {
		t.Fatalf("Simulate() = %v", err)
	}
	if res.Agents != 6 || res.Acked != 6*120 || res.Sent < res.Acked || len(res.AckedByDevice) != 6 || res.RecordsPerSec <= 0 {
		t.Fatalf("result %+v", res)
	}
	want := seqsUpTo(120)
	for dev, acked := range res.AckedByDevice {
		if acked != 120 {
			t.Errorf("device %s acked %d", dev, acked)
		}
		if got := s.b.Seqs(dev); !slices.Equal(got, want) {
			t.Errorf("device %s: site holds %d seqs, want exactly 1..120", dev, len(got))
		}
	}
	recs := s.b.Records(s.b.Devices()[0])
	if n := len(recs[0].Payload); n < 1800 || n > 2300 {
		t.Errorf("payload is %d bytes, want about 2048", n)
	}
}

func TestSimulate_BadToken(t *testing.T) {
	s := newSite(t)
	srv := s.relay(t, nil)
	wrong := api.NewJoinToken("site-a", s.tok.CAFingerprint)
	_, err := Simulate(context.Background(), SimConfig{Relays: []string{srv.URL}, JoinToken: wrong.String(), Agents: 2, Reports: 1, Logger: testLogger(t)})
	if err == nil {
		t.Fatal("Simulate() with a wrong join token succeeded")
	}
}

func TestSimulate_BackpressureHonored(t *testing.T) {
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
	res, err := Simulate(context.Background(), SimConfig{Relays: []string{srv.URL}, JoinToken: s.tok.String(),
		Agents: 1, Reports: 10, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if res.Duration < 900*time.Millisecond || res.Errors != 1 || res.Acked != 10 {
		t.Fatalf("result %+v: want one refusal, a 1s wait, then all acked", res)
	}
}
