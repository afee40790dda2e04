package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/hostfs"
)

// diskCheckInterval is how often the data disk's free space is read.
const diskCheckInterval = 2 * time.Second

// pressure returns a BackpressureError while the node must refuse new data:
// the data disk is past its critical threshold or the outbox past its quota.
// Refusing keeps the data on the agents, in their spools; nothing is dropped.
func (n *Node) pressure() error {
	if n.diskState.Load() == 2 {
		return &api.BackpressureError{RetryAfter: n.cfg.RetryAfter, Reason: "relay data disk almost full"}
	}
	if node := n.siteDiskCritical(); node != "" {
		return &api.BackpressureError{RetryAfter: n.cfg.RetryAfter, Reason: "the data disk of relay node " + node + " is almost full"}
	}
	st, err := n.outboxStats()
	if err != nil {
		return nil
	}
	if n.cfg.OutboxQuotaBytes > 0 && st.Bytes >= n.cfg.OutboxQuotaBytes {
		n.setRefusing(true, fmt.Sprintf("outbox holds %d bytes, quota %d", st.Bytes, n.cfg.OutboxQuotaBytes))
		return &api.BackpressureError{RetryAfter: n.cfg.RetryAfter, Reason: "relay outbox quota reached"}
	}
	if n.refusing.Load() && n.diskState.Load() < 2 {
		n.setRefusing(false, "outbox below quota")
	}
	return nil
}

// setRefusing raises an event on each change of the backpressure state.
func (n *Node) setRefusing(on bool, why string) {
	if n.refusing.Swap(on) == on {
		return
	}
	if on {
		n.log.Warn("Backpressure on: refusing reports", "reason", why)
		go n.raiseBestEffort(event.BackpressureOn, event.Warning, event.TypeError, "Reports are refused: "+why) // short-lived, bounded by its timeout
	} else {
		n.log.Info("Backpressure off", "reason", why)
		go n.raiseBestEffort(event.BackpressureOff, event.Information, event.TypeError, "Reports are accepted again: "+why)
	}
}

// monitor watches the data disk and records service start.
func (n *Node) monitor(ctx context.Context) {
	started := false
	t := time.NewTicker(diskCheckInterval)
	defer t.Stop()
	for {
		n.checkDisk()
		if n.leaderKnown() {
			n.syncDiskAlarm(ctx) // diskalarm.go
		}
		if !started && n.leaderKnown() {
			started = n.raise(ctx, event.ServiceStarted, event.Information, event.TypeSettings, "The relay service has started.") == nil
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) leaderKnown() bool {
	id, _, _ := n.raft.Leader()
	return id != ""
}

// FreeBytes reports the free space of the filesystem holding dir.
func FreeBytes(dir string) (uint64, error) {
	return hostfs.FreeBytes(dir)
}

func (n *Node) checkDisk() {
	free, err := FreeBytes(n.cfg.DataDir)
	if err != nil {
		n.log.Warn("Disk check failed", "err", err)
		return
	}
	n.metrics.diskFree.Set(float64(free))
	state := int32(0)
	switch {
	case free < n.cfg.DiskCriticalBytes:
		state = 2
	case free < n.cfg.DiskWarnBytes:
		state = 1
	}
	old := n.diskState.Swap(state)
	if old == state {
		return
	}
	mb := free >> 20
	switch state {
	case 2:
		n.setRefusing(true, fmt.Sprintf("free disk space %d MB", mb))
		go n.raiseBestEffort(event.DiskCritical, event.Critical, event.TypeError, fmt.Sprintf("New data is refused because there is almost no free space on the disk containing the data folder. Free disk space = %d MB", mb))
	case 1:
		go n.raiseBestEffort(event.DiskLow, event.Warning, event.TypeError, fmt.Sprintf("Free space on the disk containing the data folder has become scarce. Free disk space = %d MB", mb))
	}
	if old == 2 && state < 2 {
		n.setRefusing(false, fmt.Sprintf("free disk space %d MB", mb))
	}
}
