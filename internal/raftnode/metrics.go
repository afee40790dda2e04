package raftnode

import "github.com/prometheus/client_golang/prometheus"

// metrics are per Node, registered on Config.Registerer when it is non-nil,
// so many nodes can live in one test process.
type metrics struct {
	applyBatchSize   prometheus.Histogram
	appliedEntries   prometheus.Counter
	applyTxnSplits   prometheus.Counter
	snapshotRestores prometheus.Counter
	snapshotBytes    prometheus.Counter
	forwarded        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		applyBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "apply_batch_size",
			Help:    "Log entries per FSM ApplyBatch call.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 11), // 1..1024
		}),
		appliedEntries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "applied_entries_total",
			Help: "Log entries applied to the state DB.",
		}),
		applyTxnSplits: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "apply_txn_splits_total",
			Help: "Apply batches split because the Badger transaction was too big.",
		}),
		snapshotRestores: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "snapshot_restores_total",
			Help: "State DB restores from a snapshot.",
		}),
		snapshotBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "snapshot_persisted_bytes_total",
			Help: "Uncompressed key/value bytes written by snapshot Persist.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "edgesync", Subsystem: "raftnode", Name: "forwarded_requests_total",
			Help: "Requests forwarded from a follower to the leader, by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.applyBatchSize, m.appliedEntries, m.applyTxnSplits, m.snapshotRestores, m.snapshotBytes, m.forwarded} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
