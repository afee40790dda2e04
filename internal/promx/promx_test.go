package promx

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestSet(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := New(reg, "demo")
	s.Counter("things_total", "Things.").Inc()
	s.CounterVec("refused_total", "Refused, by code.", "code").WithLabelValues("x").Inc()
	s.Gauge("open", "Open now.").Set(2)
	s.Histogram("took_seconds", "Time taken.", prometheus.ExponentialBuckets(0.001, 2, 4)).Observe(0.003)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		help string
	}{
		{"edgesync_demo_open", "Open now."},
		{"edgesync_demo_refused_total", "Refused, by code."},
		{"edgesync_demo_things_total", "Things."},
		{"edgesync_demo_took_seconds", "Time taken."},
	}
	if len(mfs) != len(tests) {
		t.Fatalf("%d metric families, want %d", len(mfs), len(tests))
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if mfs[i].GetName() != tt.name || mfs[i].GetHelp() != tt.help {
				t.Fatalf("got %s %q, want %s %q", mfs[i].GetName(), mfs[i].GetHelp(), tt.name, tt.help)
			}
		})
	}
	var bounds []float64
	for _, b := range mfs[3].GetMetric()[0].GetHistogram().GetBucket() {
		bounds = append(bounds, b.GetUpperBound())
	}
	if !slices.Equal(bounds, []float64{0.001, 0.002, 0.004, 0.008}) {
		t.Fatalf("buckets %v", bounds)
	}
}

// TestSet_NilRegistry: unit tests make metrics without a registry.
func TestSet_NilRegistry(t *testing.T) {
	s := New(nil, "demo")
	s.Counter("things_total", "Things.").Inc()
	s.Counter("things_total", "Things.").Inc() // no registry, no duplicate panic
}
