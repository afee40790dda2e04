package ingest

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/promx"
)

type metrics struct {
	connections     prometheus.Gauge
	refused         *prometheus.CounterVec
	batches         *prometheus.CounterVec
	recordsAccepted prometheus.Counter
	bytesReceived   prometheus.Counter
	acceptSeconds   prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	s := promx.New(reg, "ingest")
	return &metrics{
		connections:     s.Gauge("connections", "Relay connections currently open."),
		refused:         s.CounterVec("refused_total", "Relay connections refused, by wire code.", "code"),
		batches:         s.CounterVec("batches_total", "Batches answered, by wire code of the ack.", "code"),
		recordsAccepted: s.Counter("records_accepted_total", "Records newly committed (cursor advance)."),
		bytesReceived:   s.Counter("record_bytes_received_total", "Record bytes received in batches (uncompressed)."),
		acceptSeconds:   s.Histogram("accept_seconds", "Time for the registry to commit one batch.", prometheus.ExponentialBuckets(0.001, 2, 14)),
	}
}
