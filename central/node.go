package central

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/blobstore"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
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
	raft    *raftnode.Node
	ingest  *ingest.Server
	ln      net.Listener
	srv     *http.Server
	reg     *prometheus.Registry
	view    *adminView // console, audit (consoleview.go)
	metrics *metrics

	adminToken string // bootstrap node only

	blobs    *blobstore.Store // package blobs (packages.go)
	blobKick chan struct{}
	serves   blobServes

	closeOnce sync.Once
}

// New opens stores and binds listeners; Run serves.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("central config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("central", cfg.NodeID), reg: prometheus.NewRegistry(),
		blobKick: make(chan struct{}, 1), serves: blobServes{m: map[string]*BlobServe{}}}
	bs, err := blobstore.Open(filepath.Join(cfg.DataDir, "blobs"))
	if err != nil {
		return nil, err
	}
	n.blobs = bs
	n.metrics = newMetrics(n.reg)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(n.reg); err != nil {
			n.log.Warn("Metrics not registered", "err", err)
		}
	}
	if cfg.Bootstrap {
		tok, err := secret.LoadOrCreate(filepath.Join(cfg.DataDir, AdminTokenFile), cfg.AdminToken, secret.NewToken)
		if err != nil {
			return nil, err
		}
		n.adminToken = tok
	}
	ln := cfg.HTTPListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen http: %w", err)
		}
	}
	n.ln = ln

	rc := cfg.Raft
	rc.NodeID = cfg.NodeID
	rc.Dir = cfg.DataDir
	rc.RaftAddr = cfg.RaftAddr
	rc.RaftAdvertise = cfg.RaftAdvertise
	rc.HTTPAddr = "https://" + ln.Addr().String()
	rc.TLS = cfg.PKI.PeerTLS()
	rc.Logger = n.log
	rc.Registerer = n.reg
	rn, err := raftnode.New(rc, (*fsm)(n))
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("open raft node: %w", err)
	}
	n.raft = rn

	is, err := ingest.Listen(ingest.Config{
		Addr:       cfg.SyncAddr,
		TCPAddr:    cfg.SyncTCPAddr,
		TLS:        cfg.PKI.ServerTLS(),
		Logger:     n.log,
		Registerer: n.reg,
		Catalog:    (*distribution)(n),
		Blobs:      (*distribution)(n),
	}, (*registry)(n))
	if err != nil {
		rn.Close()
		ln.Close()
		return nil, fmt.Errorf("listen sync: %w", err)
	}
	n.ingest = is
	if n.view, err = newAdminView(n); err != nil {
		is.Close()
		rn.Close()
		ln.Close()
		return nil, err
	}
	n.srv = &http.Server{
		Handler:           n.routes(),
		TLSConfig:         cfg.PKI.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	return n, nil
}

// URL is the admin API base URL.
func (n *Node) URL() string { return "https://" + n.ln.Addr().String() }

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
	defer n.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 2)
	fail := func(err error) {
		select {
		case errc <- err:
		default:
		}
		cancel()
	}
	wg.Go(func() {
		if err := n.srv.ServeTLS(n.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fail(fmt.Errorf("serve https: %w", err))
		}
	})
	wg.Go(func() {
		if err := n.ingest.Run(ctx); err != nil {
			fail(fmt.Errorf("ingest: %w", err))
		}
	})
	wg.Go(func() { n.leadership(ctx) })
	wg.Go(func() { n.view.run(ctx) })
	wg.Go(func() { n.syncBlobs(ctx) })
	if n.cfg.Bootstrap {
		if err := n.raft.Bootstrap(); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("bootstrap: %w", err)
		}
	} else {
		wg.Go(func() {
			if err := n.raft.Join(ctx, n.cfg.JoinURL); err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("join %s: %w", n.cfg.JoinURL, err))
			}
		})
	}
	n.log.Info("Central started", "https", n.URL(), "sync", n.SyncAddr(), "raft", n.cfg.RaftAddr)
	<-ctx.Done()
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	n.srv.Shutdown(shutCtx)
	wg.Wait()
	n.log.Info("Central stopped")
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (n *Node) close() {
	n.closeOnce.Do(func() {
		if err := n.raft.Close(); err != nil {
			n.log.Warn("Raft close", "err", err)
		}
		n.ln.Close()
	})
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
