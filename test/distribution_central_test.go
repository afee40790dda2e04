package test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

// TestDistribution_MultiNodeCentral: a package uploaded to one node of a
// 3-node central while the site's upstream reaches only another node. That
// node fetches the blob from a peer (GET /api/v1/blobs/{sha256}, mutual TLS,
// hash-verified) before it serves it, the relays cache it from there, the
// agents get it, and progress reaches every central node. The peer blob
// endpoint refuses anonymous callers and bad hashes.
func TestDistribution_MultiNodeCentral(t *testing.T) {
	const agents, size = 6, 3 << 20
	var n *localnet.Net
	n, err := localnet.New(t.TempDir(), localnet.Options{Logger: testLogger(t), FastRaft: true, Relay: func(c *relay.Config) {
		fastCatalog(c)
		c.Centrals = []string{n.Centrals[2].SyncAddr("quic")} // the site reaches central-3 only
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	for i := 1; i <= 3; i++ {
		if _, err := n.AddCentral(fmt.Sprintf("central-%d", i)); err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			checkFor(t, 20*time.Second, func() error {
				if !n.Centrals[0].Node.Raft().IsLeader() {
					return fmt.Errorf("central-1 not leader")
				}
				return nil
			})
		}
	}
	checkFor(t, 30*time.Second, func() error {
		for _, c := range n.Centrals {
			ms := c.Node.Raft().Members()
			if len(ms) != 3 {
				return fmt.Errorf("%s sees %d members", c.Node.Raft().Status().NodeID, len(ms))
			}
			for _, m := range ms {
				if m.HTTPAddr == "" {
					return fmt.Errorf("member %s has no HTTP address yet", m.ID)
				}
			}
		}
		return nil
	})
	if _, err := n.AddSite("mc", 3); err != nil {
		t.Fatal(err)
	}
	waitSite(t, n, "mc", 3)
	ctx := ctxTimeout(t, 3*time.Minute) // generous: a relay retries a blob central-3 lacks with backoff
	devs := enrollSims(t, ctx, n, "mc", agents)

	// Upload at a follower of central-1 and central-2 (leadership can move
	// under load; then at either): it stores the bytes, then its proposal is
	// forwarded to the leader. central-3 has no bytes until it fetches them.
	up, c3 := n.Centrals[1].Node, n.Centrals[2].Node
	if up.Raft().IsLeader() {
		up = n.Centrals[0].Node
	}
	t.Logf("upload at %s (leader: %v)", up.Raft().Status().NodeID, up.Raft().IsLeader())
	data, sum := randomBlob(t, size)
	p, err := up.AddPackage(ctx, central.Package{Name: "peer", Version: "1", Type: central.PackageFile, Dest: "/opt/peer", FileName: "peer.bin"}, bytes.NewReader(data))
	if err != nil {
		t.Fatalf("add package at central-2: %v", err)
	}
	if !p.Local {
		t.Fatalf("central-2 took the upload but does not hold the blob: %+v", p)
	}
	task, err := c3.CreateTask(ctx, central.TaskRequest{Package: p.ID, Site: "mc"})
	if err != nil {
		t.Fatalf("create task at central-3: %v", err)
	}
	checkFor(t, time.Minute, func() error {
		for _, c := range n.Centrals {
			if q, err := c.Node.Package(p.ID); err != nil || !q.Local {
				return fmt.Errorf("%s: package %+v, %v: blob not local yet", c.Node.Raft().Status().NodeID, q, err)
			}
		}
		return nil
	})

	rs := n.Sites["mc"]
	waitCached(t, rs, sum)
	res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("mc"), JoinToken: n.JoinToken("mc"), Devices: devs, Tasks: 1, Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("simulate tasks: %v", err)
	}
	if res.TasksDone != agents || res.TasksFailed != 0 {
		t.Fatalf("tasks done %d failed %d, want %d done", res.TasksDone, res.TasksFailed, agents)
	}
	// Only central-3 served the site, each relay node once at most.
	served := map[string]bool{}
	for _, s := range c3.BlobServes() {
		if s.SHA256 == sum {
			served[s.Node] = true
			if s.Fetches > 1 || s.Bytes > size {
				t.Errorf("central-3 sent the blob to %s %d times (%d bytes)", s.Node, s.Fetches, s.Bytes)
			}
		}
	}
	if len(served) != len(rs) {
		t.Errorf("central-3 served the blob to %d relay nodes, want %d", len(served), len(rs))
	}
	for _, c := range n.Centrals[:2] {
		if s := c.Node.BlobServes(); len(s) != 0 {
			t.Errorf("%s served relays though the site does not reach it: %+v", c.Node.Raft().Status().NodeID, s)
		}
	}
	// Progress is Raft state: every central node shows it.
	for _, c := range n.Centrals {
		checkFor(t, 30*time.Second, func() error {
			v, err := c.Node.TaskView(task.ID, false)
			if err != nil {
				return err
			}
			if v.Counts[central.StatusSuccessful] != agents || v.State != "finished" {
				return fmt.Errorf("%s: counts %v state %s", c.Node.Raft().Status().NodeID, v.Counts, v.State)
			}
			return nil
		})
	}

	// The peer endpoint: admin token or a central certificate; bad input refused.
	hc := agentClient(t, n)
	get := func(url, token string) (int, []byte) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	base := c3.URL() + "/api/v1/blobs/"
	if code, _ := get(base+sum, ""); code != http.StatusUnauthorized {
		t.Errorf("anonymous peer blob fetch: %d, want 401", code)
	}
	if code, _ := get(base+sum, devs[0].Token); code != http.StatusUnauthorized {
		t.Errorf("peer blob fetch with a device token: %d, want 401", code)
	}
	if code, _ := get(base+"not-a-hash", n.AdminToken()); code != http.StatusBadRequest {
		t.Errorf("bad hash: %d, want 400", code)
	}
	if code, _ := get(base+hex.EncodeToString(make([]byte, 32)), n.AdminToken()); code != http.StatusNotFound {
		t.Errorf("unknown blob: %d, want 404", code)
	}
	code, body := get(base+sum, n.AdminToken())
	if h := sha256.Sum256(body); code != http.StatusOK || hex.EncodeToString(h[:]) != sum {
		t.Errorf("peer blob fetch with the admin token: %d, hash %x", code, h[:6])
	}
}
