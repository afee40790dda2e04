package central

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptrace"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/pki"
)

// BenchmarkConsole100k seeds 100,000 devices (about 1.3 KB of inventory
// each) into a central node through Raft and measures the time to first
// byte of console pages over HTTPS. Run:
//
//	go test -run '^$' -bench BenchmarkConsole100k -benchtime 20x ./central/
func BenchmarkConsole100k(b *testing.B) {
	const devices = 100000
	dir := b.TempDir()
	if err := pki.Init(filepath.Join(dir, "pki")); err != nil {
		b.Fatal(err)
	}
	if _, _, err := pki.Issue(filepath.Join(dir, "pki"), pki.IssueRequest{Role: pki.RoleCentral, Name: "c1", Hosts: []string{"127.0.0.1"}}); err != nil {
		b.Fatal(err)
	}
	bundle, err := pki.Load(filepath.Join(dir, "pki"), "c1")
	if err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.PKI, cfg.Bootstrap, cfg.AdminToken = "c1", filepath.Join(dir, "c1"), bundle, true, "bench-token"
	cfg.RaftAddr, cfg.HTTPAddr, cfg.SyncAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond
	n, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if err := n.raft.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	for n.adminHash() == "" {
		time.Sleep(10 * time.Millisecond)
	}

	start := time.Now()
	now := time.Now().UTC()
	var batch [][]byte
	size, first, seq := 0, uint64(1), uint64(0)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		if _, err := (*registry)(n).Accept(ctx, "bench", "bench-r1", first, batch); err != nil {
			b.Fatal(err)
		}
		first += uint64(len(batch))
		batch, size = nil, 0
	}
	for i := range devices {
		inv := record.Inventory{Hostname: fmt.Sprintf("host-%06d", i), OS: record.OS{Name: "Debian GNU/Linux", Version: "12", Kernel: "6.1.0-18-amd64"},
			Hardware: record.Hardware{Vendor: "Acme", Model: "T14", Serial: fmt.Sprintf("SN%08d", i), MemoryBytes: 16 << 30,
				Interfaces: []record.Interface{{Name: "eth0", MAC: fmt.Sprintf("02:00:%02x:%02x:%02x:01", i>>16&0xff, i>>8&0xff, i&0xff),
					Addresses: []string{fmt.Sprintf("10.%d.%d.%d/16", i>>16&0xff, i>>8&0xff, i&0xff)}}}}}
		for j := range 20 {
			inv.Software = append(inv.Software, record.Software{Name: fmt.Sprintf("package-%02d", j), Version: "1.2.3-4"})
		}
		p, _ := json.Marshal(inv)
		rec := record.Record{DeviceID: fmt.Sprintf("%032x", i+1), Seq: 1, Kind: record.KindInventory, CollectedAt: now, Schema: record.SchemaVersion,
			Payload: p, ReceivedAt: now, Channel: record.ChannelOnline, SiteID: "bench", RelayNode: "bench-r1"}
		data, _ := json.Marshal(rec)
		batch = append(batch, data)
		size += len(data)
		seq++
		if size > 2<<20 {
			flush()
		}
	}
	flush()
	b.Logf("seeded %d devices through Raft in %s", devices, time.Since(start).Round(time.Millisecond))
	if rows, _, _, err := n.view.index.snapshot(); err != nil || len(rows) != devices {
		b.Fatalf("index holds %d devices (%v), want %d", len(rows), err, devices)
	}
	b.Logf("cold in-memory index build over %d devices: %s", devices, n.view.index.took.Round(time.Millisecond))

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	defer hc.CloseIdleConnections()
	resp, err := hc.PostForm(n.URL()+"/login", url.Values{"token": {"bench-token"}})
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	ttfb := func(path string) (time.Duration, time.Duration) {
		var t0, t1 time.Time
		req, _ := http.NewRequest(http.MethodGet, n.URL()+path, nil)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest:         func(httptrace.WroteRequestInfo) { t0 = time.Now() },
			GotFirstResponseByte: func() { t1 = time.Now() },
		}))
		resp, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %s", path, resp.Status)
		}
		return t1.Sub(t0), time.Since(t0)
	}
	for _, c := range []struct{ name, path string }{
		{"list-first-page", "/devices"},
		{"list-page-1000", "/devices?offset=50000"},
		{"list-sorted-last-seen-desc", "/devices?sort=last_seen&desc=1&offset=50000"},
		{"search-hostname-exact", "/devices?q=host-054321"},
		{"search-ip-prefix", "/devices?q=10.1."},
		{"search-mac", "/devices?q=02:00:00:d4:31:01"},
		{"search-site-filter", "/devices?site=bench&q=sn0009"},
		{"overview", "/"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var sum time.Duration
			for b.Loop() {
				t, _ := ttfb(c.path)
				sum += t
			}
			b.ReportMetric(float64(sum.Microseconds())/float64(b.N)/1000, "ms-ttfb")
		})
	}
}
