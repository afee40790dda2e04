package relay

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
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
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
	raft    *raftnode.Node
	ln      net.Listener
	srv     *http.Server
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

	audit  *auditLog   // admin actions into the site's Raft state (audit.go)
	status *statusPage // the branch administrator's HTML page (statuspage.go)

	closeOnce sync.Once
}

// New opens the node's stores and listeners. Run starts it.
func New(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("relay config: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("site", cfg.Site, "node", cfg.NodeID), reg: prometheus.NewRegistry()}
	n.metrics = newMetrics(n)
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(n.reg); err != nil {
			n.log.Warn("Metrics not registered", "err", err)
		}
	}
	if cfg.Bootstrap {
		var err error
		if n.joinToken, err = secret.LoadOrCreate(filepath.Join(cfg.DataDir, JoinTokenFile), cfg.JoinToken, func() string {
			return api.NewJoinToken(cfg.Site, cfg.PKI.CAFingerprint()).String()
		}); err != nil {
			return nil, err
		}
		if _, err := api.ParseJoinToken(n.joinToken); err != nil {
			return nil, fmt.Errorf("join token: %w", err)
		}
		if n.adminToken, err = secret.LoadOrCreate(filepath.Join(cfg.DataDir, AdminTokenFile), cfg.AdminToken, secret.NewToken); err != nil {
			return nil, err
		}
	}

	ln := cfg.HTTPListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("listen http: %w", err)
		}
	}
	n.ln = ln

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
		ln.Close()
		return nil, fmt.Errorf("uplink: %w", err)
	}
	n.up = up
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
	if err := n.initAdmin(); err != nil { // audit.go
		rn.Close()
		ln.Close()
		return nil, fmt.Errorf("admin: %w", err)
	}

	n.batch = newBatcher(rn.Propose, n.metrics.observeBatch)
	if n.dist, err = newDistribution(n); err != nil {
		rn.Close()
		ln.Close()
		return nil, fmt.Errorf("distribution: %w", err)
	}
	n.srv = &http.Server{
		Handler:           n.routes(),
		TLSConfig:         cfg.PKI.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
	return n, nil
}

// Addr is the HTTPS address the node serves.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is the node's HTTPS base URL.
func (n *Node) URL() string { return "https://" + n.Addr() }

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
	defer n.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Go(func() {
		if err := n.srv.ServeTLS(n.ln, "", ""); err != nil && !errors.Is(err, http.ErrServerClosed) {
			select {
			case errc <- fmt.Errorf("serve https: %w", err):
			default:
			}
			cancel()
		}
	})
	wg.Go(func() { n.batch.Run(ctx) })
	wg.Go(func() { n.leadership(ctx) })
	wg.Go(func() { n.monitor(ctx) })
	wg.Go(func() { n.dist.run(ctx) })
	wg.Go(func() { n.audit.run(ctx) })   // audit.go
	wg.Go(func() { n.watchUplink(ctx) }) // uplinkwatch.go

	if n.cfg.Bootstrap {
		if err := n.raft.Bootstrap(); err != nil {
			cancel()
			wg.Wait()
			return fmt.Errorf("bootstrap: %w", err)
		}
	} else {
		wg.Go(func() {
			if err := n.raft.Join(ctx, n.cfg.JoinURL); err != nil && ctx.Err() == nil {
				n.log.Error("Join failed", "url", n.cfg.JoinURL, "err", err)
				select {
				case errc <- fmt.Errorf("join %s: %w", n.cfg.JoinURL, err):
				default:
				}
				cancel()
			}
		})
	}
	n.log.Info("Relay started", "https", n.URL(), "raft", n.cfg.RaftAddr)
	<-ctx.Done()
	n.raiseBestEffort(event.ServiceStopped, event.Information, event.TypeSettings, "The relay service has stopped.")
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	n.srv.Shutdown(shutCtx)
	wg.Wait()
	n.log.Info("Relay stopped")
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
