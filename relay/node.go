package relay

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/node"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/internal/secret"
	"github.com/edgesync/edgesync/sync/uplink"
)

// Files under the data dir written at bootstrap.
const (
	JoinTokenFile  = "join-token"
	AdminTokenFile = "admin-token"
)

// Node is one relay of a branch site.
type Node struct {
	cfg     Config
	log     *slog.Logger
	shell   *node.Node // data dir, listener, Raft, Run (internal/node)
	raft    *raftnode.Node
	up      *uplink.Uplink
	batch   *batcher
	dist    *distribution // catalog mirror and package cache (catalog.go, cache.go)
	metrics *metrics
	reg     *prometheus.Registry

	joinToken  string // known on the bootstrap node only
	adminToken string

	// refusing is set while reports are refused (outbox quota or disk).
	refusing atomic.Bool
	// diskState is 0 ok, 1 warning, 2 critical.
	diskState atomic.Int32
	// alarm is the site-wide view of the members' disk states (diskalarm.go).
	alarm diskAlarm

	audit  *audit.Log  // admin actions into the site's Raft state (audit.go)
	status *statusPage // the branch administrator's HTML page (statuspage.go)

}

// New opens the node's stores and listeners. Run starts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("site", cfg.Site, "node", cfg.NodeID)}
	shell, err := node.Open(node.Config{Role: "relay", Site: cfg.Site, NodeID: cfg.NodeID, DataDir: cfg.DataDir,
		RaftAddr: cfg.RaftAddr, RaftAdvertise: cfg.RaftAdvertise, HTTPAddr: cfg.HTTPAddr, HTTPListener: cfg.HTTPListener,
		PKI: cfg.PKI, Raft: cfg.Raft, Bootstrap: cfg.Bootstrap, JoinURL: cfg.JoinURL, Logger: n.log, Registerer: cfg.Registerer})
	if err != nil {
		return nil, err
	}
	n.shell, n.reg = shell, shell.Registry()
	if err := n.open(); err != nil {
		shell.Close()
		return nil, err
	}
	return n, nil
}

// open sets up what differs from central once the shell is open.
func (n *Node) open() error {
	cfg := n.cfg
	n.metrics = newMetrics(n)
	// The uplink exists before Raft replays the log: Apply kicks it.
	up, err := uplink.New(uplink.Config{
		Site:       cfg.Site,
		Node:       cfg.NodeID,
		Centrals:   cfg.Centrals,
		Transport:  cfg.UplinkTransport,
		TLS:        cfg.PKI.ClientTLS(),
		RateLimit:  cfg.UplinkRate,
		Logger:     n.log,
		Registerer: n.reg,
	}, &outbox{n: n})
	if err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	n.up = up
	if n.raft, err = n.shell.OpenRaft((*fsm)(n)); err != nil {
		return err
	}
	if err := n.loadSecrets(); err != nil {
		return err
	}
	if err := n.initAdmin(); err != nil { // audit.go
		return fmt.Errorf("admin: %w", err)
	}
	n.batch = newBatcher(n.raft.Propose, n.metrics.observeBatch)
	if n.dist, err = newDistribution(n); err != nil {
		return fmt.Errorf("distribution: %w", err)
	}
	n.shell.Serve(n.routes())
	return nil
}

// loadSecrets reads (or, at the first bootstrap, creates) the site join
// token and the admin token of the node whose data dir founded the site,
// whatever flags it restarts with. A data dir from an older release that
// does not know how it was created still holds the token file it made.
func (n *Node) loadSecrets() error {
	cfg := n.cfg
	if _, err := os.Stat(filepath.Join(cfg.DataDir, JoinTokenFile)); !n.shell.Founder() && err != nil {
		return nil
	}
	var err error
	if n.joinToken, err = secret.LoadOrCreate(filepath.Join(cfg.DataDir, JoinTokenFile), cfg.JoinToken, func() string {
		return api.NewJoinToken(cfg.Site, cfg.PKI.CAFingerprint()).String()
	}); err != nil {
		return err
	}
	if _, err := api.ParseJoinToken(n.joinToken); err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	if n.adminToken, err = secret.LoadOrCreate(filepath.Join(cfg.DataDir, AdminTokenFile), cfg.AdminToken, secret.NewToken); err != nil {
		return err
	}
	return nil
}

// Addr is the HTTPS address the node serves.
func (n *Node) Addr() string { return n.shell.Addr() }

// URL is the node's HTTPS base URL.
func (n *Node) URL() string { return n.shell.URL() }

// JoinToken is the site join token (bootstrap node only).
func (n *Node) JoinToken() string { return n.joinToken }

// AdminToken is the admin token (bootstrap node only).
func (n *Node) AdminToken() string { return n.adminToken }

// Raft exposes the replicated node for status and tests.
func (n *Node) Raft() *raftnode.Node { return n.raft }

// Uplink exposes the uplink for status.
func (n *Node) Uplink() *uplink.Uplink { return n.up }

// Run serves until ctx is done, then stops everything it started.
func (n *Node) Run(ctx context.Context) error {
	return n.shell.Run(ctx, func() {
		n.raiseBestEffort(event.ServiceStopped, event.Information, event.TypeSettings, "The relay service has stopped.")
	},
		node.Task{Name: "batcher", Run: n.batch.Run},
		node.Loop("leadership", n.leadership),
		node.Loop("monitor", n.monitor),
		node.Loop("distribution", n.dist.run),
		node.Loop("audit", n.audit.Run),          // audit.go
		node.Loop("uplink watch", n.watchUplink), // uplinkwatch.go
	)
}

// leadership runs the uplink while this node leads the site.
func (n *Node) leadership(ctx context.Context) {
	var (
		upCancel context.CancelFunc
		upDone   chan struct{}
	)
	stop := func() {
		if upCancel != nil {
			upCancel()
			<-upDone
			upCancel = nil
		}
	}
	defer stop()
	apply := func(leader bool) {
		if leader && upCancel == nil {
			var upCtx context.Context
			upCtx, upCancel = context.WithCancel(ctx)
			upDone = make(chan struct{})
			go func() { // owned: stop() waits on upDone
				defer close(upDone)
				if err := n.up.Run(upCtx); err != nil {
					n.log.Error("Uplink stopped", "err", err)
				}
			}()
			n.log.Info("Leading the site: uplink started")
			n.ensureSecrets(ctx)
		} else if !leader {
			stop()
		}
	}
	apply(n.raft.IsLeader())
	for {
		select {
		case <-ctx.Done():
			return
		case l := <-n.raft.LeaderCh():
			apply(l)
		}
	}
}

// ensureSecrets writes the bootstrap node's token hashes into the site state once.
func (n *Node) ensureSecrets(ctx context.Context) {
	if n.joinToken == "" {
		return
	}
	jt, err := api.ParseJoinToken(n.joinToken)
	if err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := n.raft.Propose(pctx, encodeSecrets(jt.SecretHash(), httpx.HashToken(n.adminToken)))
	if err == nil {
		err = resultError(out)
	}
	if err != nil {
		n.log.Warn("Storing site secrets failed", "err", err)
	}
}

func (n *Node) raise(ctx context.Context, number int, severity, typ, msg string) error {
	e := event.Event{Number: number, Severity: severity, Type: typ, Source: n.cfg.NodeID, Time: time.Now().UTC(), Message: msg}
	out, err := n.raft.Propose(ctx, encodeEvent(e))
	if err == nil {
		err = resultError(out)
	}
	return err
}

func (n *Node) raiseBestEffort(number int, severity, typ, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := n.raise(ctx, number, severity, typ, msg); err != nil {
		n.log.Debug("Event not recorded", "number", number, "err", err)
	}
}
