package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/agent/service"
	"github.com/edgesync/edgesync/collector/probe"
)

// agentServiceCommand is `edgesync agent service ...`: the agent as a
// Windows service (collector/agent/service).
func agentServiceCommand() *cli.Command {
	state := &cli.StringFlag{Name: "state", Value: agent.DefaultStateDir, Usage: "agent state directory", EnvVars: []string{"EDGESYNC_AGENT_STATE"}}
	jsonFlag := &cli.BoolFlag{Name: "json", Usage: "print the result as JSON"}
	simple := func(name, usage string, fn func() error, done string) *cli.Command {
		return &cli.Command{Name: name, Usage: usage, UsageText: "edgesync agent service " + name,
			Action: func(c *cli.Context) error {
				if err := fn(); err != nil {
					return cli.Exit(err.Error(), 1)
				}
				fmt.Fprintln(c.App.Writer, done)
				return nil
			}}
	}
	return &cli.Command{
		Name:  "service",
		Usage: "install and control the agent as a Windows service (run as Administrator)",
		Subcommands: []*cli.Command{
			{
				Name:      "install",
				Usage:     "register the agent to start at boot and report to the given relays",
				UsageText: "edgesync agent service install --relay URL[,URL] --join-token T [--state DIR]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "relay", Required: true, Usage: "relay base URLs, comma-separated (failover in order)", EnvVars: []string{"EDGESYNC_RELAY"}},
					&cli.StringFlag{Name: "join-token", Required: true, Usage: "site join token", EnvVars: []string{"EDGESYNC_JOIN_TOKEN"}},
					state,
					&cli.DurationFlag{Name: "task-timeout", Value: agent.DefaultTaskTimeout, Usage: "stop a package's install command after this long"},
				},
				Action: func(c *cli.Context) error {
					exe, err := os.Executable()
					if err != nil {
						return err
					}
					dir, err := filepath.Abs(c.String("state"))
					if err != nil {
						return err
					}
					cfg := service.Config{Relays: splitList(c.String("relay")), JoinToken: c.String("join-token"), TaskTimeout: c.Duration("task-timeout")}
					if err := service.Install(exe, dir, cfg); err != nil {
						return cli.Exit(err.Error(), 1)
					}
					fmt.Fprintf(c.App.Writer, "installed %s (state %s); start it with `edgesync agent service start`\n", service.Name, dir)
					return nil
				},
			},
			simple("uninstall", "stop and remove the service (the state dir and device ID stay)", service.Uninstall, "uninstalled "+service.Name),
			simple("start", "start the service and wait until it runs", service.Start, service.Name+" is running"),
			simple("stop", "stop the service and wait until it has stopped", service.Stop, service.Name+" is stopped"),
			{
				Name:      "status",
				Usage:     "say whether the service is installed and running",
				UsageText: "edgesync agent service status [--json]",
				Flags:     []cli.Flag{jsonFlag},
				Action: func(c *cli.Context) error {
					st, err := service.Status()
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					if c.Bool("json") {
						return json.NewEncoder(c.App.Writer).Encode(st)
					}
					if !st.Installed {
						fmt.Fprintf(c.App.Writer, "%s: not installed\n", service.Name)
						return cli.Exit("", 3)
					}
					fmt.Fprintf(c.App.Writer, "%s: %s (pid %d, start %s)\n  %s\n", service.Name, st.State, st.PID, st.StartType, st.Command)
					return nil
				},
			},
			{
				Name:      "run",
				Usage:     "what the service manager starts (runs in the foreground when started by hand)",
				UsageText: "edgesync agent service run [--state DIR]",
				Hidden:    true,
				Flags: []cli.Flag{state,
					// The installed command line says --service: detecting the
					// service manager by its parent process (svc.IsWindowsService)
					// fails where services.exe does not run in session 0 (Wine).
					&cli.BoolFlag{Name: "service", Usage: "connect to the service manager (the installed command line sets it)"}},
				Action: func(c *cli.Context) error {
					dir := c.String("state")
					cfg, err := service.LoadConfig(dir)
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					run := func(ctx context.Context, log *slog.Logger) error {
						a, err := agent.New(agent.Config{Relays: cfg.Relays, JoinToken: cfg.JoinToken, StateDir: dir,
							Logger: log, TaskTimeout: cfg.TaskTimeout})
						if err != nil {
							return err
						}
						return a.Run(ctx)
					}
					if service.IsService() || c.Bool("service") {
						if err := service.RunService(run); !errors.Is(err, service.ErrNotService) {
							return err
						}
					}
					return run(c.Context, slog.Default())
				},
			},
		},
	}
}

// agentInventoryCommand prints what the agent would report for this PC.
func agentInventoryCommand() *cli.Command {
	return &cli.Command{
		Name:      "inventory",
		Usage:     "collect this machine's inventory and print it as JSON (nothing is sent)",
		UsageText: "edgesync agent inventory",
		Action: func(c *cli.Context) error {
			inv, err := probe.Collect(c.Context, probe.Options{})
			if err != nil {
				slog.Warn("Inventory partly collected", "err", err)
			}
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(inv)
		},
	}
}
