package test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Badger's and glog's process-wide background goroutines.
		goleak.IgnoreTopFunction("github.com/golang/glog.(*fileSink).flushDaemon"),
		goleak.IgnoreTopFunction("github.com/dgraph-io/ristretto/v2/z.(*AllocatorPool).freeupAllocators"),
		goleak.IgnoreAnyFunction("github.com/dgraph-io/badger/v4/y.(*WaterMark).process"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// checkFor polls fn until it returns nil or the timeout passes.
func checkFor(t *testing.T, timeout time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// startNet starts a 1-node central and a 3-node site and waits until both
// have leaders and the site has three voters.
func startNet(t *testing.T, site string, edit func(*relay.Config)) *localnet.Net {
	t.Helper()
	n, err := localnet.New(t.TempDir(), localnet.Options{Logger: testLogger(t), FastRaft: true, Relay: edit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c, err := n.AddCentral("central-1")
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		if !c.Node.Raft().IsLeader() {
			return fmt.Errorf("central not leader")
		}
		return nil
	})
	if _, err := n.AddSite(site, 3); err != nil {
		t.Fatal(err)
	}
	waitSite(t, n, site, 3)
	return n
}

func waitSite(t *testing.T, n *localnet.Net, site string, members int) *localnet.Relay {
	t.Helper()
	var leader *localnet.Relay
	checkFor(t, 30*time.Second, func() error {
		leader = n.SiteLeader(site)
		if leader == nil {
			return fmt.Errorf("site %s has no leader", site)
		}
		if got := len(leader.Node.Raft().Members()); got != members {
			return fmt.Errorf("site %s has %d members, want %d", site, got, members)
		}
		return nil
	})
	return leader
}

// waitDrained waits until central's cursor for site equals the last seq the
// site committed and the outbox is empty.
func waitDrained(t *testing.T, n *localnet.Net, site string, timeout time.Duration) {
	t.Helper()
	c := n.Centrals[0].Node
	checkFor(t, timeout, func() error {
		l := n.SiteLeader(site)
		if l == nil {
			return fmt.Errorf("no site leader")
		}
		st := l.Node.Status()
		var cursor uint64
		sites, err := c.Sites()
		if err != nil {
			return err
		}
		for _, s := range sites {
			if s.ID == site {
				cursor = s.AckedSeq
			}
		}
		if st.Outbox.Depth != 0 || cursor != st.Outbox.NextSeq-1 {
			return fmt.Errorf("outbox depth %d, central cursor %d, site next seq %d", st.Outbox.Depth, cursor, st.Outbox.NextSeq)
		}
		return nil
	})
}

// checkExactlyOnce asserts central holds every acked seq 1..acked of every
// device exactly once, and no record the device never sent.
func checkExactlyOnce(t *testing.T, c *central.Node, acked map[string]uint64, sent map[string]uint64) {
	t.Helper()
	var missing, dup, total int
	for dev, upto := range acked {
		recs, err := c.Records(dev, 0, 1<<20)
		if err != nil {
			t.Fatalf("records of %s: %v", dev, err)
		}
		seen := map[uint64]int{}
		for _, r := range recs {
			seen[r.Seq]++
			if r.Seq > sent[dev] {
				t.Errorf("device %s: seq %d at central was never sent (sent up to %d)", dev, r.Seq, sent[dev])
			}
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
		d, err := c.Device(dev)
		if err != nil {
			t.Fatalf("device %s: %v", dev, err)
		}
		if d.Records != uint64(len(recs)) {
			t.Errorf("device %s: %d records applied for %d distinct seqs (a record applied twice)", dev, d.Records, len(recs))
		}
		total += int(upto)
	}
	if missing > 0 || dup > 0 {
		t.Fatalf("of %d acknowledged records: %d missing at central, %d duplicated", total, missing, dup)
	}
	t.Logf("all %d acknowledged records of %d devices are at central exactly once", total, len(acked))
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
