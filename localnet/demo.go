package localnet

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/offline"
)

// DemoConfig sizes `edgesync demo`.
type DemoConfig struct {
	Dir         string        // data dir; a fresh temp dir when empty
	Site        string        // relay site name
	Agents      int           // simulated agents
	Reports     int           // records per simulated agent
	RecordBytes int           // size of each simulated record
	Every       time.Duration // summary interval
	Duration    time.Duration // stop after this long (0 = until ctx is done)
	Logger      *slog.Logger
}

// DefaultDemoConfig is what `make demo` runs.
func DefaultDemoConfig() DemoConfig {
	return DemoConfig{Site: "branch-1", Agents: 50, Reports: 40, RecordBytes: 1024, Every: 3 * time.Second}
}

// RunDemo starts a 1-node central and a 3-node relay site on 127.0.0.1,
// reports this machine's real inventory through the site, drives simulated
// agents, and prints a live summary until ctx is done.
func RunDemo(ctx context.Context, cfg DemoConfig, out io.Writer) error {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "edgesync-demo-")
		if err != nil {
			return err
		}
		cfg.Dir = d
	}
	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.Duration)
		defer cancel()
	}
	net, err := New(cfg.Dir, Options{Logger: cfg.Logger, FastRaft: true, Relay: demoRelayConfig}) // demodist.go
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(out, "stopping...")
		if err := net.Close(); err != nil {
			fmt.Fprintln(out, "stop:", err)
		}
		fmt.Fprintf(out, "stopped; data kept in %s\n", cfg.Dir)
	}()
	c, err := net.AddCentral("central-1")
	if err != nil {
		return fmt.Errorf("start central: %w", err)
	}
	if err := waitFor(ctx, 20*time.Second, func() bool { return c.Node.Raft().IsLeader() && c.Node.AdminToken() != "" }); err != nil {
		return fmt.Errorf("central leader: %w", err)
	}
	if _, err := net.AddSite(cfg.Site, 3); err != nil {
		return fmt.Errorf("start site: %w", err)
	}
	if err := waitFor(ctx, 30*time.Second, func() bool {
		l := net.SiteLeader(cfg.Site)
		return l != nil && len(l.Node.Raft().Members()) == 3
	}); err != nil {
		return fmt.Errorf("site leader: %w", err)
	}
	token := net.JoinToken(cfg.Site)
	relays := net.URLs(cfg.Site)
	fmt.Fprintf(out, `edgesync demo: 1 central node, relay site %q with 3 nodes, all on 127.0.0.1
  data          %s
  console + API %s/  (sign in with the admin token)
  admin token   %s
  CA            %s
  relays        %v
  join token    %s

try, in another terminal:
  export EDGESYNC_SERVER=%s EDGESYNC_TOKEN=%s EDGESYNC_CA=%s
  edgesync site list
  edgesync device list --site %s
  edgesync cluster status

`, cfg.Site, cfg.Dir, c.Node.URL(), net.AdminToken(), net.CAFile(), relays, token,
		c.Node.URL(), net.AdminToken(), net.CAFile(), cfg.Site)

	// This machine's own inventory, through a real agent with a real spool.
	a, err := agent.New(agent.Config{Relays: relays, JoinToken: token, StateDir: filepath.Join(cfg.Dir, "agent"), Once: true, Logger: cfg.Logger})
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if err := a.Run(ctx); err != nil {
		fmt.Fprintf(out, "local agent: %v\n", err)
	} else {
		fmt.Fprintln(out, "local agent: this machine's inventory reported")
	}
	if err := demoOffline(ctx, cfg.Dir, c.Node, net.AdminToken(), out); err != nil {
		fmt.Fprintf(out, "offline: %v\n", err)
	}

	simDone := make(chan agent.SimResult, 1)
	go func() { // owned: its result is read before RunDemo returns
		res, err := agent.Simulate(ctx, agent.SimConfig{Relays: relays, JoinToken: token, Agents: cfg.Agents, Reports: cfg.Reports,
			RecordBytes: cfg.RecordBytes, Logger: cfg.Logger})
		if err != nil && ctx.Err() == nil {
			fmt.Fprintf(out, "simulate: %v\n", err)
		}
		simDone <- res
	}()

	t := time.NewTicker(cfg.Every)
	defer t.Stop()
	simRunning := true
	var dist *demoDist // demodist.go
	for {
		printSummary(out, net, c, cfg.Site)
		select {
		case <-ctx.Done():
			if simRunning {
				<-simDone
			}
			dist.wait()
			return nil
		case res := <-simDone:
			simRunning = false
			fmt.Fprintf(out, "simulated agents: %d agents, %d records acknowledged by the site at %.0f records/s\n", res.Agents, res.Acked, res.RecordsPerSec)
			if len(res.Devices) > 0 && dist == nil {
				dist = startDemoDistribution(ctx, cfg, net, c, res.Devices, out)
			}
		case <-t.C:
		}
	}
}

func printSummary(out io.Writer, net *Net, c *Central, site string) {
	list, err := c.Node.Devices("", "", 0, 0)
	if err != nil {
		fmt.Fprintf(out, "summary: %v\n", err)
		return
	}
	sites, _ := c.Node.Sites()
	var acked, records uint64
	for _, s := range sites {
		if s.ID == site {
			acked, records = s.AckedSeq, s.Records
		}
	}
	leader, depth, uplink := "-", uint64(0), "down"
	if l := net.SiteLeader(site); l != nil {
		st := l.Node.Status()
		leader, depth = l.ID(), st.Outbox.Depth
		if st.Uplink != nil && st.Uplink.Connected {
			uplink = "up via " + st.Uplink.Transport
		}
	}
	fmt.Fprintf(out, "%s  central: %d devices, %d records from %s (acked seq %d) | site leader %s, outbox %d, uplink %s%s\n",
		time.Now().Format("15:04:05"), list.Total, records, site, acked, leader, depth, uplink, taskSummary(c))
}

// demoOffline creates a kit, collects three offline computers onto it (USB
// channel) and imports the medium at central, as an administrator would.
func demoOffline(ctx context.Context, dir string, c *central.Node, token string, out io.Writer) error {
	kit, err := c.CreateKit(ctx, central.KitRequest{Name: "demo"})
	if err != nil {
		return err
	}
	medium := filepath.Join(dir, "usb", offline.RootDir)
	if err := os.MkdirAll(medium, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(medium, offline.KitFile), kit, 0o644); err != nil {
		return err
	}
	for i := range 3 {
		inv := record.Inventory{Hostname: fmt.Sprintf("offline-pc-%d", i+1), OS: record.OS{Name: "Ubuntu", Version: "24.04", Arch: "amd64"},
			Hardware: record.Hardware{Vendor: "LENOVO", Serial: fmt.Sprintf("USB%05d", i+1)}}
		if _, err := offline.Collect(ctx, offline.CollectConfig{KitDir: medium, StateDir: filepath.Join(dir, "usb-state", fmt.Sprint(i)), Silent: true,
			Inventory: func(context.Context) (record.Inventory, error) { return inv, nil }}); err != nil {
			return err
		}
	}
	caFile := filepath.Join(dir, "pki", "ca.crt")
	hc, err := demoHTTPClient(caFile)
	if err != nil {
		return err
	}
	rep, err := offline.Import(ctx, medium, offline.ImportConfig{Server: c.URL(), Token: token, HTTP: hc})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "offline: kit and 3 USB collections in %s imported at central: %v\n", medium, rep.Counts)
	return nil
}

func demoHTTPClient(caFile string) (*http.Client, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}, nil
}

// waitFor polls cond until it holds, ctx ends or the timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return errors.New("timed out")
		case <-t.C:
		}
	}
	return nil
}
