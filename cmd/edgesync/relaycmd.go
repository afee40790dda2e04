package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/relay"
)

func relayCommand() *cli.Command {
	d := relay.DefaultConfig()
	return &cli.Command{
		Name:  "relay",
		Usage: "run a relay node of a branch site",
		Subcommands: []*cli.Command{{
			Name:  "run",
			Usage: "run a relay node (its first start bootstraps a new site or joins one; later starts need neither flag)",
			UsageText: "edgesync relay run --data DIR --site SITE --node-id ID --raft-addr HOST:PORT --http-addr HOST:PORT\n" +
				"   --central HOST:PORT[,HOST:PORT] --pki DIR [--bootstrap | --join URL]\n\n" +
				"--bootstrap or --join is needed only on the first start of an empty data directory. A data directory\n" +
				"with state restarts in its site without either; --bootstrap again on the node that bootstrapped is\n" +
				"harmless, and flags that name another site, cluster or node than the data directory's cluster.json\n" +
				"are refused.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data", Required: true, Usage: "data directory", EnvVars: []string{"EDGESYNC_RELAY_DATA"}},
				&cli.StringFlag{Name: "site", Required: true, Usage: "site ID (must match the certificate)", EnvVars: []string{"EDGESYNC_RELAY_SITE"}},
				&cli.StringFlag{Name: "node-id", Required: true, Usage: "node ID, unique in the site", EnvVars: []string{"EDGESYNC_RELAY_NODE_ID"}},
				&cli.StringFlag{Name: "raft-addr", Value: d.RaftAddr, Usage: "Raft listen address (outbound raft connections leave from its IP when it is a specific one)", EnvVars: []string{"EDGESYNC_RELAY_RAFT_ADDR"}},
				&cli.StringFlag{Name: "raft-advertise", Usage: "address raft peers dial, when not --raft-addr (NAT, a proxy in front of the node)", EnvVars: []string{"EDGESYNC_RELAY_RAFT_ADVERTISE"}},
				&cli.StringFlag{Name: "http-addr", Value: d.HTTPAddr, Usage: "HTTPS address for agents, peers and admins", EnvVars: []string{"EDGESYNC_RELAY_HTTP_ADDR"}},
				&cli.StringFlag{Name: "central", Required: true, Usage: "central sync addresses, comma-separated, tried in order", EnvVars: []string{"EDGESYNC_RELAY_CENTRAL"}},
				&cli.StringFlag{Name: "pki", Required: true, Usage: "PKI directory with ca.crt and this node's certificate", EnvVars: []string{"EDGESYNC_PKI"}},
				&cli.StringFlag{Name: "cert-name", Usage: "certificate name in --pki (default: the node ID)"},
				&cli.BoolFlag{Name: "bootstrap", Usage: "first start only: found a new site with this node as its first member (harmless again on that node; refused on one that joined)", EnvVars: []string{"EDGESYNC_RELAY_BOOTSTRAP"}},
				&cli.StringFlag{Name: "join", Usage: "first start only: HTTPS URL of a member of the site to join (refused if it is of another cluster than the data directory)", EnvVars: []string{"EDGESYNC_RELAY_JOIN"}},
				&cli.StringFlag{Name: "join-token", Usage: "site join token to use at bootstrap (default: generated)", EnvVars: []string{"EDGESYNC_JOIN_TOKEN"}},
				&cli.StringFlag{Name: "admin-token", Usage: "admin token to use at bootstrap (default: generated)", EnvVars: []string{"EDGESYNC_ADMIN_TOKEN"}},
				&cli.StringFlag{Name: "uplink-transport", Value: d.UplinkTransport, Usage: "quic, or tcp where UDP is blocked"},
				&cli.StringFlag{Name: "uplink-rate", Value: "0", Usage: "uplink rate cap in bytes/s (e.g. 2MB), 0 = none"},
				&cli.StringFlag{Name: "outbox-quota", Value: humanize.IBytes(d.OutboxQuotaBytes), Usage: "refuse reports (503) past this outbox size"},
				&cli.StringFlag{Name: "disk-warn", Value: humanize.IBytes(d.DiskWarnBytes), Usage: "raise event 1094 below this free disk space"},
				&cli.StringFlag{Name: "disk-critical", Value: humanize.IBytes(d.DiskCriticalBytes), Usage: "refuse new data (event 1095) below this free disk space"},
				&cli.DurationFlag{Name: "inventory-interval", Value: d.InventoryInterval, Usage: "agent inventory report interval"},
				&cli.DurationFlag{Name: "poll-interval", Value: d.PollInterval, Usage: "agent polling interval"},
				&cli.StringFlag{Name: "download-rate", Value: "0", Usage: "package download cap of this node in bytes/s (e.g. 20MB), 0 = none"},
				&cli.IntFlag{Name: "max-downloads", Usage: "concurrent package downloads, beyond which agents get 503 + Retry-After; 0 = no cap"},
				&cli.StringFlag{Name: "blob-addr", Usage: "also serve /v1/blobs/ over plain HTTP on HOST:PORT (hash-verified bytes, sendfile)"},
				&cli.StringFlag{Name: "cache-max", Value: "0", Usage: "evict cached blobs no active task needs beyond this size, 0 = no cap"},
				&cli.DurationFlag{Name: "catalog-interval", Value: d.CatalogInterval, Usage: "how often the leader pulls packages and tasks from central"},
				&cli.DurationFlag{Name: "uplink-down-after", Value: d.UplinkDownAfter, Usage: "raise event 5003 when the uplink to central has been down this long (5004 when it is back)"},
				memoryLimitFlag("160MiB"),
			},
			Action: runRelay,
		}, rejoinCommand("relay")}, // rejoincmd.go
	}
}

func runRelay(c *cli.Context) error {
	if err := applyMemoryLimit(c); err != nil {
		return err
	}
	cfg := relay.DefaultConfig()
	cfg.DataDir = c.String("data")
	cfg.Site = c.String("site")
	cfg.NodeID = c.String("node-id")
	cfg.RaftAddr = c.String("raft-addr")
	cfg.RaftAdvertise = c.String("raft-advertise")
	cfg.HTTPAddr = c.String("http-addr")
	cfg.Centrals = splitList(c.String("central"))
	cfg.Bootstrap = c.Bool("bootstrap")
	cfg.JoinURL = c.String("join")
	cfg.JoinToken = c.String("join-token")
	cfg.AdminToken = c.String("admin-token")
	cfg.UplinkTransport = c.String("uplink-transport")
	cfg.InventoryInterval = c.Duration("inventory-interval")
	cfg.PollInterval = c.Duration("poll-interval")
	sizes := []struct {
		flag string
		dst  *uint64
	}{{"outbox-quota", &cfg.OutboxQuotaBytes}, {"disk-warn", &cfg.DiskWarnBytes}, {"disk-critical", &cfg.DiskCriticalBytes}}
	for _, s := range sizes {
		v, err := humanize.ParseBytes(c.String(s.flag))
		if err != nil {
			return usageError("--%s %q: %v", s.flag, c.String(s.flag), err)
		}
		*s.dst = v
	}
	rate, err := humanize.ParseBytes(c.String("uplink-rate"))
	if err != nil {
		return usageError("--uplink-rate %q: %v", c.String("uplink-rate"), err)
	}
	cfg.UplinkRate = int64(rate)
	for _, s := range []struct {
		flag string
		dst  *int64
	}{{"download-rate", &cfg.DownloadRate}, {"cache-max", &cfg.CacheMaxBytes}} {
		v, err := humanize.ParseBytes(c.String(s.flag))
		if err != nil {
			return usageError("--%s %q: %v", s.flag, c.String(s.flag), err)
		}
		*s.dst = int64(v)
	}
	if cfg.MaxDownloads = c.Int("max-downloads"); cfg.MaxDownloads < 0 {
		return usageError("--max-downloads must not be negative")
	}
	cfg.BlobAddr = c.String("blob-addr")
	cfg.CatalogInterval = c.Duration("catalog-interval")
	if cfg.UplinkDownAfter = c.Duration("uplink-down-after"); cfg.UplinkDownAfter <= 0 {
		return usageError("--uplink-down-after must be positive")
	}
	name := c.String("cert-name")
	if name == "" {
		name = cfg.NodeID
	}
	if cfg.PKI, err = pki.Load(c.String("pki"), name); err != nil {
		return fmt.Errorf("load certificate %q: %w", name, err)
	}
	cfg.Logger = slog.Default()
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	n, err := relay.New(cfg)
	if err != nil {
		return err
	}
	if tok := n.JoinToken(); tok != "" {
		fmt.Fprintf(c.App.Writer, "site join token (also in %s/%s):\n  %s\n", cfg.DataDir, relay.JoinTokenFile, tok)
		fmt.Fprintf(c.App.Writer, "admin token in %s/%s\n", cfg.DataDir, relay.AdminTokenFile)
	}
	return n.Run(c.Context)
}

// memoryLimitFlag sets the Go runtime's soft memory limit. Badger's tables
// and memtables live on the Go heap; without a limit the collector lets the
// heap grow to twice the live set, which is most of a small appliance's RAM.
func memoryLimitFlag(def string) cli.Flag {
	return &cli.StringFlag{Name: "memory-limit", Value: def, EnvVars: []string{"EDGESYNC_MEMORY_LIMIT"},
		Usage: "soft limit for the Go heap (GOMEMLIMIT); 0 = none"}
}

func applyMemoryLimit(c *cli.Context) error {
	v, err := humanize.ParseBytes(c.String("memory-limit"))
	if err != nil {
		return usageError("--memory-limit %q: %v", c.String("memory-limit"), err)
	}
	if v > 0 && os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(int64(v))
	}
	return nil
}
