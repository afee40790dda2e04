package main

import (
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/pki"
)

func centralCommand() *cli.Command {
	d := central.DefaultConfig()
	return &cli.Command{
		Name:  "central",
		Usage: "run a node of the central manager cluster",
		Subcommands: []*cli.Command{{
			Name:  "run",
			Usage: "run a central node (its first start bootstraps a new cluster or joins one; later starts need neither flag)",
			UsageText: "edgesync central run --data DIR --node-id ID --raft-addr HOST:PORT --sync-addr HOST:PORT\n" +
				"   --http-addr HOST:PORT --pki DIR [--bootstrap | --join URL]\n\n" +
				"--bootstrap or --join is needed only on the first start of an empty data directory. A data directory\n" +
				"with state restarts in its cluster without either; --bootstrap again on the node that bootstrapped is\n" +
				"harmless, and flags that name another cluster or node than the data directory's cluster.json are\n" +
				"refused.",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "data", Required: true, Usage: "data directory", EnvVars: []string{"EDGESYNC_CENTRAL_DATA"}},
				&cli.StringFlag{Name: "node-id", Required: true, Usage: "node ID, unique in the cluster", EnvVars: []string{"EDGESYNC_CENTRAL_NODE_ID"}},
				&cli.StringFlag{Name: "raft-addr", Value: d.RaftAddr, Usage: "Raft listen address (outbound raft connections leave from its IP when it is a specific one)", EnvVars: []string{"EDGESYNC_CENTRAL_RAFT_ADDR"}},
				&cli.StringFlag{Name: "raft-advertise", Usage: "address raft peers dial, when not --raft-addr (NAT, a proxy in front of the node)", EnvVars: []string{"EDGESYNC_CENTRAL_RAFT_ADVERTISE"}},
				&cli.StringFlag{Name: "sync-addr", Value: d.SyncAddr, Usage: "UDP address for relay uplinks over QUIC", EnvVars: []string{"EDGESYNC_CENTRAL_SYNC_ADDR"}},
				&cli.StringFlag{Name: "sync-tcp-addr", Usage: "also take uplinks over TCP+TLS on this address (sites that block UDP)", EnvVars: []string{"EDGESYNC_CENTRAL_SYNC_TCP_ADDR"}},
				&cli.StringFlag{Name: "http-addr", Value: d.HTTPAddr, Usage: "HTTPS address for the admin API and /metrics", EnvVars: []string{"EDGESYNC_CENTRAL_HTTP_ADDR"}},
				&cli.StringFlag{Name: "pki", Required: true, Usage: "PKI directory with ca.crt and this node's certificate", EnvVars: []string{"EDGESYNC_PKI"}},
				&cli.StringFlag{Name: "cert-name", Usage: "certificate name in --pki (default: the node ID)"},
				&cli.BoolFlag{Name: "bootstrap", Usage: "first start only: found a new cluster with this node as its first member (harmless again on that node; refused on one that joined)", EnvVars: []string{"EDGESYNC_CENTRAL_BOOTSTRAP"}},
				&cli.StringFlag{Name: "join", Usage: "first start only: HTTPS URL of a member of the cluster to join (refused if it is of another cluster than the data directory)", EnvVars: []string{"EDGESYNC_CENTRAL_JOIN"}},
				&cli.StringFlag{Name: "admin-token", Usage: "admin token to use at bootstrap (default: generated)", EnvVars: []string{"EDGESYNC_ADMIN_TOKEN"}},
				memoryLimitFlag("1GiB"),
			},
			Action: runCentral,
		}, rejoinCommand("central")}, // rejoincmd.go
	}
}

func runCentral(c *cli.Context) error {
	if err := applyMemoryLimit(c); err != nil {
		return err
	}
	cfg := central.DefaultConfig()
	cfg.DataDir = c.String("data")
	cfg.NodeID = c.String("node-id")
	cfg.RaftAddr = c.String("raft-addr")
	cfg.RaftAdvertise = c.String("raft-advertise")
	cfg.SyncAddr = c.String("sync-addr")
	cfg.SyncTCPAddr = c.String("sync-tcp-addr")
	cfg.HTTPAddr = c.String("http-addr")
	cfg.Bootstrap = c.Bool("bootstrap")
	cfg.JoinURL = c.String("join")
	cfg.AdminToken = c.String("admin-token")
	name := c.String("cert-name")
	if name == "" {
		name = cfg.NodeID
	}
	var err error
	if cfg.PKI, err = pki.Load(c.String("pki"), name); err != nil {
		return fmt.Errorf("load certificate %q: %w", name, err)
	}
	cfg.Logger = slog.Default()
	if err := cfg.Validate(); err != nil {
		return usageError("%v", err)
	}
	n, err := central.New(cfg)
	if err != nil {
		return err
	}
	if n.AdminToken() != "" {
		fmt.Fprintf(c.App.Writer, "admin API %s, token in %s/%s\n", n.URL(), cfg.DataDir, central.AdminTokenFile)
	}
	return n.Run(c.Context)
}
