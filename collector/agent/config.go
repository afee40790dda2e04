package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

// Defaults.
const (
	DefaultInventoryInterval = time.Hour
	DefaultPollInterval      = 5 * time.Minute
	DefaultBatchSize         = 100
	DefaultMaxBatchBytes     = 4 << 20
	DefaultMaxSpoolBytes     = 64 << 20
	DefaultOnceAttempts      = 5
	DefaultMaxRetryWait      = 5 * time.Minute
)

// Config configures an Agent.
type Config struct {
	// Relays are the base URLs of the site's relay nodes
	// ("https://relay1:8080").
	Relays []string
	// JoinToken is needed for the first enrollment (and re-enrollment
	// after the relay forgot the device token).
	JoinToken string `json:"-"`
	// StateDir holds the identity, the pinned CA, the seq and the spool.
	StateDir string
	// Once collects one inventory, sends everything and returns; an
	// error if not every record was acknowledged.
	Once bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Probe collects the inventory; nil means probe.Collect on this host.
	Probe func(ctx context.Context) (record.Inventory, error)
	// Now is the clock for collected_at; nil means time.Now.
	Now func() time.Time

	// BatchSize caps records per report (default 100).
	BatchSize int
	// MaxBatchBytes caps a report body before compression (default 4 MiB).
	MaxBatchBytes int
	// MaxSpoolBytes caps the spool (default 64 MiB).
	MaxSpoolBytes int64
	// OnceAttempts bounds send rounds in Once mode (default 5).
	OnceAttempts int
	// MaxRetryWait caps any wait between attempts, Retry-After included
	// (default 5 min).
	MaxRetryWait time.Duration
	// TaskTimeout bounds an install command (default 30 min; tasks.go).
	TaskTimeout time.Duration
}

// DefaultConfig returns a Config with the defaults filled in.
func DefaultConfig() Config {
	return Config{
		BatchSize:     DefaultBatchSize,
		MaxBatchBytes: DefaultMaxBatchBytes,
		MaxSpoolBytes: DefaultMaxSpoolBytes,
		OnceAttempts:  DefaultOnceAttempts,
		MaxRetryWait:  DefaultMaxRetryWait,
	}
}

// Validate checks the config. Zero sizes are allowed and take defaults.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Relays) == 0 {
		errs = append(errs, errors.New("agent: no relays configured"))
	}
	if c.StateDir == "" {
		errs = append(errs, errors.New("agent: state dir is required"))
	}
	if c.BatchSize < 0 || c.MaxBatchBytes < 0 || c.MaxSpoolBytes < 0 || c.OnceAttempts < 0 || c.MaxRetryWait < 0 {
		errs = append(errs, errors.New("agent: sizes, attempts and waits must not be negative"))
	}
	if c.MaxSpoolBytes > 0 && c.MaxSpoolBytes < record.DefaultMaxRecordBytes {
		errs = append(errs, errors.New("agent: spool cap must hold at least one maximum-size record"))
	}
	return errors.Join(errs...)
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.BatchSize == 0 {
		c.BatchSize = d.BatchSize
	}
	if c.MaxBatchBytes == 0 {
		c.MaxBatchBytes = d.MaxBatchBytes
	}
	if c.MaxSpoolBytes == 0 {
		c.MaxSpoolBytes = d.MaxSpoolBytes
	}
	if c.OnceAttempts == 0 {
		c.OnceAttempts = d.OnceAttempts
	}
	if c.MaxRetryWait == 0 {
		c.MaxRetryWait = d.MaxRetryWait
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
