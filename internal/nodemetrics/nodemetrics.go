package nodemetrics

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/edgesync/edgesync/internal/raftnode"
)

// Raft is what the collectors read from a raft node.
type Raft interface {
	Status() raftnode.Status
}

var raftStates = []string{"Follower", "Candidate", "Leader", "Shutdown"}

var (
	runtimeOnce sync.Once
	runtimeReg  *prometheus.Registry
)

// Gatherer is what a node's /metrics serves: its own registry plus the Go
// runtime and process collectors (one set per process, shared by every node
// of an in-process test or demo).
func Gatherer(reg *prometheus.Registry) prometheus.Gatherer {
	runtimeOnce.Do(func() {
		runtimeReg = prometheus.NewRegistry()
		runtimeReg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	})
	return prometheus.Gatherers{reg, runtimeReg}
}

// Register adds the collectors to reg. dataDir holds raft/ and state-<n>/.
func Register(reg prometheus.Registerer, r Raft, dataDir string) error {
	sizes := &dirSizes{dir: dataDir}
	cs := []prometheus.Collector{
		&raftCollector{r: r,
			state: prometheus.NewDesc("edgesync_raft_state", "1 for the node's current Raft state.", []string{"state"}, nil),
			term:  prometheus.NewDesc("edgesync_raft_term", "Current Raft term.", nil, nil),
			lag:   prometheus.NewDesc("edgesync_raft_apply_lag_entries", "Committed entries not yet applied to the state DB (commit index - applied index).", nil, nil),
			idx:   prometheus.NewDesc("edgesync_raft_applied_index", "Last log index applied to the state DB.", nil, nil),
			peers: prometheus.NewDesc("edgesync_raft_members", "Members in the Raft configuration.", nil, nil),
		},
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_badger_log_bytes", Help: "On-disk bytes of the Raft log Badger DB (dir raft/)."},
			func() float64 { l, _ := sizes.get(); return float64(l) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "edgesync_badger_state_bytes", Help: "On-disk bytes of the state Badger DB (dirs state-*)."},
			func() float64 { _, s := sizes.get(); return float64(s) }),
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

type raftCollector struct {
	r                            Raft
	state, term, lag, idx, peers *prometheus.Desc
}

func (c *raftCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.state
	ch <- c.term
	ch <- c.lag
	ch <- c.idx
	ch <- c.peers
}

func (c *raftCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.r.Status()
	for _, s := range raftStates {
		v := 0.0
		if st.State == s {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.state, prometheus.GaugeValue, v, s)
	}
	ch <- prometheus.MustNewConstMetric(c.term, prometheus.GaugeValue, float64(st.Term))
	lag := 0.0
	if st.CommitIndex > st.AppliedIndex {
		lag = float64(st.CommitIndex - st.AppliedIndex)
	}
	ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, lag)
	ch <- prometheus.MustNewConstMetric(c.idx, prometheus.GaugeValue, float64(st.AppliedIndex))
	ch <- prometheus.MustNewConstMetric(c.peers, prometheus.GaugeValue, float64(len(st.Members)))
}

// dirSizes walks the data dir at most every 15 s (a scrape must stay cheap).
type dirSizes struct {
	dir       string
	mu        sync.Mutex
	at        time.Time
	log, stat int64
}

func (d *dirSizes) get() (int64, int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.at) < 15*time.Second {
		return d.log, d.stat
	}
	d.at = time.Now()
	d.log = DirSize(filepath.Join(d.dir, "raft"))
	d.stat = 0
	entries, _ := os.ReadDir(d.dir)
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "state-") {
			d.stat += DirSize(filepath.Join(d.dir, e.Name()))
		}
	}
	return d.log, d.stat
}

// DirSize is the total size of the regular files under dir.
func DirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
