package relay

import (
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	accepted   prometheus.Counter
	duplicates prometheus.Counter
	refused    prometheus.Counter
	batchReqs  prometheus.Histogram
	batchBytes prometheus.Histogram
	diskFree   prometheus.Gauge
}

func newMetrics(n *Node) *metrics {
	m := &metrics{
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "records_accepted_total", Help: "Agent records committed to the site outbox."}),
		duplicates: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "records_duplicate_total", Help: "Agent records recognised as retries of committed ones."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "reports_refused_total", Help: "Report requests refused under backpressure."}),
		batchReqs: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "group_commit_requests", Help: "Agent requests per Raft log entry.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)}),
		batchBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "group_commit_bytes", Help: "Bytes per group-commit log entry.", Buckets: prometheus.ExponentialBuckets(1024, 2, 10)}),
		diskFree: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "edgesync", Subsystem: "relay",
			Name: "data_disk_free_bytes", Help: "Free bytes on the data disk."}),
	}
	outboxDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "edgesync", Subsystem: "relay",
		Name: "outbox_records", Help: "Records committed but not yet acked by central."}, func() float64 {
		st, _ := n.outboxStats()
		return float64(st.Depth)
	})
	outboxBytes := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "edgesync", Subsystem: "relay",
		Name: "outbox_bytes", Help: "Bytes held in the outbox."}, func() float64 {
		st, _ := n.outboxStats()
		return float64(st.Bytes)
	})
	n.reg.MustRegister(m.accepted, m.duplicates, m.refused, m.batchReqs, m.batchBytes, m.diskFree, outboxDepth, outboxBytes)
	return m
}

func (m *metrics) observeBatch(requests, bytes int) {
	m.batchReqs.Observe(float64(requests))
	m.batchBytes.Observe(float64(bytes))
}
