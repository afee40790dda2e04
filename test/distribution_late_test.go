package test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
)

// TestDistribution_LateEnrollment: devices that enroll after a site task was
// created are targets too, and get the package from their relays; a finished
// task runs again for a device that enrolls later still.
func TestDistribution_LateEnrollment(t *testing.T) {
	const site = "late"
	n := startNet(t, site, fastCatalog)
	ctx := ctxTimeout(t, 90*time.Second)
	c := n.Centrals[0]
	early := enrollSims(t, ctx, n, site, 2)
	data, _ := randomBlob(t, 256<<10)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "late", Version: "1", Type: central.PackageFile, Dest: "/opt/late", FileName: "late.bin"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	task, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Site: site})
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: p.ID, Devices: []string{early[0].ID}})
	if err != nil {
		t.Fatal(err)
	}
	if task.Total != 2 {
		t.Fatalf("site task targets %d devices, want 2", task.Total)
	}

	late := enrollSims(t, ctx, n, site, 2)
	checkFor(t, 20*time.Second, func() error {
		v, err := c.Node.TaskView(task.ID, true)
		if err != nil {
			return err
		}
		if v.Total != 4 {
			return fmt.Errorf("site task targets %d devices, want 4", v.Total)
		}
		return nil
	})
	if v, _ := c.Node.TaskView(list.ID, false); v.Total != 1 {
		t.Errorf("device-list task targets %d devices, want 1 (it never grows)", v.Total)
	}
	all := append(slices.Clone(early), late...)
	// Early device 0 has two tasks (site and list); the others one.
	if res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Devices: all[1:], Tasks: 1, Logger: testLogger(t)}); err != nil || res.TasksDone != 3 {
		t.Fatalf("late and early devices ran %d tasks (%v), want 3", res.TasksDone, err)
	}
	if res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Devices: all[:1], Tasks: 2, Logger: testLogger(t)}); err != nil || res.TasksDone != 2 {
		t.Fatalf("device 0 ran %d tasks (%v), want 2", res.TasksDone, err)
	}
	waitDrained(t, n, site, 30*time.Second)
	finished := func(total int) {
		t.Helper()
		checkFor(t, 20*time.Second, func() error {
			v, err := c.Node.TaskView(task.ID, false)
			if err != nil {
				return err
			}
			if v.Total != total || v.Counts[central.StatusSuccessful] != total || v.State != "finished" {
				return fmt.Errorf("progress %d/%d counts %v state %s", v.Completed, v.Total, v.Counts, v.State)
			}
			return nil
		})
	}
	finished(4)

	// One more device after the task finished: it runs again for it.
	later := enrollSims(t, ctx, n, site, 1)
	checkFor(t, 20*time.Second, func() error {
		v, err := c.Node.TaskView(task.ID, false)
		if err != nil {
			return err
		}
		if v.Total != 5 || v.State != "running" {
			return fmt.Errorf("after a late device: total %d state %s, want 5 running", v.Total, v.State)
		}
		return nil
	})
	if res, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Devices: later, Tasks: 1, Logger: testLogger(t)}); err != nil || res.TasksDone != 1 {
		t.Fatalf("later device ran %d tasks (%v), want 1", res.TasksDone, err)
	}
	waitDrained(t, n, site, 30*time.Second)
	finished(5)
}
