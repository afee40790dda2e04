package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"regexp"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

var siteRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// Config is everything a relay node needs. Build it from DefaultConfig.
type Config struct {
	Site          string
	NodeID        string
	DataDir       string
	RaftAddr      string // HOST:PORT for the site Raft
	RaftAdvertise string // address raft peers dial when not RaftAddr (NAT, proxy)
	HTTPAddr      string // HOST:PORT for agent API, admin API, peer forwarding, /metrics
	// HTTPListener, when set, is used instead of listening on HTTPAddr (tests
	// bind 127.0.0.1:0 first so the port is known before the node starts).
	HTTPListener net.Listener

	Centrals        []string // central sync addresses, HOST:PORT, tried in order
	UplinkTransport string   // "quic" (default) or "tcp"
	UplinkRate      int64    // bytes/s, 0 = unlimited

	PKI *pki.Bundle // this node's certificate (role relay, site Site) and the CA

	Bootstrap  bool
	JoinURL    string // a member's HTTPS base URL, e.g. https://10.0.0.5:8080
	JoinToken  string `json:"-"` // explicit site join token at bootstrap; generated when empty
	AdminToken string `json:"-"` // explicit admin token at bootstrap; generated when empty

	// Backpressure: refuse reports with 503 + Retry-After beyond these.
	OutboxQuotaBytes  uint64
	DiskWarnBytes     uint64 // free bytes on the data disk below which event 1094 is raised
	DiskCriticalBytes uint64 // free bytes below which new data is refused (event 1095)
	RetryAfter        time.Duration

	// Agent configuration served on GET /v1/config.
	InventoryInterval time.Duration
	SecurityInterval  time.Duration
	PollInterval      time.Duration

	// Distribution (catalog.go, cache.go, blobs.go).
	CatalogInterval time.Duration // how often the leader pulls the catalog (default 10s)
	DownloadRate    int64         // bytes/s for all package downloads of this node, 0 = unlimited
	MaxDownloads    int           // concurrent package downloads, beyond which 503 + Retry-After; 0 = unlimited
	BlobAddr        string        // optional plain-HTTP HOST:PORT serving /v1/blobs/ (hash-verified bytes; sendfile)
	CacheMaxBytes   int64         // LRU-evict blobs no active task needs beyond this; 0 = no cap

	// UplinkDownAfter is how long the uplink may be down before the leader
	// raises event 5003 (5004 when it reconnects); 0 means the default, 10 min.
	UplinkDownAfter time.Duration

	Raft raftnode.Config // timeouts and snapshot settings; identity fields are filled by New

	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// DefaultConfig returns the defaults of a branch appliance.
func DefaultConfig() Config {
	return Config{
		RaftAddr:          "127.0.0.1:8300",
		HTTPAddr:          "127.0.0.1:8080",
		UplinkTransport:   "quic",
		OutboxQuotaBytes:  4 << 30,
		DiskWarnBytes:     2 << 30,
		DiskCriticalBytes: 512 << 20,
		RetryAfter:        30 * time.Second,
		InventoryInterval: 24 * time.Hour,
		SecurityInterval:  time.Hour,
		PollInterval:      5 * time.Minute,
		CatalogInterval:   10 * time.Second,
		UplinkDownAfter:   10 * time.Minute,
		Raft:              raftnode.DefaultConfig(),
	}
}

// Validate checks the config and the relations between its fields.
func (c *Config) Validate() error {
	var errs []error
	if !siteRE.MatchString(c.Site) {
		errs = append(errs, fmt.Errorf("site %q: want 1-63 of a-z, 0-9 and '-'", c.Site))
	}
	if !siteRE.MatchString(c.NodeID) {
		errs = append(errs, fmt.Errorf("node id %q: want 1-63 of a-z, 0-9 and '-'", c.NodeID))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("data dir is required"))
	}
	if c.Bootstrap && c.JoinURL != "" {
		errs = append(errs, errors.New("bootstrap and join exclude each other"))
	}
	if len(c.Centrals) == 0 {
		errs = append(errs, errors.New("at least one central address is required"))
	}
	if c.UplinkTransport != "quic" && c.UplinkTransport != "tcp" {
		errs = append(errs, fmt.Errorf("uplink transport %q: want quic or tcp", c.UplinkTransport))
	}
	if c.PKI == nil {
		errs = append(errs, errors.New("a PKI bundle is required"))
	} else if id := c.PKI.Identity; id.Role != pki.RoleRelay || id.Site != c.Site {
		errs = append(errs, fmt.Errorf("certificate is for role %q site %q, want relay for site %q", id.Role, id.Site, c.Site))
	}
	if c.DiskCriticalBytes > c.DiskWarnBytes {
		errs = append(errs, fmt.Errorf("disk critical threshold (%d) above warning threshold (%d)", c.DiskCriticalBytes, c.DiskWarnBytes))
	}
	if c.RetryAfter < time.Second {
		errs = append(errs, fmt.Errorf("retry-after %s: want at least 1s", c.RetryAfter))
	}
	return errors.Join(errs...)
}
