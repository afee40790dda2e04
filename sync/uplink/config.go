package uplink

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/quic-go/quic-go"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/wire"
)

// Transports.
const (
	TransportQUIC = "quic"
	TransportTCP  = "tcp"
)

// Config configures an Uplink.
type Config struct {
	Site string
	Node string
	// Version is the relay software version reported in Hello.
	Version string
	// Centrals are host:port addresses tried in order on every (re)connect.
	Centrals []string
	// Transport is TransportQUIC (default) or TransportTCP, the TCP+TLS fallback for networks
	// that block UDP.
	Transport string
	// TLS is the client config (pki.Bundle.ClientTLS()); New clones it and sets NextProtos.
	TLS *tls.Config `json:"-"`
	// RateLimit caps upload bytes per second (0 = unlimited). Central may lower it per session.
	RateLimit int64
	// BatchRecords and BatchBytes bound one batch (uncompressed). Central commits a batch as
	// Raft entries of up to 448 KiB proposed together, so they share its fsyncs. Larger
	// batches than the default 1024 records / 1 MiB raised the relay's peak RSS (4 MiB:
	// +27 MB anonymous under the ingest bench) without a drain gain we could tell from
	// noise (docs/benchmarks.md).
	BatchRecords int
	BatchBytes   int
	// MaxInFlight is how many batches may await their ack (pipelining).
	MaxInFlight int
	// MinBackoff and MaxBackoff bound the jittered exponential reconnect delay.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// PollInterval is how often an idle uplink looks at the outbox without a Kick.
	PollInterval time.Duration
	// StatusInterval is how often outbox stats and a ping go to central.
	StatusInterval time.Duration
	Logger         *slog.Logger          `json:"-"`
	Registerer     prometheus.Registerer `json:"-"`
}

// DefaultConfig returns a config with every tunable set; callers fill Site, Node, Centrals, TLS.
func DefaultConfig() Config {
	return Config{
		Transport:      TransportQUIC,
		BatchRecords:   1024,
		BatchBytes:     1 << 20,
		MaxInFlight:    4,
		MinBackoff:     500 * time.Millisecond,
		MaxBackoff:     time.Minute,
		PollInterval:   time.Second,
		StatusInterval: 10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Transport == "" {
		c.Transport = d.Transport
	}
	if c.BatchRecords == 0 {
		c.BatchRecords = d.BatchRecords
	}
	if c.BatchBytes == 0 {
		c.BatchBytes = d.BatchBytes
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.MinBackoff == 0 {
		c.MinBackoff = d.MinBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = max(d.MaxBackoff, c.MinBackoff)
	}
	if c.PollInterval == 0 {
		c.PollInterval = d.PollInterval
	}
	if c.StatusInterval == 0 {
		c.StatusInterval = d.StatusInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the config.
func (c *Config) Validate() error {
	switch {
	case !pki.ValidName(c.Site):
		return fmt.Errorf("uplink: site %q is not a valid name", c.Site)
	case !pki.ValidName(c.Node):
		return fmt.Errorf("uplink: node %q is not a valid name", c.Node)
	case len(c.Centrals) == 0:
		return errors.New("uplink: at least one central address is required")
	case c.Transport != TransportQUIC && c.Transport != TransportTCP:
		return fmt.Errorf("uplink: transport %q, want %q or %q", c.Transport, TransportQUIC, TransportTCP)
	case c.TLS == nil:
		return errors.New("uplink: TLS is required")
	case c.RateLimit < 0:
		return errors.New("uplink: RateLimit must not be negative")
	case c.BatchRecords <= 0 || c.BatchRecords > wire.MaxBatchRecords:
		return fmt.Errorf("uplink: BatchRecords %d out of range 1..%d", c.BatchRecords, wire.MaxBatchRecords)
	case c.BatchBytes <= 0 || c.BatchBytes > wire.MaxFrameSize/2:
		return fmt.Errorf("uplink: BatchBytes %d out of range 1..%d", c.BatchBytes, wire.MaxFrameSize/2)
	case c.MaxInFlight <= 0:
		return errors.New("uplink: MaxInFlight must be positive")
	case c.MinBackoff <= 0 || c.MaxBackoff < c.MinBackoff:
		return fmt.Errorf("uplink: backoff %s..%s is invalid", c.MinBackoff, c.MaxBackoff)
	case c.PollInterval <= 0 || c.StatusInterval <= 0:
		return errors.New("uplink: PollInterval and StatusInterval must be positive")
	}
	return nil
}

// quicConfig is the QUIC configuration for the link. The receive windows are
// sized for a WAN's bandwidth-delay product rather than quic-go's defaults
// (512 KiB initial stream window, growing with the RTT): a relay fetching a
// package over 100 Mbit/s at 200 ms RTT needs 2.5 MB in flight, 1 Gbit/s at
// 50 ms 6 MB. They start large so a fetch is not held back while the
// auto-tuning ramps up, and are bounded per connection; a relay holds at most
// two connections (uplink, fetcher). quic-go sets the UDP socket buffers
// (7 MiB, or logs once that the OS refused; see docs/runbook.md).
var quicConfig = &quic.Config{
	MaxIdleTimeout:                 30 * time.Second,
	KeepAlivePeriod:                10 * time.Second,
	InitialStreamReceiveWindow:     4 << 20,
	MaxStreamReceiveWindow:         16 << 20,
	InitialConnectionReceiveWindow: 8 << 20,
	MaxConnectionReceiveWindow:     24 << 20,
}

// Per-operation limits.
const (
	dialTimeout  = 10 * time.Second
	helloTimeout = 15 * time.Second
	ackTimeout   = 30 * time.Second
	writeTimeout = 30 * time.Second
	// minIdleTimeout is the least time a session may go without hearing from central.
	minIdleTimeout = 30 * time.Second
)
