package test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/internal/backup"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/localnet"
)

// TestBackupUnderLoad takes a backup through the admin API while agents
// report, restores it into a new data dir, starts a central node there and
// checks it serves exactly the devices the backup holds, byte for byte.
func TestBackupUnderLoad(t *testing.T) {
	n := startNet(t, "bk", nil)
	c := n.Centrals[0].Node
	ctx, cancel := context.WithCancel(ctxTimeout(t, 2*time.Minute))
	load := make(chan error, 1)
	go func() {
		_, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("bk"), JoinToken: n.JoinToken("bk"),
			Agents: 40, Reports: 200, RecordBytes: 512, BatchSize: 5, Logger: testLogger(t)})
		load <- err
	}()
	checkFor(t, 30*time.Second, func() error { // the backup must be taken mid-stream
		if l, _ := c.Devices("", "", 0, 1); l.Total < 10 {
			return fmt.Errorf("%d devices at central", l.Total)
		}
		return nil
	})
	hc := insecureClient(t, n)
	req, _ := http.NewRequest(http.MethodGet, c.URL()+"/api/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+n.AdminToken())
	hc.Timeout = time.Minute
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("backup: %s %v", resp.Status, err)
	}
	cancel()
	<-load
	devices := map[string][]byte{}
	info, err := backup.Scan(bytes.NewReader(data), func(k, v []byte) error {
		if len(k) > 2 && string(k[:2]) == "d/" {
			devices[string(k[2:])] = v
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup at index %d: %d records, %d devices, %d bytes compressed", info.Index, info.Records, len(devices), len(data))
	if len(devices) < 10 {
		t.Fatalf("backup holds %d devices", len(devices))
	}

	// A newer format is refused before anything is written.
	newer := bytes.Clone(data)
	newer[4] = backup.FormatVersion + 1
	dir := filepath.Join(t.TempDir(), "restored")
	if _, err := backup.Restore(bytes.NewReader(newer), dir, "central-1", "127.0.0.1:1"); err == nil {
		t.Fatal("restore of a newer format succeeded")
	}
	raftAddr, _ := localnet.FreeTCP()
	if _, err := backup.Restore(bytes.NewReader(data), dir, "central-1", raftAddr); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Restore(bytes.NewReader(data), dir, "central-1", raftAddr); err == nil {
		t.Fatal("restore into a used data dir succeeded")
	}

	b, err := pki.Load(n.PKIDir, "central-1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := central.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.PKI, cfg.Bootstrap, cfg.Logger = "central-1", dir, b, true, testLogger(t)
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout, cfg.Raft.LeaderLeaseTimeout = 200*time.Millisecond, 200*time.Millisecond, 100*time.Millisecond
	cfg.RaftAddr = raftAddr
	cfg.HTTPAddr, _ = localnet.FreeTCP()
	cfg.SyncAddr, _ = localnet.FreeUDP()
	rn, err := central.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rn.Run(rctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			rcancel()
			if err := <-done; err != nil {
				t.Errorf("restored node: %v", err)
			}
		}
	}
	defer stop()
	checkFor(t, 20*time.Second, func() error {
		if !rn.Raft().IsLeader() {
			return fmt.Errorf("restored node is not leader")
		}
		return nil
	})
	list, err := rn.Devices("", "", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if list.Total != len(devices) {
		t.Fatalf("restored node serves %d devices, backup holds %d", list.Total, len(devices))
	}
	for id, raw := range devices {
		d, err := rn.Device(id)
		if err != nil {
			t.Fatalf("device %s: %v", id, err)
		}
		got, _ := json.Marshal(d)
		var want central.Device
		json.Unmarshal(raw, &want)
		wantB, _ := json.Marshal(want)
		if !bytes.Equal(got, wantB) {
			t.Fatalf("device %s differs after restore", id)
		}
	}
	// The old admin token works on the restored node, through the API.
	req, _ = http.NewRequest(http.MethodGet, rn.URL()+"/api/v1/devices?limit=1", nil)
	req.Header.Set("Authorization", "Bearer "+n.AdminToken())
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("restored node refuses the backed-up admin token: %s", resp.Status)
	}
	// The restored node accepts writes after the restored index.
	if err := rn.AckEvent(ctxTimeout(t, 10*time.Second), firstEvent(t, rn), "test", "here"); err != nil {
		t.Fatalf("write after restore: %v", err)
	}
	stop()
	rep, err := backup.Verify(dir)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("verify restored dir: %+v %v", rep, err)
	}
	if rep.AppliedIndex <= info.Index {
		t.Fatalf("restored node applied %d, backup index %d", rep.AppliedIndex, info.Index)
	}
	os.RemoveAll(dir)
}

func firstEvent(t *testing.T, c *central.Node) uint64 {
	evs, err := c.EventList(central.EventFilter{Limit: 1})
	if err != nil || len(evs) == 0 {
		t.Fatalf("no event at the restored node: %v", err)
	}
	return evs[0].ID
}
