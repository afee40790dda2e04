//go:build linux

package test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/lossyfs"
	"github.com/edgesync/edgesync/test/procnet"
)

// TestPowerLoss_WholeSite cuts the power of a whole three-node relay site
// at once, five times, in the middle of agent load: every node's data dir
// is on lossyfs, which keeps only what was fsynced. After each cut the
// nodes start again from what their disks kept; at the end every record
// the site acknowledged to an agent must be at central exactly once, and
// the three nodes must agree. An acknowledgement is a promise that the
// record is on a quorum's disk: a site-wide cut is the test of it that a
// single kill is not (a killed process leaves its page cache behind).
func TestPowerLoss_WholeSite(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	if err := lossyfs.Available(t.TempDir()); err != nil {
		t.Skipf("power-loss test needs FUSE as root: %v", err)
	}
	bin := edgesyncBinary(t)
	net, err := procnet.New(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		net.Log = os.Stderr
	}
	c, err := net.Central("c1", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)

	const siteID = "dark"
	type disk struct {
		p       *procnet.Proc
		backing string
		fs      *lossyfs.FS
	}
	var disks []*disk
	mount := func(d *disk) {
		t.Helper()
		f, err := lossyfs.Mount(d.backing, d.p.Data)
		if err != nil {
			t.Fatal(err)
		}
		d.fs = f
	}
	// Registered before the processes' kills, so it runs after them.
	t.Cleanup(func() {
		for _, d := range disks {
			if d.fs != nil {
				d.p.Kill()
				if err := d.fs.Unmount(); err != nil {
					t.Logf("cleanup: %v", err)
				}
			}
		}
	})
	for i := range 3 {
		join := ""
		if i > 0 {
			join = disks[0].p.URL
		}
		p, err := net.Relay(siteID, fmt.Sprintf("d%d", i+1), []string{c.SyncAddr("quic")}, "quic", i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		d := &disk{p: p, backing: p.Data + ".disk"}
		for _, dir := range []string{d.backing, p.Data} {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		mount(d)
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Kill)
		disks = append(disks, d)
	}
	var relays []*procnet.Proc
	var urls []string
	for _, d := range disks {
		relays = append(relays, d.p)
		urls = append(urls, d.p.URL)
	}
	site := &crashSite{t: t, net: net, c: c, relays: relays}
	waitLed := func() procnet.RelayStatus {
		t.Helper()
		var st procnet.RelayStatus
		checkFor(t, 2*time.Minute, func() error {
			l, _ := site.leader()
			if l == nil {
				return errors.New("no site leader with three voters")
			}
			return l.Get(context.Background(), "/api/v1/cluster", &st)
		})
		return st
	}
	waitLed()

	ctx := ctxTimeout(t, 8*time.Minute)
	token, err := relays[0].JoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	loadDone := make(chan agent.SimResult, 1)
	go func() {
		res, _ := agent.Simulate(loadCtx, agent.SimConfig{Relays: urls, JoinToken: token, Agents: 12, Reports: 1 << 20,
			RecordBytes: 512, BatchSize: 4, Concurrency: 4, MaxRetryWait: 300 * time.Millisecond, Logger: testLogger(t)})
		loadDone <- res
	}()
	defer cancelLoad()

	var dropped int64
	const cuts = 5
	for cut := range cuts {
		from := waitLed().Outbox.NextSeq
		var committed uint64 // what the leader had applied just before the cut
		checkFor(t, 2*time.Minute, func() error {
			st := waitLed()
			if committed = st.Outbox.NextSeq; committed < from+300 {
				return fmt.Errorf("site took %d records since the last cut, want 300", committed-from)
			}
			return nil
		})
		// The power goes off everywhere at once, then the processes die.
		for _, d := range disks {
			d.fs.Cut()
		}
		for _, d := range disks {
			d.p.Kill()
		}
		for _, d := range disks {
			dropped += d.fs.Dropped()
			if err := d.fs.Unmount(); err != nil {
				t.Fatal(err)
			}
			d.fs = nil
		}
		for _, d := range disks {
			mount(d)
			if err := d.p.Start(); err != nil {
				t.Fatal(err)
			}
		}
		// An applied entry was committed: on a quorum's disk. The site must
		// come back with at least it, once the log is replayed.
		var st procnet.RelayStatus
		checkFor(t, 2*time.Minute, func() error {
			if st = waitLed(); st.Outbox.NextSeq < committed {
				return fmt.Errorf("site back at record %d, had committed %d before the cut", st.Outbox.NextSeq-1, committed-1)
			}
			return nil
		})
		t.Logf("cut %d: %d records committed before it, the site is back with %d (outbox depth %d)", cut+1, committed-1, st.Outbox.NextSeq-1, st.Outbox.Depth)
	}
	if dropped == 0 {
		t.Error("the cuts dropped no unsynced data: the test did not test power loss")
	}
	cancelLoad()
	load := <-loadDone
	var acked uint64
	for _, a := range load.AckedByDevice {
		acked += a
	}
	t.Logf("%d records acknowledged over %d site-wide power cuts; %d KiB of unsynced data dropped", acked, cuts, dropped>>10)
	if acked == 0 {
		t.Fatal("no record acknowledged")
	}

	checkFor(t, 3*time.Minute, func() error {
		if st := waitLed(); st.Outbox.Depth != 0 {
			return fmt.Errorf("outbox depth %d", st.Outbox.Depth)
		}
		return nil
	})
	for id, want := range load.AckedByDevice {
		seen := map[uint64]int{}
		for after := uint64(0); ; {
			var page []record.Record
			if err := c.Get(ctx, fmt.Sprintf("/api/v1/devices/%s/records?after=%d&limit=10000", id, after), &page); err != nil {
				t.Fatalf("device %s: %v", id, err)
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				seen[r.Seq]++
			}
			after = page[len(page)-1].Seq
		}
		for s := uint64(1); s <= want; s++ {
			if seen[s] != 1 {
				t.Errorf("device %s seq %d acknowledged, at central %d times", id, s, seen[s])
			}
		}
		var dev central.Device
		if err := c.Get(ctx, "/api/v1/devices/"+id, &dev); err != nil {
			t.Fatal(err)
		}
		if dev.Records < want {
			t.Errorf("device %s: central counts %d records, %d acknowledged", id, dev.Records, want)
		}
	}
	site.digestsAgree()
}
