package raftnode

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a Node. Start from DefaultConfig and call Validate (New
// does so too).
type Config struct {
	// NodeID is the raft server ID. Must be unique and stable across restarts.
	NodeID string
	// Dir is the data directory. raftnode uses Dir/raft (log and stable store,
	// Badger, SyncWrites=true), Dir/state-<n> (FSM state, Badger) with
	// Dir/state.current naming the live one, and Dir/snapshots.
	Dir string
	// RaftAddr is the TCP listen address for raft, HOST:PORT. When its host
	// is a specific IP, outbound raft connections leave from that IP too, so
	// a firewall (or a fault-injecting proxy) can tell peers apart by source.
	// Ignored when Layer is set.
	RaftAddr string
	// RaftAdvertise is the address peers dial, when it differs from RaftAddr
	// (NAT, a proxy in front of the node). Empty means RaftAddr.
	RaftAdvertise string
	// ClusterID is the ID of the cluster the data dir belongs to, "" when
	// not known yet. Members answer it to joiners and refuse a joiner of
	// another cluster. SetClusterID changes it.
	ClusterID string
	// HTTPAddr is this node's HTTP(S) base URL, e.g. "https://10.0.0.1:8080".
	// It is replicated so followers can forward to the leader.
	HTTPAddr string
	// TLS, if non-nil, enables mutual TLS for the raft transport and for the
	// HTTP client used for forwarding and joining. It must have Certificates,
	// RootCAs and ClientCAs set. nil means plain TCP/HTTP (tests).
	TLS *tls.Config `json:"-"`
	// Layer, if non-nil, replaces the TCP/TLS listener created from RaftAddr
	// (tests, fault injection). The Node closes it on Close.
	Layer Layer `json:"-"`
	// Logger receives raftnode, raft and Badger logs. nil means slog.Default().
	Logger *slog.Logger `json:"-"`
	// Registerer, if non-nil, receives the package's Prometheus metrics.
	Registerer prometheus.Registerer `json:"-"`

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	SnapshotInterval   time.Duration
	SnapshotThreshold  uint64
	TrailingLogs       uint64
	MaxAppendEntries   int

	// ApplyTimeout bounds how long a Propose without a ctx deadline waits for
	// raft to accept the command (raft's enqueue timeout).
	ApplyTimeout time.Duration
	// ValueLogGCInterval is how often Badger value-log GC runs on both DBs.
	ValueLogGCInterval time.Duration
	// MetaCheckInterval is how often the node re-checks that its replicated
	// HTTP address is current (it also checks on every leader change).
	MetaCheckInterval time.Duration

	// InmemLogStore makes raft use raft.NewInmemStore for log and stable
	// storage instead of Badger. Tests only: nothing survives a restart.
	InmemLogStore bool
}

// DefaultConfig returns settings for a LAN cluster of small appliances.
func DefaultConfig() Config {
	return Config{
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		SnapshotInterval:   2 * time.Minute,
		SnapshotThreshold:  8192,
		TrailingLogs:       10240,
		// Entries are up to 512 KiB (DESIGN §6); 32 of them bound one
		// AppendEntries RPC to 16 MiB of memory on both ends.
		MaxAppendEntries:   32,
		ApplyTimeout:       10 * time.Second,
		ValueLogGCInterval: time.Minute,
		MetaCheckInterval:  5 * time.Second,
	}
}

// Validate checks the fields and their relations.
func (c *Config) Validate() error {
	var errs []error
	if c.NodeID == "" {
		errs = append(errs, errors.New("NodeID is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("Dir is required"))
	}
	if c.Layer == nil && c.RaftAddr == "" {
		errs = append(errs, errors.New("RaftAddr is required"))
	}
	if c.HTTPAddr == "" {
		errs = append(errs, errors.New("HTTPAddr is required"))
	} else if u, err := url.Parse(c.HTTPAddr); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("HTTPAddr %q must be an http(s) base URL", c.HTTPAddr))
	}
	if c.TLS != nil && len(c.TLS.Certificates) == 0 && c.TLS.GetCertificate == nil && c.TLS.GetClientCertificate == nil {
		errs = append(errs, errors.New("TLS needs a certificate for mutual TLS"))
	}
	if c.HeartbeatTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("HeartbeatTimeout (%s) is too low", c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("ElectionTimeout (%s) is too low", c.ElectionTimeout))
	}
	if c.LeaderLeaseTimeout < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("LeaderLeaseTimeout (%s) is too low", c.LeaderLeaseTimeout))
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("LeaderLeaseTimeout (%s) cannot be larger than HeartbeatTimeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout))
	}
	if c.ElectionTimeout < c.HeartbeatTimeout {
		errs = append(errs, fmt.Errorf("ElectionTimeout (%s) must be equal or greater than HeartbeatTimeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout))
	}
	if c.CommitTimeout < time.Millisecond {
		errs = append(errs, fmt.Errorf("CommitTimeout (%s) is too low", c.CommitTimeout))
	}
	if c.SnapshotInterval < 5*time.Millisecond {
		errs = append(errs, fmt.Errorf("SnapshotInterval (%s) is too low", c.SnapshotInterval))
	}
	if c.SnapshotThreshold == 0 {
		errs = append(errs, errors.New("SnapshotThreshold must be positive"))
	}
	if c.MaxAppendEntries <= 0 || c.MaxAppendEntries > 1024 {
		errs = append(errs, fmt.Errorf("MaxAppendEntries (%d) must be in 1..1024", c.MaxAppendEntries))
	}
	if c.ApplyTimeout <= 0 {
		errs = append(errs, errors.New("ApplyTimeout must be positive"))
	}
	if c.ValueLogGCInterval <= 0 {
		errs = append(errs, errors.New("ValueLogGCInterval must be positive"))
	}
	if c.MetaCheckInterval <= 0 {
		errs = append(errs, errors.New("MetaCheckInterval must be positive"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("raftnode config: %w", err)
	}
	return nil
}
