package uplink

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/promx"
)

type metrics struct {
	connected    prometheus.Gauge
	dials        *prometheus.CounterVec
	batchesSent  prometheus.Counter
	bytesSent    prometheus.Counter
	recordsAcked prometheus.Counter
	ackSeconds   prometheus.Histogram
	backlog      prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	s := promx.New(reg, "uplink")
	return &metrics{
		connected:    s.Gauge("connected", "1 while a session with central is established."),
		dials:        s.CounterVec("dials_total", "Dial attempts to central, by result.", "result"),
		batchesSent:  s.Counter("batches_sent_total", "Batches written to central."),
		bytesSent:    s.Counter("sent_bytes_total", "Batch frame bytes written (compressed, on the wire)."),
		recordsAcked: s.Counter("records_acked_total", "Records central acknowledged as committed."),
		ackSeconds:   s.Histogram("ack_seconds", "Time from writing a batch to its ack.", prometheus.ExponentialBuckets(0.001, 2, 16)),
		backlog:      s.Gauge("backlog_records", "Outbox records not yet acknowledged by central."),
	}
}
