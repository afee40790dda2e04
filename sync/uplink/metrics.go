package uplink

import "github.com/prometheus/client_golang/prometheus"

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
	m := &metrics{
		connected: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "connected",
			Help: "1 while a session with central is established.",
		}),
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "dials_total",
			Help: "Dial attempts to central, by result.",
		}, []string{"result"}),
		batchesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "batches_sent_total",
			Help: "Batches written to central.",
		}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "sent_bytes_total",
			Help: "Batch frame bytes written (compressed, on the wire).",
		}),
		recordsAcked: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "records_acked_total",
			Help: "Records central acknowledged as committed.",
		}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "ack_seconds",
			Help:    "Time from writing a batch to its ack.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 16),
		}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "edgesync", Subsystem: "uplink", Name: "backlog_records",
			Help: "Outbox records not yet acknowledged by central.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.connected, m.dials, m.batchesSent, m.bytesSent, m.recordsAcked, m.ackSeconds, m.backlog)
	}
	return m
}
