package test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/relay"
)

// TestDiskAlarmIsSiteWide: one member's data disk below the critical
// threshold makes every node of the site refuse reports (503 + Retry-After
// naming that node), since the leader would otherwise keep replicating into
// the full disk; removing that member lifts the alarm.
func TestDiskAlarmIsSiteWide(t *testing.T) {
	const site = "alarm"
	full := site + "-r3"
	n := startNet(t, site, func(c *relay.Config) {
		if c.NodeID == full {
			c.DiskWarnBytes, c.DiskCriticalBytes = 1<<62, 1<<62
		}
	})
	ctx := ctxTimeout(t, 2*time.Minute)
	var others []string
	var leader *relay.Node
	for _, r := range n.Sites[site] {
		if r.ID() != full {
			others = append(others, r.URL())
		}
		if r.Node.Raft().IsLeader() {
			leader = r.Node
		}
	}
	// The full node publishes its state at its first disk check.
	checkFor(t, 30*time.Second, func() error {
		for _, r := range n.Sites[site] {
			if got := r.Node.Status().DiskAlarm; got != full {
				return fmt.Errorf("%s: disk_alarm %q, want %q", r.ID(), got, full)
			}
		}
		return nil
	})
	cl := pinnedClient(t, n, site, others...)
	defer cl.CloseIdleConnections()
	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), Hostname: "pc-alarm"})
	if err != nil {
		t.Fatal(err)
	}
	rec := []record.Record{inventoryRecord(enr.DeviceID, 1, "pc-alarm")}
	for _, u := range others {
		c := pinnedClient(t, n, site, u)
		_, err := c.Report(ctx, enr.DeviceID, enr.DeviceToken, rec)
		var bp *api.BackpressureError
		if !errors.As(err, &bp) || !strings.Contains(bp.Reason, full) || bp.RetryAfter <= 0 {
			t.Fatalf("report at %s with %s's disk critical = %v, want 503 + Retry-After naming %s", u, full, err, full)
		}
		c.CloseIdleConnections()
	}
	// A removed member's alarm no longer counts.
	if err := leader.Raft().Remove(ctx, full); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, func() error {
		_, err := cl.Report(ctx, enr.DeviceID, enr.DeviceToken, rec)
		return err
	})
}
