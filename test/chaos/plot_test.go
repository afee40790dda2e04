//go:build !windows

package chaos

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// plotSamples draws one panel per soak metric, a line per node, into a PNG.
func plotSamples(path string, samples []sample, gs []growth) error {
	unbounded := map[string][]string{}
	for _, g := range gs {
		if !g.Bounded {
			unbounded[g.Metric] = append(unbounded[g.Metric], g.Node)
		}
	}
	byNode := map[string][]sample{}
	for _, s := range samples {
		byNode[s.Node] = append(byNode[s.Node], s)
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	panels := []struct {
		metric, title, unit string
		scale               float64
	}{
		{"rss_anon", "anonymous RSS", "MiB", mib},
		{"goroutines", "goroutines", "", 1},
		{"other_fds", "open fds other than Badger's files", "", 1},
		{"storage", "relay Badger LSM + value log", "MiB", mib},
		{"bytes_per_record", "central storage per acked record", "bytes", 1},
		{"outbox_depth", "relay outbox depth", "records", 1},
	}
	ms := map[string]metric{}
	for _, m := range metrics(relayOrCentral) {
		ms[m.name] = m
	}
	const cols, rows = 3, 2
	grid := make([][]*plot.Plot, rows)
	for i, pn := range panels {
		p := plot.New()
		p.Title.Text = pn.title
		if ns := unbounded[pn.metric]; len(ns) > 0 {
			p.Title.Text += " (UNBOUNDED on " + strings.Join(ns, ", ") + ")"
		}
		p.X.Label.Text = "minutes"
		p.Y.Label.Text = pn.unit
		p.Add(plotter.NewGrid())
		for ni, node := range nodes {
			var xys plotter.XYs
			for _, s := range byNode[node] {
				if v, ok := ms[pn.metric].value(s); ok {
					xys = append(xys, plotter.XY{X: s.At, Y: v / pn.scale})
				}
			}
			if len(xys) == 0 {
				continue
			}
			l, err := plotter.NewLine(xys)
			if err != nil {
				return fmt.Errorf("%s %s: %w", pn.metric, node, err)
			}
			l.Color = plotutil.Color(ni)
			l.Dashes = plotutil.Dashes(ni / 7)
			p.Add(l)
			p.Legend.Add(node, l)
		}
		p.Legend.Top = true
		grid[i/cols] = append(grid[i/cols], p)
	}
	img := vgimg.New(36*vg.Centimeter, 20*vg.Centimeter)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Millimeter * 4, PadY: vg.Millimeter * 4,
		PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align(grid, tiles, dc)
	for r := range grid {
		for c := range grid[r] {
			grid[r][c].Draw(canvases[r][c])
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
