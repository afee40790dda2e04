package central

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	ingested prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		ingested: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "edgesync", Subsystem: "central",
			Name: "records_proposed_total", Help: "Site records proposed for ingest (retries included)."}),
	}
	reg.MustRegister(m.ingested)
	return m
}
