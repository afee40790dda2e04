package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/blobstore"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/node"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/internal/secret"
	"github.com/edgesync/edgesync/sync/ingest"
)

// AdminTokenFile is written under the data dir at bootstrap.
const AdminTokenFile = "admin-token"

// Node is one member of the central cluster.
type Node struct {
	cfg     Config
	log     *slog.Logger
	shell   *node.Node // data dir, listener, Raft, Run (internal/node)
	raft    *raftnode.Node
	ingest  *ingest.Server
	reg     *prometheus.Registry
	view    *adminView // console, audit (consoleview.go)
	metrics *metrics

	adminToken string     // bootstrap node only
	auth       *authState // accounts: sign-in limits, route rules (authz.go)

	blobs    *blobstore.Store // package blobs (packages.go)
	blobKick chan struct{}
	serves   blobServes
}

// New opens stores and binds listeners; Run serves.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("central config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("central", cfg.NodeID),
		blobKick: make(chan struct{}, 1), serves: blobServes{m: map[string]*BlobServe{}}, auth: newAuthState()}
	shell, err := node.Open(node.Config{Role: "central", NodeID: cfg.NodeID, DataDir: cfg.DataDir,
		RaftAddr: cfg.RaftAddr, RaftAdvertise: cfg.RaftAdvertise, HTTPAddr: cfg.HTTPAddr, HTTPListener: cfg.HTTPListener,
		PKI: cfg.PKI, Raft: cfg.Raft, Bootstrap: cfg.Bootstrap, JoinURL: cfg.JoinURL, Logger: n.log, Registerer: cfg.Registerer})
	if err != nil {
		return nil, err
	}
	n.shell, n.reg = shell, shell.Registry()
	if err := n.open(); err != nil {
		if n.ingest != nil {
			n.ingest.Close()
		}
		shell.Close()
		return nil, err
	}
	return n, nil
}

// open sets up what differs from a relay once the shell is open.
func (n *Node) open() error {
	cfg := n.cfg
	bs, err := blobstore.Open(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return err
	}
	n.blobs = bs
	n.metrics = newMetrics(n.reg)
	if n.raft, err = n.shell.OpenRaft((*fsm)(n)); err != nil {
		return err
	}
	// The data dir that founded the cluster keeps the admin token made at
	// bootstrap, whatever flags it restarts with (an older data dir that
	// does not know how it was created still holds the file).
	tokenPath := filepath.Join(cfg.DataDir, AdminTokenFile)
	if _, serr := os.Stat(tokenPath); n.shell.Founder() || serr == nil {
		if n.adminToken, err = secret.LoadOrCreate(tokenPath, cfg.AdminToken, secret.NewToken); err != nil {
			return err
		}
	}
	if n.ingest, err = ingest.Listen(ingest.Config{
		Addr:       cfg.SyncAddr,
		TCPAddr:    cfg.SyncTCPAddr,
		TLS:        cfg.PKI.ServerTLS(),
		Logger:     n.log,
		Registerer: n.reg,
		Catalog:    (*distribution)(n),
		Blobs:      (*distribution)(n),
	}, (*registry)(n)); err != nil {
		return fmt.Errorf("listen sync: %w", err)
	}
	n.log.Info("Sync listening", "quic", n.SyncAddr(), "tcp", n.SyncTCPAddr())
	if n.view, err = newAdminView(n); err != nil {
		return err
	}
	n.shell.Serve(n.routes())
	return nil
}

// URL is the admin API base URL.
func (n *Node) URL() string { return n.shell.URL() }

// SyncAddr is the bound QUIC address.
func (n *Node) SyncAddr() string { return n.ingest.Addr().String() }

// SyncTCPAddr is the bound TCP+TLS sync address, if any.
func (n *Node) SyncTCPAddr() string {
	if a := n.ingest.TCPAddr(); a != nil {
		return a.String()
	}
	return ""
}

// AdminToken is the admin token (bootstrap node only).
func (n *Node) AdminToken() string { return n.adminToken }

// Raft exposes the replicated node for status and tests.
func (n *Node) Raft() *raftnode.Node { return n.raft }

// Run serves until ctx is done.
func (n *Node) Run(ctx context.Context) error {
	return n.shell.Run(ctx, nil,
		node.Task{Name: "ingest", Run: n.ingest.Run},
		node.Loop("leadership", n.leadership),
		node.Loop("admin view", n.view.run),
		node.Loop("blob sync", n.syncBlobs),
	)
}

// leadership stores the bootstrap secrets once this cluster has a leader and
// records the service start.
func (n *Node) leadership(ctx context.Context) {
	if err := n.raft.WaitLeader(ctx); err != nil {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if n.adminToken != "" {
		if out, err := n.raft.Propose(pctx, encodeSecrets(httpx.HashToken(n.adminToken))); err != nil || resultError(out) != nil {
			n.log.Warn("Storing admin token failed", "err", errors.Join(err, resultError(out)))
		}
	}
	e := event.Event{Number: event.ServiceStarted, Severity: event.Information, Type: event.TypeSettings, Source: n.cfg.NodeID,
		Time: time.Now().UTC(), Message: "The central service has started."}
	if _, err := n.raft.Propose(pctx, encodeEvent(e)); err != nil {
		n.log.Debug("Start event not recorded", "err", err)
	}
}
