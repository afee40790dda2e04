package test

import (
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/test/procnet"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func edgesyncBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "edgesync-test-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath, buildErr = procnet.Build(dir)
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// TestKill9 runs every node as its own process and SIGKILLs them: the site
// leader mid-stream, then central. Every record the site acknowledged must
// be at central exactly once.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	const (
		site    = "kill"
		agents  = 200
		reports = 30
	)
	net, err := procnet.New(edgesyncBinary(t), t.TempDir())
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
	var relays []*procnet.Proc
	for i := range 3 {
		join := ""
		if i > 0 {
			join = relays[0].URL
		}
		r, err := net.Relay(site, fmt.Sprintf("k%d", i+1), []string{c.SyncAddr("quic")}, "quic", i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Kill)
		relays = append(relays, r)
	}
	ctx := ctxTimeout(t, 5*time.Minute)
	token, err := relays[0].JoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := func() (*procnet.Proc, procnet.RelayStatus) {
		for _, r := range relays {
			var st procnet.RelayStatus
			if r.Running() && r.Get(ctx, "/api/v1/cluster", &st) == nil && st.Raft.State == "Leader" && len(st.Raft.Members) == 3 {
				return r, st
			}
		}
		return nil, procnet.RelayStatus{}
	}
	checkFor(t, 60*time.Second, func() error {
		if l, _ := leader(); l == nil {
			return fmt.Errorf("site not formed")
		}
		return nil
	})
	centralRecords := func() uint64 {
		var sites []central.SiteView
		if c.Get(ctx, "/api/v1/sites", &sites) != nil {
			return 0
		}
		for _, s := range sites {
			if s.ID == site {
				return s.Records
			}
		}
		return 0
	}

	var urls []string
	for _, r := range relays {
		urls = append(urls, r.URL)
	}
	type simOut struct {
		res agent.SimResult
		err error
	}
	done := make(chan simOut, 1)
	go func() {
		res, err := agent.Simulate(ctx, agent.SimConfig{Relays: urls, JoinToken: token, Agents: agents, Reports: reports,
			RecordBytes: 512, BatchSize: 5, Logger: testLogger(t)})
		done <- simOut{res, err}
	}()

	checkFor(t, 2*time.Minute, func() error {
		if n := centralRecords(); n < 300 {
			return fmt.Errorf("central has %d records", n)
		}
		return nil
	})
	old, _ := leader()
	if old == nil {
		t.Fatal("no leader to kill")
	}
	t.Logf("SIGKILL site leader %s at %d central records", old.Name, centralRecords())
	old.Kill()
	checkFor(t, 30*time.Second, func() error {
		for _, r := range relays {
			var st procnet.RelayStatus
			if r.Running() && r.Get(ctx, "/api/v1/cluster", &st) == nil && st.Raft.State == "Leader" {
				return nil
			}
		}
		return fmt.Errorf("no new leader")
	})
	t.Log("SIGKILL central")
	c.Kill()
	checkFor(t, 2*time.Minute, func() error {
		for _, r := range relays {
			var st procnet.RelayStatus
			if r.Running() && r.Get(ctx, "/api/v1/cluster", &st) == nil && st.Raft.State == "Leader" && st.Outbox.Depth >= 200 {
				return nil
			}
		}
		return fmt.Errorf("outbox not growing while central is down")
	})
	if err := old.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out := <-done
	if out.err != nil || out.res.Acked != agents*reports {
		t.Fatalf("simulate: acked %d of %d, %v", out.res.Acked, agents*reports, out.err)
	}
	checkFor(t, 2*time.Minute, func() error {
		l, st := leader()
		if l == nil {
			return fmt.Errorf("no leader with 3 members")
		}
		if st.Outbox.Depth != 0 || centralRecords() != st.Outbox.NextSeq-1 {
			return fmt.Errorf("outbox depth %d, central %d of %d", st.Outbox.Depth, centralRecords(), st.Outbox.NextSeq-1)
		}
		return nil
	})
	var missing, dup int
	for dev, upto := range out.res.AckedByDevice {
		var recs []record.Record
		if err := c.Get(ctx, "/api/v1/devices/"+dev+"/records?limit=10000", &recs); err != nil {
			t.Fatal(err)
		}
		seen := map[uint64]int{}
		for _, r := range recs {
			seen[r.Seq]++
		}
		for s := uint64(1); s <= upto; s++ {
			switch seen[s] {
			case 0:
				missing++
			case 1:
			default:
				dup++
			}
		}
		var d central.Device
		if err := c.Get(ctx, "/api/v1/devices/"+dev, &d); err != nil {
			t.Fatal(err)
		}
		if d.Records != uint64(len(recs)) {
			dup++
		}
	}
	if missing != 0 || dup != 0 {
		t.Fatalf("after SIGKILLs: %d acknowledged records missing, %d duplicated", missing, dup)
	}
	t.Logf("after SIGKILL of the site leader and of central: all %d acknowledged records at central exactly once", agents*reports)
}
