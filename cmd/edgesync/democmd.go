package main

import (
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/localnet"
)

func demoCommand() *cli.Command {
	d := localnet.DefaultDemoConfig()
	return &cli.Command{
		Name:  "demo",
		Usage: "run a central node, a 3-node relay site and simulated agents on 127.0.0.1",
		Description: "Everything runs in this process with real Raft, Badger, QUIC and HTTPS. The admin URL,\n" +
			"token and CA are printed so the other commands can be tried against it. Ctrl-C stops it.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Usage: "data directory (default: a fresh temporary directory)"},
			&cli.StringFlag{Name: "site", Value: d.Site, Usage: "relay site name"},
			&cli.IntFlag{Name: "agents", Value: d.Agents, Usage: "simulated agents"},
			&cli.IntFlag{Name: "reports", Value: d.Reports, Usage: "records each simulated agent sends"},
			&cli.IntFlag{Name: "record-bytes", Value: d.RecordBytes, Usage: "size of each simulated record"},
			&cli.DurationFlag{Name: "every", Value: d.Every, Usage: "summary interval"},
			&cli.DurationFlag{Name: "duration", Usage: "stop after this long (default: until Ctrl-C)"},
		},
		Action: func(c *cli.Context) error {
			cfg := localnet.DefaultDemoConfig()
			cfg.Dir = c.String("dir")
			cfg.Site = c.String("site")
			cfg.Agents = c.Int("agents")
			cfg.Reports = c.Int("reports")
			cfg.RecordBytes = c.Int("record-bytes")
			cfg.Every = c.Duration("every")
			cfg.Duration = c.Duration("duration")
			if c.String("log-level") == "debug" {
				cfg.Logger = slog.Default()
			}
			return localnet.RunDemo(c.Context, cfg, c.App.Writer)
		},
	}
}
