package promx

import "github.com/prometheus/client_golang/prometheus"

// Namespace is the first part of every edgesync metric name.
const Namespace = "edgesync"

// Set makes the metrics of one subsystem: edgesync_<subsystem>_<name>.
type Set struct {
	subsystem string
	reg       prometheus.Registerer // nil: metrics are made, not registered
}

// New returns the Set of subsystem registering with reg (which may be nil).
func New(reg prometheus.Registerer, subsystem string) Set {
	return Set{subsystem: subsystem, reg: reg}
}

func (s Set) register(c prometheus.Collector) {
	if s.reg != nil {
		s.reg.MustRegister(c)
	}
}

// Counter makes and registers a counter.
func (s Set) Counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Subsystem: s.subsystem, Name: name, Help: help})
	s.register(c)
	return c
}

// CounterVec makes and registers a counter with labels.
func (s Set) CounterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Subsystem: s.subsystem, Name: name, Help: help}, labels)
	s.register(c)
	return c
}

// Gauge makes and registers a gauge.
func (s Set) Gauge(name, help string) prometheus.Gauge {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: s.subsystem, Name: name, Help: help})
	s.register(g)
	return g
}

// Histogram makes and registers a histogram with explicit buckets.
func (s Set) Histogram(name, help string, buckets []float64) prometheus.Histogram {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Subsystem: s.subsystem, Name: name, Help: help, Buckets: buckets})
	s.register(h)
	return h
}
