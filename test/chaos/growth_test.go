//go:build !windows

package chaos

import (
	"fmt"
	"math"
	"sort"
	"testing"
)

// growth is the verdict on one node's series of one metric.
type growth struct {
	Node         string  `json:"node"`
	Metric       string  `json:"metric"`
	N            int     `json:"n"`      // samples in the fitted window
	Median       float64 `json:"median"` // over the window
	SlopePerHour float64 `json:"slope_per_hour"`
	Limit        float64 `json:"limit"` // the most the window may grow by
	Bounded      bool    `json:"bounded"`
	Why          string  `json:"why,omitempty"`
}

// metric is one figure a soak checks: how to read it from a sample and how
// much growth over the fitted window is still noise (the larger of rel of
// its median and floor).
type metric struct {
	name       string
	value      func(s sample) (float64, bool)
	rel, floor float64
}

const mib = 1 << 20

// metrics are the figures that must stay bounded. Central keeps every
// record by design, so its storage is checked per acknowledged record;
// a relay's storage must level off (its outbox is trimmed once central
// has a record, its raft log compacted after each snapshot).
func metrics(central func(node string) bool) []metric {
	return []metric{
		{"rss_anon", func(s sample) (float64, bool) { return float64(s.RSSAnon), true }, 0.25, 32 * mib},
		{"goroutines", func(s sample) (float64, bool) { return s.Goroutines, true }, 0.10, 20},
		// Badger keeps a descriptor per table and value log, and central's
		// tables grow with its records: judge the other descriptors (sockets,
		// pipes, files of ours) everywhere, and all of them on relays.
		{"open_files", func(s sample) (float64, bool) { return float64(s.OpenFiles), !central(s.Node) }, 0.10, 20},
		{"other_fds", func(s sample) (float64, bool) { return float64(s.OpenFiles - s.TableFiles), s.TableFiles > 0 }, 0.10, 20},
		{"storage", func(s sample) (float64, bool) {
			return float64(s.LSMBytes + s.VlogBytes), !central(s.Node)
		}, 0.5, 64 * mib},
		{"bytes_per_record", func(s sample) (float64, bool) {
			return float64(s.LSMBytes+s.VlogBytes) / float64(max(s.Acked, 1)), central(s.Node) && s.Acked > 0
		}, 0.25, 0},
		{"outbox_depth", func(s sample) (float64, bool) { return float64(s.Outbox), !central(s.Node) }, 1, 2000},
	}
}

// minWindow is the fewest samples a slope is fitted to: a run too short
// to show a trend fails instead of passing for want of evidence.
const minWindow = 6

// analyse fits, per node and metric, a Theil-Sen slope (the median of the
// pairwise slopes: a restart's drop or a compaction's spike does not move
// it) to the samples after the first third of the run (warm-up: caches and
// memtables filling), and calls the series unbounded when the fitted line
// grows over that window by more than the metric's noise allowance.
func analyse(samples []sample, central func(node string) bool) []growth {
	byNode := map[string][]sample{}
	var end float64
	for _, s := range samples {
		byNode[s.Node] = append(byNode[s.Node], s)
		end = max(end, s.At)
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	var out []growth
	for _, node := range nodes {
		for _, m := range metrics(central) {
			var ts, ys []float64
			applies := false
			for _, s := range byNode[node] {
				v, ok := m.value(s)
				applies = applies || ok
				if ok && s.At >= end/3 {
					ts, ys = append(ts, s.At), append(ys, v)
				}
			}
			if !applies {
				continue
			}
			out = append(out, judge(node, m, ts, ys))
		}
	}
	return out
}

func judge(node string, m metric, ts, ys []float64) growth {
	g := growth{Node: node, Metric: m.name, N: len(ts)}
	if len(ts) < minWindow {
		g.Why = fmt.Sprintf("%d samples after warm-up, %d needed to fit a slope: run longer or sample more often", len(ts), minWindow)
		return g
	}
	g.Median = median(append([]float64(nil), ys...))
	slope := theilSen(ts, ys) // per minute
	g.SlopePerHour = slope * 60
	window := ts[len(ts)-1] - ts[0]
	g.Limit = max(m.rel*math.Abs(g.Median), m.floor)
	rise := slope * window
	g.Bounded = rise <= g.Limit
	if !g.Bounded {
		g.Why = fmt.Sprintf("fitted rise %.0f over %.0f min exceeds %.0f (max of %.0f%% of median %.0f and %.0f)",
			rise, window, g.Limit, m.rel*100, g.Median, m.floor)
	}
	return g
}

func theilSen(ts, ys []float64) float64 {
	var slopes []float64
	for i := range ts {
		for j := i + 1; j < len(ts); j++ {
			if dt := ts[j] - ts[i]; dt > 0 {
				slopes = append(slopes, (ys[j]-ys[i])/dt)
			}
		}
	}
	if len(slopes) == 0 {
		return 0
	}
	return median(slopes)
}

func median(v []float64) float64 {
	sort.Float64s(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// TestGrowthVerdicts holds the soak's judgement to what it must tell
// apart: a leak from a sawtooth with restarts, and too little data from
// evidence.
func TestGrowthVerdicts(t *testing.T) {
	central := func(n string) bool { return n == "c1" }
	series := func(node string, n int, f func(i int) sample) []sample {
		var out []sample
		for i := range n {
			s := f(i)
			s.Node, s.At = node, float64(i)
			out = append(out, s)
		}
		return out
	}
	steady := func(i int) sample {
		rss := uint64(120*mib + (i%4)*8*mib) // GC sawtooth
		if i%10 == 7 {
			rss = 40 * mib // restarted by a fault
		}
		return sample{RSSAnon: rss, Goroutines: float64(180 + i%3*15), OpenFiles: 60 + i%5, LSMBytes: uint64(200*mib + (i%6)*30*mib), Outbox: uint64(i%3) * 900}
	}
	leak := func(i int) sample {
		s := steady(i)
		s.Goroutines += float64(2 * i) // two goroutines a minute never exit
		return s
	}
	centralGrowsWithData := func(i int) sample {
		acked := uint64(1000 + 30000*i)
		// One more table (and descriptor) a minute: growth with data.
		return sample{RSSAnon: 150 * mib, Goroutines: 200, OpenFiles: 80 + i, TableFiles: 20 + i, LSMBytes: 4*mib + 300*acked, Acked: acked}
	}
	tests := []struct {
		name      string
		samples   []sample
		unbounded map[string]bool // node/metric expected unbounded
	}{
		{"steady relay with restarts and compactions", series("r1", 60, steady), nil},
		{"goroutine leak", series("r1", 60, leak), map[string]bool{"r1/goroutines": true}},
		{"central descriptor leak", series("c1", 60, func(i int) sample {
			s := centralGrowsWithData(i)
			s.OpenFiles += i // a socket a minute besides the new tables
			return s
		}), map[string]bool{"c1/other_fds": true}},
		{"central storage grows with its records", series("c1", 60, centralGrowsWithData), nil},
		{"too short to judge", series("r1", 6, steady), map[string]bool{"r1/rss_anon": true, "r1/goroutines": true,
			"r1/open_files": true, "r1/storage": true, "r1/outbox_depth": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gs := analyse(tt.samples, central)
			if len(gs) == 0 {
				t.Fatal("no verdicts")
			}
			for _, g := range gs {
				want := tt.unbounded[g.Node+"/"+g.Metric]
				if g.Bounded == want {
					t.Errorf("%s/%s: bounded=%v, want %v (median %.0f, slope %.1f/h, limit %.0f: %s)",
						g.Node, g.Metric, g.Bounded, !want, g.Median, g.SlopePerHour, g.Limit, g.Why)
				}
			}
		})
	}
}
