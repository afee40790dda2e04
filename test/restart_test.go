package test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/test/procnet"
)

// withoutJoinFlags drops --bootstrap and --join URL from a node's Args: the
// node starts as the packaged systemd unit starts it.
func withoutJoinFlags(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--bootstrap":
			continue
		case "--join":
			i++
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// TestRestartIsJustRun: a 3-node relay site (processes) whose founder and
// then a joined member are each stopped, miss agent reports, and are
// restarted with neither --bootstrap nor --join: each rejoins the site and
// catches up, and the founder still has the site's join token.
func TestRestartIsJustRun(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	const site = "restart"
	out := &syncBuffer{}
	net, err := procnet.New(edgesyncBinary(t), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	net.Log = out
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		net.Log = io.MultiWriter(out, os.Stderr)
	}
	c, err := net.Central("c1", true, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Kill)
	s := &crashSite{t: t, net: net, c: c}
	for i := range 3 {
		join := ""
		if i > 0 {
			join = s.relays[0].URL
		}
		r, err := net.Relay(site, fmt.Sprintf("r%d", i+1), []string{c.SyncAddr("quic")}, "quic", i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Kill)
		s.relays = append(s.relays, r)
	}
	checkFor(t, 60*time.Second, func() error {
		if l, _ := s.leader(); l == nil {
			return errors.New("site not formed")
		}
		return nil
	})
	ctx := ctxTimeout(t, 5*time.Minute)
	token, err := s.relays[0].JoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}

	for round, p := range []*procnet.Proc{s.relays[0], s.relays[2]} {
		p.Stop()
		var live []string
		for _, r := range s.relays {
			if r != p {
				live = append(live, r.URL)
			}
		}
		// The two members left keep taking reports the stopped one misses.
		res, err := agent.Simulate(ctx, agent.SimConfig{Relays: live, JoinToken: token, Agents: 5, Reports: 20,
			RecordBytes: 256, BatchSize: 5, Logger: testLogger(t)})
		if err != nil || res.Acked != 5*20 {
			t.Fatalf("round %d: simulate with %s stopped: acked %d, %v", round, p.Name, res.Acked, err)
		}
		p.Args = withoutJoinFlags(p.Args)
		if slices.Contains(p.Args, "--bootstrap") || slices.Contains(p.Args, "--join") {
			t.Fatalf("args still have a join flag: %v", p.Args)
		}
		if err := p.Start(); err != nil {
			t.Fatal(err)
		}
		s.waitCaughtUp(p)
		st, err := s.status(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Raft.ClusterID == "" {
			t.Fatalf("%s restarted without flags knows no cluster ID", p.Name)
		}
		t.Logf("round %d: %s restarted without flags, caught up at applied index %d", round, p.Name, st.Raft.AppliedIndex)
	}
	// cmd prints the founder's join token when the node has it: at the
	// first start and again after the flagless restart.
	if n := strings.Count(out.String(), "site join token"); n != 2 {
		t.Fatalf("the founder printed its join token %d times, want 2 (at bootstrap and after the flagless restart)", n)
	}
}
