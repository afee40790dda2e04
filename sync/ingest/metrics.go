package ingest

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	connections     prometheus.Gauge
	refused         *prometheus.CounterVec
	batches         *prometheus.CounterVec
	recordsAccepted prometheus.Counter
	bytesReceived   prometheus.Counter
	acceptSeconds   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		connections: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "connections",
			Help: "Relay connections currently open.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "refused_total",
			Help: "Relay connections refused, by wire code.",
		}, []string{"code"}),
		batches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "batches_total",
			Help: "Batches answered, by wire code of the ack.",
		}, []string{"code"}),
		recordsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "records_accepted_total",
			Help: "Records newly committed (cursor advance).",
		}),
		bytesReceived: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "record_bytes_received_total",
			Help: "Record bytes received in batches (uncompressed).",
		}),
		acceptSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgesync", Subsystem: "ingest", Name: "accept_seconds",
			Help:    "Time for the registry to commit one batch.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connections, m.refused, m.batches, m.recordsAccepted, m.bytesReceived, m.acceptSeconds)
	}
	return m
}
