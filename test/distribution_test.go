package test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

func fastCatalog(c *relay.Config) { c.CatalogInterval = 200 * time.Millisecond }

func randomBlob(t *testing.T, size int) ([]byte, string) {
	t.Helper()
	b := make([]byte, size)
	rand.Read(b)
	h := sha256.Sum256(b)
	return b, hex.EncodeToString(h[:])
}

// enrollSims enrolls n simulated devices that each report once, and waits
// until central knows them all.
func enrollSims(t *testing.T, ctx context.Context, n *localnet.Net, site string, agents int) []agent.SimDevice {
	t.Helper()
	res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Agents: agents, Reports: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("simulate: %v", err)
	}
	waitDrained(t, n, site, 30*time.Second)
	return res.Devices
}

func waitCached(t *testing.T, rs []*localnet.Relay, sum string) {
	t.Helper()
	checkFor(t, 60*time.Second, func() error {
		for _, r := range rs {
			st, err := r.Node.Cache()
			if err != nil {
				return err
			}
			found := false
			for _, b := range st.Blobs {
				found = found || b.SHA256 == sum
			}
			if !found {
				return fmt.Errorf("%s has not cached %s", r.ID(), sum[:12])
			}
		}
		return nil
	})
}

func agentClient(t *testing.T, n *localnet.Net) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(n.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	conf, err := api.CATLS(pem)
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: conf}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}

// TestDistribution_SiteTask: a package to a task for every device of a
// 3-node site. Central sends the blob at most once per relay node; after the
// prefetch central goes down and the agents still get the package from their
// relays; a corrupted cache file is detected, never served, and fetched
// again; progress at central is right once it is back.
func TestDistribution_SiteTask(t *testing.T) {
	const agents, size = 30, 8 << 20
	n := startNet(t, "s1", fastCatalog)
	ctx := ctxTimeout(t, 80*time.Second)
	c := n.Centrals[0]
	devs := enrollSims(t, ctx, n, "s1", agents)

	data, sum := randomBlob(t, size)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "tool", Version: "1.0", Type: central.PackageFile, Dest: "/opt/tool", FileName: "tool.bin"}, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("add package: %v", err)
	}
	if p.SHA256 != sum || p.Size != size || !p.Local {
		t.Fatalf("package %+v, want sha %s size %d local", p, sum, size)
	}
	// Bad input changes nothing.
	if _, err := c.Node.AddPackage(ctx, central.Package{Name: "tool", Version: "1.0", Type: central.PackageFile, Dest: "/opt/tool", FileName: "x"}, bytes.NewReader(nil)); !errors.Is(err, central.ErrExists) {
		t.Errorf("duplicate package: %v, want ErrExists", err)
	}
	if _, err := c.Node.AddPackage(ctx, central.Package{Name: "bad name", Version: "1", Type: "install"}, bytes.NewReader(nil)); !errors.Is(err, central.ErrBadRequest) {
		t.Errorf("invalid package: %v, want ErrBadRequest", err)
	}
	if _, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: "nope@1", Site: "s1"}); !errors.Is(err, central.ErrNotFound) {
		t.Errorf("task for unknown package: %v, want ErrNotFound", err)
	}
	task, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Site: "s1"})
	if err != nil {
		t.Fatalf("create task: %v", err)
	}
	if task.Total != agents {
		t.Fatalf("task targets %d devices, want %d", task.Total, agents)
	}
	if err := c.Node.RemovePackage(ctx, p.ID); err == nil || !bytes.Contains([]byte(err.Error()), []byte("in use")) {
		t.Errorf("remove package in use: %v, want refused", err)
	}
	if err := c.Node.RemoveTask(ctx, task.ID); err == nil {
		t.Error("removing a running task was not refused")
	}

	rs := n.Sites["s1"]
	waitCached(t, rs, sum)
	for _, s := range c.Node.BlobServes() {
		if s.Fetches > 1 {
			t.Errorf("central sent %s to %s %d times from offset 0", s.SHA256[:12], s.Node, s.Fetches)
		}
	}
	t.Logf("central upstream: %+v", c.Node.BlobServes())

	// A corrupted cache file is found by cache verify, removed, fetched again.
	path := rs[0].Node.CachePath(sum)
	corrupt := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)/2] ^= 0xFF
		time.Sleep(5 * time.Millisecond) // a new mtime
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	corrupt(path)
	bad, err := rs[0].Node.VerifyCache()
	if err != nil || len(bad) != 1 || bad[0] != sum {
		t.Fatalf("verify cache = %v, %v; want the corrupted blob", bad, err)
	}
	waitCached(t, rs[:1], sum)
	// On another node the corruption is found when serving: the agent gets good bytes.
	corrupt(rs[1].Node.CachePath(sum))
	hc := agentClient(t, n)
	get := func(url, rng string) (*http.Response, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Header.Set(api.HeaderDevice, devs[0].ID)
		req.Header.Set("Authorization", "Bearer "+devs[0].Token)
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get(rs[1].URL()+"/v1/blobs/"+sum, "")
	if h := sha256.Sum256(body); resp.StatusCode != 200 || hex.EncodeToString(h[:]) != sum {
		t.Fatalf("blob from a node with a corrupted file: %s, hash %x", resp.Status, h[:6])
	}
	for _, tc := range []struct {
		name, path, rng string
		want            int
	}{
		{"bad hash", "/v1/blobs/xyz", "", 400},
		{"unknown blob", "/v1/blobs/" + hex.EncodeToString(make([]byte, 32)), "", 404},
		{"range out of bounds", "/v1/blobs/" + sum, fmt.Sprintf("bytes=%d-", size+10), 416},
		{"range", "/v1/blobs/" + sum, "bytes=10-19", 206},
	} {
		if resp, _ := get(rs[2].URL()+tc.path, tc.rng); resp.StatusCode != tc.want {
			t.Errorf("%s: %s, want %d", tc.name, resp.Status, tc.want)
		}
	}

	// Central down: the site still distributes.
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("s1"), JoinToken: n.JoinToken("s1"), Devices: devs, Tasks: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("simulate tasks: %v", err)
	}
	if res.TasksDone != agents || res.TasksFailed != 0 {
		t.Fatalf("tasks done %d failed %d, want %d done", res.TasksDone, res.TasksFailed, agents)
	}
	t.Logf("%d agents downloaded %d MB in %s with central down", agents, res.DownloadBytes>>20, res.Duration.Round(time.Millisecond))

	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, "s1", 30*time.Second)
	var v central.TaskView
	checkFor(t, 20*time.Second, func() error {
		var err error
		if v, err = c.Node.TaskView(task.ID, true); err != nil {
			return err
		}
		if v.Completed != agents || v.Counts[central.StatusSuccessful] != agents || v.State != "finished" {
			return fmt.Errorf("progress %d/%d, counts %v, state %s", v.Completed, v.Total, v.Counts, v.State)
		}
		return nil
	})
	// Stop, retry and remove rules.
	if _, err := c.Node.StopTask(ctx, task.ID, ""); err == nil {
		t.Error("stopping a finished task was not refused")
	}
	if _, err := c.Node.RetryTask(ctx, task.ID, ""); err == nil {
		t.Error("retry with no failed or cancelled device was not refused")
	}
	if err := c.Node.RemoveTask(ctx, task.ID); err != nil {
		t.Fatalf("remove finished task: %v", err)
	}
	if err := c.Node.RemovePackage(ctx, p.ID); err != nil {
		t.Fatalf("remove unused package: %v", err)
	}
}

// TestDistribution_StopRetry: stop per device before it starts, retry makes
// it run again at once.
func TestDistribution_StopRetry(t *testing.T) {
	n := startNet(t, "s2", fastCatalog)
	ctx := ctxTimeout(t, 60*time.Second)
	c := n.Centrals[0]
	devs := enrollSims(t, ctx, n, "s2", 2)
	data, _ := randomBlob(t, 64<<10)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "cfg", Version: "2", Type: central.PackageInstall, Command: "true", FileName: "cfg.sh"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Devices: []string{devs[0].ID, devs[1].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if k, err := c.Node.StopTask(ctx, task.ID, devs[1].ID); err != nil || k != 1 {
		t.Fatalf("stop device: %d, %v", k, err)
	}
	if err := c.Node.RemoveTask(ctx, task.ID); err == nil {
		t.Error("removing a task in progress was not refused")
	}
	// Device 0 runs; device 1 was stopped and never gets it.
	if _, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("s2"), JoinToken: n.JoinToken("s2"), Devices: devs[:1], Tasks: 1, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, "s2", 20*time.Second)
	checkFor(t, 10*time.Second, func() error {
		v, err := c.Node.TaskView(task.ID, false)
		if err != nil {
			return err
		}
		if v.Counts[central.StatusSuccessful] != 1 || v.Counts[central.StatusCancelled] != 1 || v.State != "finished" {
			return fmt.Errorf("counts %v state %s", v.Counts, v.State)
		}
		return nil
	})
	if k, err := c.Node.RetryTask(ctx, task.ID, ""); err != nil || k != 1 {
		t.Fatalf("retry: %d, %v", k, err)
	}
	d1 := devs[1]
	if _, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("s2"), JoinToken: n.JoinToken("s2"), Devices: []agent.SimDevice{d1}, Tasks: 1, Logger: testLogger(t)}); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, "s2", 20*time.Second)
	checkFor(t, 10*time.Second, func() error {
		v, err := c.Node.TaskView(task.ID, false)
		if err != nil {
			return err
		}
		if v.Counts[central.StatusSuccessful] != 2 {
			return fmt.Errorf("counts %v", v.Counts)
		}
		return nil
	})
}

// TestDistribution_ResumeAfterRelayKilled: the relay serving a download is
// stopped mid-file; the agent resumes from another node and the bytes hash
// right.
func TestDistribution_ResumeAfterRelayKilled(t *testing.T) {
	const size = 6 << 20
	n := startNet(t, "s3", func(c *relay.Config) { fastCatalog(c); c.DownloadRate = 1 << 20 })
	ctx := ctxTimeout(t, 60*time.Second)
	c := n.Centrals[0]
	devs := enrollSims(t, ctx, n, "s3", 1)
	data, sum := randomBlob(t, size)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "big", Version: "1", Type: central.PackageFile, Dest: "/opt/big", FileName: "big"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Devices: []string{devs[0].ID}}); err != nil {
		t.Fatal(err)
	}
	rs := n.Sites["s3"]
	waitCached(t, rs, sum)
	pem, _ := os.ReadFile(n.CAFile())
	conf, _ := api.CATLS(pem)
	client := api.NewClient(n.URLs("s3"), conf)
	defer client.CloseIdleConnections()
	h := sha256.New()
	var once sync.Once
	var got int64
	w := writerFunc(func(b []byte) (int, error) {
		got += int64(len(b))
		if got > 1<<20 {
			once.Do(func() { go rs[0].Stop() })
		}
		return h.Write(b)
	})
	st, err := client.Download(ctx, devs[0].ID, devs[0].Token, sum, 0, size, w)
	if err != nil {
		t.Fatalf("download: %v", err)
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		t.Fatal("downloaded bytes hash wrong")
	}
	if st.Resumed < 1 {
		t.Fatalf("download stats %+v: no resume after the serving relay stopped", st)
	}
	t.Logf("download resumed %d time(s) over %d requests", st.Resumed, st.Requests)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
