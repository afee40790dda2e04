package test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/relay"
)

// TestDistribution_RelayTaskStatus: a relay node answers a task's per-device
// status from the site's Raft state (GET /api/v1/tasks/{id} with the relay's
// admin token, and `edgesync task show --server RELAY`), central down or not.
func TestDistribution_RelayTaskStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const site = "rts"
	bin := edgesyncBinary(t)
	n := startNet(t, site, fastCatalog)
	ctx := ctxTimeout(t, 60*time.Second)
	c := n.Centrals[0]
	devs := enrollSims(t, ctx, n, site, 3)
	data, _ := randomBlob(t, 64<<10)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "rts", Version: "1", Type: central.PackageFile, Dest: "/opt/rts", FileName: "rts"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Devices: []string{devs[0].ID, devs[1].ID, devs[2].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Node.StopTask(ctx, task.ID, devs[2].ID); err != nil {
		t.Fatal(err)
	}
	// Device 0 runs the task (the relay mirrors the stop before it polls).
	rs := n.Sites[site]
	checkFor(t, 20*time.Second, func() error {
		v, err := rs[0].Node.TaskView(task.ID)
		if err != nil {
			return err
		}
		if v.Counts["cancelled"] != 1 {
			return fmt.Errorf("relay view %+v: stop not mirrored yet", v.Counts)
		}
		return nil
	})
	if res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Devices: devs[:1], Tasks: 1, Logger: testLogger(t)}); err != nil || res.TasksDone != 1 {
		t.Fatalf("device 0 ran %d tasks: %v", res.TasksDone, err)
	}
	if err := c.Stop(); err != nil { // the site answers from its own state
		t.Fatal(err)
	}

	hc := agentClient(t, n)
	get := func(url, token string, v any) int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if v != nil {
			if err := jsonDecode(resp.Body, v); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode
	}
	token := rs[0].Node.AdminToken()
	want := map[string]string{devs[0].ID: "successful", devs[1].ID: "waiting", devs[2].ID: "cancelled"}
	for _, rl := range rs { // every node, leader or follower (a follower may apply the last report a moment later)
		checkFor(t, 10*time.Second, func() error {
			var v relay.TaskView
			if code := get(rl.URL()+"/api/v1/tasks/"+task.ID, token, &v); code != http.StatusOK {
				return fmt.Errorf("%s: GET task: %d", rl.ID(), code)
			}
			if v.Total != 3 || v.Completed != 2 || v.Errors != 0 || v.State != "running" || len(v.Statuses) != 3 {
				return fmt.Errorf("%s: task view %+v, want 2 of 3 completed, running", rl.ID(), v)
			}
			for _, st := range v.Statuses {
				if st.Status != want[st.Device] || st.Hostname == "" {
					return fmt.Errorf("%s: device %s (%q) is %s, want %s", rl.ID(), st.Device, st.Hostname, st.Status, want[st.Device])
				}
			}
			return nil
		})
	}
	if code := get(rs[1].URL()+"/api/v1/tasks/"+task.ID, "", nil); code != http.StatusUnauthorized {
		t.Errorf("without the admin token: %d, want 401", code)
	}
	if code := get(rs[1].URL()+"/api/v1/tasks/t999999", token, nil); code != http.StatusNotFound {
		t.Errorf("unknown task: %d, want 404", code)
	}
	r := &cliRunner{t: t, bin: bin, env: []string{"EDGESYNC_SERVER=" + rs[2].URL(), "EDGESYNC_TOKEN=" + token, "EDGESYNC_CA=" + n.CAFile()}}
	out := r.ok(ctx, "task", "show", task.ID)
	for _, s := range []string{"Progress: 2/3 completed, 0 errors", devs[0].ID, "successful", "cancelled", "waiting"} {
		if !strings.Contains(out, s) {
			t.Errorf("task show at a relay lacks %q:\n%s", s, out)
		}
	}
}

func jsonDecode(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }
