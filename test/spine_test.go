package test

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/agent"
)

// outage is how long central stays down in TestSpine (SPINE_OUTAGE, default 30s).
func outage(t *testing.T) time.Duration {
	if v := os.Getenv("SPINE_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SPINE_OUTAGE: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 30 * time.Second
}

// TestSpine is the backbone guarantee: 200 agents report through a 3-node
// site; the site leader is stopped mid-stream and later restarted; central
// is down for a while and restarted; every acknowledged record reaches
// central exactly once.
func TestSpine(t *testing.T) {
	const (
		site    = "spine"
		agents  = 200
		reports = 40
	)
	n := startNet(t, site, nil)
	c := n.Centrals[0]

	type simOut struct {
		res agent.SimResult
		err error
	}
	done := make(chan simOut, 1)
	ctx := ctxTimeout(t, 5*time.Minute)
	go func() {
		res, err := agent.Simulate(ctx, agent.SimConfig{
			Relays: n.URLs(site), JoinToken: n.JoinToken(site),
			Agents: agents, Reports: reports, RecordBytes: 512, BatchSize: 5, Logger: testLogger(t),
		})
		done <- simOut{res, err}
	}()

	centralRecords := func() uint64 {
		sites, _ := c.Node.Sites()
		for _, s := range sites {
			if s.ID == site {
				return s.Records
			}
		}
		return 0
	}
	// Mid-stream: stop the site leader once central has seen some records.
	checkFor(t, 60*time.Second, func() error {
		if got := centralRecords(); got < 500 {
			return fmt.Errorf("central has %d records", got)
		}
		return nil
	})
	old := n.SiteLeader(site)
	if old == nil {
		t.Fatal("no site leader")
	}
	t.Logf("stopping site leader %s", old.ID())
	if err := old.Stop(); err != nil {
		t.Fatalf("stop leader: %v", err)
	}
	var newLeader string
	checkFor(t, 30*time.Second, func() error {
		l := n.SiteLeader(site)
		if l == nil {
			return fmt.Errorf("no new leader")
		}
		newLeader = l.ID()
		return nil
	})
	t.Logf("new site leader %s", newLeader)

	// Central down while agents keep reporting: the outbox grows.
	before := centralRecords()
	t.Logf("stopping central (at %d records) for %s", before, outage(t))
	if err := c.Stop(); err != nil {
		t.Fatalf("stop central: %v", err)
	}
	down := time.Now()
	var grown uint64
	checkFor(t, 60*time.Second, func() error {
		l := n.SiteLeader(site)
		if l == nil {
			return fmt.Errorf("no site leader")
		}
		grown = l.Node.Status().Outbox.Depth
		if grown < 200 {
			return fmt.Errorf("outbox depth %d while central is down", grown)
		}
		if time.Since(down) < outage(t) {
			return fmt.Errorf("outage of %s not over", outage(t))
		}
		return nil
	})
	t.Logf("outbox held %d records during the outage; restarting the old leader and central", grown)
	if err := old.Start(); err != nil {
		t.Fatalf("restart old leader: %v", err)
	}
	if err := c.Start(); err != nil {
		t.Fatalf("restart central: %v", err)
	}

	var out simOut
	select {
	case out = <-done:
	case <-ctx.Done():
		t.Fatal("simulation did not finish")
	}
	if out.err != nil {
		t.Fatalf("simulate: %v (acked %d of %d)", out.err, out.res.Acked, agents*reports)
	}
	if out.res.Acked != agents*reports {
		t.Fatalf("acked %d records, want %d", out.res.Acked, agents*reports)
	}
	waitSite(t, n, site, 3)
	waitDrained(t, n, site, 2*time.Minute)
	sent := map[string]uint64{}
	for d := range out.res.AckedByDevice {
		sent[d] = reports
	}
	checkExactlyOnce(t, c.Node, out.res.AckedByDevice, sent)
	if len(out.res.AckedByDevice) != agents {
		t.Fatalf("%d devices acked, want %d", len(out.res.AckedByDevice), agents)
	}
	t.Logf("site records %s", strconv.FormatUint(centralRecords(), 10))
}
