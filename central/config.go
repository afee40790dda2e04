package central

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Config is everything a central node needs. Build it from DefaultConfig.
type Config struct {
	NodeID        string
	DataDir       string
	RaftAddr      string // HOST:PORT for the central Raft
	RaftAdvertise string // address raft peers dial when not RaftAddr (NAT, proxy)
	SyncAddr      string // UDP HOST:PORT for relay uplinks over QUIC
	// SyncTCPAddr optionally also takes uplinks over TCP+TLS (for sites whose
	// networks block UDP).
	SyncTCPAddr string
	HTTPAddr    string // HOST:PORT for the admin API and /metrics
	// HTTPListener, when set, replaces listening on HTTPAddr (tests).
	HTTPListener net.Listener

	PKI *pki.Bundle // role central

	Bootstrap  bool
	JoinURL    string
	AdminToken string `json:"-"` // explicit admin token at bootstrap; generated when empty

	Raft raftnode.Config

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults of an HQ node.
func DefaultConfig() Config {
	return Config{
		RaftAddr: "127.0.0.1:7300",
		SyncAddr: "127.0.0.1:7443",
		HTTPAddr: "127.0.0.1:7080",
		Raft:     raftnode.DefaultConfig(),
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	var errs []error
	if !nameRE.MatchString(c.NodeID) {
		errs = append(errs, fmt.Errorf("node id %q: want 1-63 of a-z, 0-9 and '-'", c.NodeID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Bootstrap && c.JoinURL != "" {
		errs = append(errs, errors.New("bootstrap and join exclude each other"))
	}
	if c.SyncAddr == "" {
		errs = append(errs, errors.New("sync address is required"))
	}
	if c.PKI == nil {
		errs = append(errs, errors.New("a PKI bundle is required"))
	} else if c.PKI.Identity.Role != pki.RoleCentral {
		errs = append(errs, fmt.Errorf("certificate is for role %q, want central", c.PKI.Identity.Role))
	}
	return errors.Join(errs...)
}
