package main

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/collector/agent"
)

func agentCommand() *cli.Command {
	relayFlags := []cli.Flag{
		&cli.StringFlag{Name: "relay", Required: true, Usage: "relay base URLs, comma-separated (failover in order)", EnvVars: []string{"EDGESYNC_RELAY"}},
		&cli.StringFlag{Name: "join-token", Required: true, Usage: "site join token (pins the site CA on first contact)", EnvVars: []string{"EDGESYNC_JOIN_TOKEN"}},
	}
	return &cli.Command{
		Name:  "agent",
		Usage: "run the endpoint agent, or simulate many",
		Subcommands: []*cli.Command{
			agentServiceCommand(), // agentsvccmd.go
			agentInventoryCommand(),
			{
				Name:      "run",
				Usage:     "collect this machine's inventory and report it to the site's relays",
				UsageText: "edgesync agent run --relay URL[,URL] --join-token T --state DIR [--once]",
				Flags: append(relayFlags,
					&cli.StringFlag{Name: "state", Value: agent.DefaultStateDir, Usage: "state directory (device ID, token, spool)", EnvVars: []string{"EDGESYNC_AGENT_STATE"}},
					&cli.BoolFlag{Name: "once", Usage: "collect once, send everything spooled, exit"},
					&cli.DurationFlag{Name: "task-timeout", Value: agent.DefaultTaskTimeout, Usage: "stop a package's install command after this long (cause: command stopped)"},
				),
				Action: func(c *cli.Context) error {
					a, err := agent.New(agent.Config{
						Relays:      splitList(c.String("relay")),
						JoinToken:   c.String("join-token"),
						StateDir:    c.String("state"),
						Once:        c.Bool("once"),
						Logger:      slog.Default(),
						TaskTimeout: c.Duration("task-timeout"),
					})
					if err != nil {
						return err
					}
					return a.Run(c.Context)
				},
			},
			{
				Name:      "reset-id",
				Usage:     "give this machine a new device ID (after cloning a disk image)",
				UsageText: "edgesync agent reset-id --state DIR",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "state", Value: agent.DefaultStateDir, Usage: "state directory", EnvVars: []string{"EDGESYNC_AGENT_STATE"}},
				},
				Action: func(c *cli.Context) error {
					id, err := agent.ResetID(c.String("state"))
					if err != nil {
						return err
					}
					fmt.Fprintln(c.App.Writer, id)
					return nil
				},
			},
			{
				Name:      "simulate",
				Usage:     "drive many simulated agents against a site (load tests, benchmarks)",
				UsageText: "edgesync agent simulate --relay URL[,URL] --join-token T --agents N --reports M [--record-bytes B] [--json]",
				Flags: append(relayFlags,
					&cli.IntFlag{Name: "agents", Value: 100, Usage: "simulated devices"},
					&cli.IntFlag{Name: "reports", Value: 10, Usage: "records each device sends"},
					&cli.IntFlag{Name: "record-bytes", Value: 1024, Usage: "approximate size of each record"},
					&cli.IntFlag{Name: "concurrency", Value: 0, Usage: "devices sending at once (0 = all)"},
					&cli.IntFlag{Name: "tasks", Usage: "then wait for and execute this many distribution tasks per device (download, verify, report)"},
					&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
				),
				Action: func(c *cli.Context) error {
					res, err := agent.Simulate(c.Context, agent.SimConfig{
						Relays:      splitList(c.String("relay")),
						JoinToken:   c.String("join-token"),
						Agents:      c.Int("agents"),
						Reports:     c.Int("reports"),
						RecordBytes: c.Int("record-bytes"),
						Concurrency: c.Int("concurrency"),
						Tasks:       c.Int("tasks"),
						Logger:      slog.Default(),
					})
					if c.Bool("json") {
						res.AckedByDevice = nil
						enc := json.NewEncoder(c.App.Writer)
						enc.SetIndent("", "  ")
						if eerr := enc.Encode(res); eerr != nil {
							return eerr
						}
					} else {
						fmt.Fprintf(c.App.Writer, "agents %d, sent %d, acknowledged %d, errors %d, %.0f records/s over %s\n",
							res.Agents, res.Sent, res.Acked, res.Errors, res.RecordsPerSec, res.Duration)
						if c.Int("tasks") > 0 {
							fmt.Fprintf(c.App.Writer, "tasks done %d, failed %d, downloaded %d bytes, %d resumes\n", res.TasksDone, res.TasksFailed, res.DownloadBytes, res.DownloadResume)
						}
					}
					return err
				},
			},
		},
	}
}
