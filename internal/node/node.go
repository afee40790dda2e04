package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

// Config is the part of a node's configuration relay and central share.
type Config struct {
	Role          string // "relay" or "central": log lines, errors and the data dir's identity
	Site          string // the relay's site; "" for central
	NodeID        string
	DataDir       string
	RaftAddr      string
	RaftAdvertise string
	HTTPAddr      string
	HTTPListener  net.Listener // replaces listening on HTTPAddr (tests)
	PKI           *pki.Bundle
	Raft          raftnode.Config
	// Bootstrap and JoinURL (at most one) say how a data dir without raft
	// state joins a cluster. A data dir with state needs neither: the node
	// restarts in its cluster. Bootstrap on the data dir of the cluster it
	// bootstrapped is a no-op; anything that names another cluster, node,
	// role or site than the data dir's IdentityFile is refused.
	Bootstrap  bool
	JoinURL    string
	Logger     *slog.Logger // already carries the node's attributes
	Registerer prometheus.Registerer
}

// Task is one long-running part a node owns. It returns when its context is
// done; an error before that stops the whole node.
type Task struct {
	Name string
	Run  func(ctx context.Context) error
}

// Loop is a Task that can only stop with its context.
func Loop(name string, run func(ctx context.Context)) Task {
	return Task{Name: name, Run: func(ctx context.Context) error { run(ctx); return nil }}
}

// Node is the shared shell of one relay or central node.
type Node struct {
	cfg  Config
	log  *slog.Logger
	reg  *prometheus.Registry
	ln   net.Listener
	raft *raftnode.Node
	srv  *http.Server

	// Set by OpenRaft (lifecycle.go); after it only Run's join task (or
	// its check of --join) touches id.
	start   startMode
	id      Identity
	founder bool

	closeOnce sync.Once
}

// Open creates the data dir and the metrics registry and binds the HTTPS
// listener. Raft opens in OpenRaft, once the caller has what its state
// machine needs during log replay.
func Open(cfg Config) (*Node, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger, reg: prometheus.NewRegistry()}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(n.reg); err != nil {
			n.log.Warn("Metrics not registered", "err", err)
		}
	}
	n.ln = cfg.HTTPListener
	if n.ln == nil {
		ln, err := net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			return nil, fmt.Errorf("listen http: %w", err)
		}
		n.ln = ln
	}
	return n, nil
}

// OpenRaft opens the Raft node over the data dir with sm as its state
// machine; the peers reach this node's HTTP API at its listener.
func (n *Node) OpenRaft(sm raftnode.StateMachine) (*raftnode.Node, error) {
	rc := n.cfg.Raft
	rc.NodeID = n.cfg.NodeID
	rc.Dir = n.cfg.DataDir
	rc.RaftAddr = n.cfg.RaftAddr
	rc.RaftAdvertise = n.cfg.RaftAdvertise
	rc.HTTPAddr = n.URL()
	rc.TLS = n.cfg.PKI.PeerTLS()
	rc.Logger = n.log
	rc.Registerer = n.reg
	id, haveID, err := ReadIdentity(n.cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if haveID {
		if err := n.checkIdentity(id); err != nil {
			return nil, err
		}
	}
	rc.ClusterID = id.ClusterID
	rn, err := raftnode.New(rc, sm)
	if err != nil {
		return nil, fmt.Errorf("open raft node: %w", err)
	}
	n.raft = rn
	if err := n.plan(id, haveID); err != nil {
		n.raft = nil
		if cerr := rn.Close(); cerr != nil {
			n.log.Warn("Raft close", "err", cerr)
		}
		return nil, err
	}
	return rn, nil
}

// Serve sets the handler of the node's HTTPS server (admin API, agent API,
// metrics), served with the node's certificate.
func (n *Node) Serve(h http.Handler) {
	n.srv = &http.Server{
		Handler:           h,
		TLSConfig:         n.cfg.PKI.ServerTLS(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelDebug),
	}
}

// Founder reports whether this node's data dir bootstrapped its cluster, so
// the secrets made at bootstrap (tokens) live in it; valid after OpenRaft.
func (n *Node) Founder() bool { return n.founder }

// Registry is the node's metrics registry.
func (n *Node) Registry() *prometheus.Registry { return n.reg }

// Addr is the bound HTTPS address.
func (n *Node) Addr() string { return n.ln.Addr().String() }

// URL is the node's HTTPS base URL.
func (n *Node) URL() string { return "https://" + n.Addr() }

// Close releases what Open and OpenRaft took; Run calls it on return. Use
// it directly only when setting up failed before Run.
func (n *Node) Close() {
	n.closeOnce.Do(func() {
		if n.raft != nil {
			if err := n.raft.Close(); err != nil {
				n.log.Warn("Raft close", "err", err)
			}
		}
		n.ln.Close()
	})
}

// Run serves HTTPS, runs tasks, bootstraps or joins the group and waits for
// ctx. Then it calls beforeStop (while Raft still runs, e.g. to record a
// stop event; not after a failed bootstrap), shuts the HTTP server down, waits for every task and closes
// Raft and the listener. It returns the first task's failure, if any.
func (n *Node) Run(ctx context.Context, beforeStop func(), tasks ...Task) error {
	defer n.Close()
	if n.srv == nil || n.raft == nil {
		return errors.New("node: Run before OpenRaft and Serve")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, 1) // the first failure
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
	for _, t := range tasks {
		wg.Go(func() {
			if err := t.Run(ctx); err != nil && ctx.Err() == nil {
				n.log.Error("Part stopped", "part", t.Name, "err", err)
				fail(fmt.Errorf("%s: %w", t.Name, err))
			}
		})
	}
	bootstrapped := true
	switch n.start {
	case startBootstrap:
		if err := n.raft.Bootstrap(); err != nil {
			bootstrapped = false
			fail(fmt.Errorf("bootstrap: %w", err))
		}
	case startJoin:
		wg.Go(func() {
			if err := n.join(ctx); err != nil && ctx.Err() == nil {
				n.log.Error("Join failed", "url", n.cfg.JoinURL, "err", err)
				fail(fmt.Errorf("join %s: %w", n.cfg.JoinURL, err))
			}
		})
	case startRestart:
		if n.cfg.JoinURL != "" {
			wg.Go(func() {
				if err := n.checkJoinURL(ctx); err != nil {
					n.log.Error("Refusing --join", "url", n.cfg.JoinURL, "err", err)
					fail(err)
				}
			})
		}
	}
	if ctx.Err() == nil {
		n.log.Info("Node started", "role", n.cfg.Role, "https", n.URL(), "raft", n.cfg.RaftAddr)
	}
	<-ctx.Done()
	// A node that never bootstrapped has no group to record its stop in.
	if beforeStop != nil && bootstrapped {
		beforeStop()
	}
	shutCtx, shutCancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer shutCancel()
	n.srv.Shutdown(shutCtx)
	wg.Wait()
	n.log.Info("Node stopped", "role", n.cfg.Role)
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
