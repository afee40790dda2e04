package localnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/relay"
)

// Options tune a local network.
type Options struct {
	Logger *slog.Logger
	// FastRaft shortens Raft timeouts for loopback (tests and the demo).
	FastRaft bool
	// UplinkTransport is "quic" (default) or "tcp".
	UplinkTransport string
	// Relay, when set, edits each relay's config before it starts.
	Relay func(*relay.Config)
}

// Net is a running local deployment. Its methods are safe for one goroutine.
type Net struct {
	Dir    string
	PKIDir string
	opts   Options

	Centrals []*Central
	Sites    map[string][]*Relay
}

// New creates the PKI under dir.
func New(dir string, opts Options) (*Net, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.UplinkTransport == "" {
		opts.UplinkTransport = "quic"
	}
	n := &Net{Dir: dir, PKIDir: filepath.Join(dir, "pki"), opts: opts, Sites: map[string][]*Relay{}}
	if _, err := os.Stat(filepath.Join(n.PKIDir, "ca.crt")); errors.Is(err, os.ErrNotExist) {
		if err := pki.Init(n.PKIDir); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// CAFile is the CA certificate clients pass as --ca.
func (n *Net) CAFile() string { return filepath.Join(n.PKIDir, "ca.crt") }

func (n *Net) raftConfig() raftnode.Config {
	c := raftnode.DefaultConfig()
	if n.opts.FastRaft {
		c.HeartbeatTimeout = 500 * time.Millisecond
		c.ElectionTimeout = 500 * time.Millisecond
		c.LeaderLeaseTimeout = 250 * time.Millisecond
		c.CommitTimeout = 20 * time.Millisecond
	}
	return c
}

// proc is a node goroutine that can be stopped and started again from its
// data directory.
type proc struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
}

func (p *proc) start(run func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	p.cancel, p.done = cancel, make(chan error, 1)
	done := p.done
	p.mu.Unlock()
	go func() { done <- run(ctx) }() // owned: stop waits on done
}

func (p *proc) stop() error {
	p.mu.Lock()
	cancel, done := p.cancel, p.done
	p.cancel = nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

// Running reports whether the node is started.
func (p *proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cancel != nil
}

// Central is one central node.
type Central struct {
	proc
	cfg  central.Config
	Node *central.Node
}

// Relay is one relay node.
type Relay struct {
	proc
	cfg  relay.Config
	Node *relay.Node
}

// FreeTCP returns a free 127.0.0.1 TCP address.
func FreeTCP() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// FreeUDP returns a free 127.0.0.1 UDP address.
func FreeUDP() (string, error) {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer c.Close()
	return c.LocalAddr().String(), nil
}

// AddCentral starts a central node; the first one bootstraps the cluster,
// later ones join it.
func (n *Net) AddCentral(id string) (*Central, error) {
	if _, _, err := pki.Issue(n.PKIDir, pki.IssueRequest{Role: pki.RoleCentral, Name: id, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
		return nil, err
	}
	b, err := pki.Load(n.PKIDir, id)
	if err != nil {
		return nil, err
	}
	cfg := central.DefaultConfig()
	cfg.NodeID = id
	cfg.DataDir = filepath.Join(n.Dir, "central", id)
	cfg.PKI = b
	cfg.Raft = n.raftConfig()
	cfg.Logger = n.opts.Logger
	if cfg.RaftAddr, err = FreeTCP(); err != nil {
		return nil, err
	}
	if cfg.HTTPAddr, err = FreeTCP(); err != nil {
		return nil, err
	}
	if cfg.SyncAddr, err = FreeUDP(); err != nil {
		return nil, err
	}
	if cfg.SyncTCPAddr, err = FreeTCP(); err != nil {
		return nil, err
	}
	if len(n.Centrals) == 0 {
		cfg.Bootstrap = true
	} else {
		cfg.JoinURL = n.Centrals[0].Node.URL()
	}
	c := &Central{cfg: cfg}
	if err := c.Start(); err != nil {
		return nil, err
	}
	n.Centrals = append(n.Centrals, c)
	return c, nil
}

// Start (re)opens the node from its data dir and runs it.
func (c *Central) Start() error {
	node, err := central.New(c.cfg)
	if err != nil {
		return err
	}
	c.Node = node
	c.start(node.Run)
	return nil
}

// Stop stops the node and waits for it.
func (c *Central) Stop() error { return c.stop() }

// SyncAddr is the address relays dial.
func (c *Central) SyncAddr(transport string) string {
	if transport == "tcp" {
		return c.cfg.SyncTCPAddr
	}
	return c.cfg.SyncAddr
}

// AdminToken is the cluster's admin token (kept by the bootstrap node).
func (n *Net) AdminToken() string {
	if len(n.Centrals) == 0 {
		return ""
	}
	return n.Centrals[0].Node.AdminToken()
}

// AddSite starts a relay site of size nodes; node 0 bootstraps it.
func (n *Net) AddSite(site string, size int) ([]*Relay, error) {
	if len(n.Centrals) == 0 {
		return nil, errors.New("localnet: start central first")
	}
	var centrals []string
	for _, c := range n.Centrals {
		centrals = append(centrals, c.SyncAddr(n.opts.UplinkTransport))
	}
	for i := 0; i < size; i++ {
		id := fmt.Sprintf("%s-r%d", site, i+1)
		if _, _, err := pki.Issue(n.PKIDir, pki.IssueRequest{Role: pki.RoleRelay, Name: id, Site: site, Hosts: []string{"127.0.0.1", "localhost"}}); err != nil {
			return nil, err
		}
		b, err := pki.Load(n.PKIDir, id)
		if err != nil {
			return nil, err
		}
		cfg := relay.DefaultConfig()
		cfg.Site = site
		cfg.NodeID = id
		cfg.DataDir = filepath.Join(n.Dir, "sites", site, id)
		cfg.PKI = b
		cfg.Centrals = centrals
		cfg.UplinkTransport = n.opts.UplinkTransport
		cfg.Raft = n.raftConfig()
		cfg.Logger = n.opts.Logger
		cfg.DiskWarnBytes, cfg.DiskCriticalBytes = 1<<30, 64<<20
		if cfg.RaftAddr, err = FreeTCP(); err != nil {
			return nil, err
		}
		if cfg.HTTPAddr, err = FreeTCP(); err != nil {
			return nil, err
		}
		if i == 0 {
			cfg.Bootstrap = true
		} else {
			cfg.JoinURL = n.Sites[site][0].Node.URL()
		}
		if n.opts.Relay != nil {
			n.opts.Relay(&cfg)
		}
		r := &Relay{cfg: cfg}
		if err := r.Start(); err != nil {
			return nil, err
		}
		n.Sites[site] = append(n.Sites[site], r)
	}
	return n.Sites[site], nil
}

// Start (re)opens the relay from its data dir and runs it.
func (r *Relay) Start() error {
	node, err := relay.New(r.cfg)
	if err != nil {
		return err
	}
	r.Node = node
	r.start(node.Run)
	return nil
}

// Stop stops the relay and waits for it.
func (r *Relay) Stop() error { return r.stop() }

// URL is the relay's HTTPS base URL.
func (r *Relay) URL() string { return "https://" + r.cfg.HTTPAddr }

// ID is the relay's node ID.
func (r *Relay) ID() string { return r.cfg.NodeID }

// URLs lists a site's relay URLs.
func (n *Net) URLs(site string) []string {
	var out []string
	for _, r := range n.Sites[site] {
		out = append(out, r.URL())
	}
	return out
}

// JoinToken is a site's join token (kept by its bootstrap node).
func (n *Net) JoinToken(site string) string {
	rs := n.Sites[site]
	if len(rs) == 0 {
		return ""
	}
	return rs[0].Node.JoinToken()
}

// SiteLeader returns the running relay that leads the site, if any.
func (n *Net) SiteLeader(site string) *Relay {
	for _, r := range n.Sites[site] {
		if r.Running() && r.Node.Raft().IsLeader() {
			return r
		}
	}
	return nil
}

// Close stops every node, relays first.
func (n *Net) Close() error {
	var (
		mu   sync.Mutex
		errs []error
	)
	for _, rs := range n.Sites {
		var wg sync.WaitGroup
		for _, r := range rs {
			wg.Go(func() {
				if err := r.Stop(); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	for i := len(n.Centrals) - 1; i >= 0; i-- {
		if err := n.Centrals[i].Stop(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
