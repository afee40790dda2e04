package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// Signals first, so a Ctrl-C during start-up still shuts down cleanly.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := newApp().RunContext(ctx, os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := ec.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "edgesync:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "edgesync:", err)
		os.Exit(1)
	}
}

var logFlags = []cli.Flag{
	&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"EDGESYNC_LOG_LEVEL"}},
	&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"EDGESYNC_LOG_FORMAT"}},
}

func newApp() *cli.App {
	return &cli.App{
		Name:    "edgesync",
		Usage:   "edge relay and offline-sync appliance for endpoint management",
		Version: version,
		Description: "Relay sites collect agent reports into a replicated outbox and sync them to a central\n" +
			"cluster over QUIC. Start with `edgesync demo` to see a whole deployment on 127.0.0.1.",
		Flags:                logFlags,
		EnableBashCompletion: true,
		Before:               setupLogging,
		Commands: []*cli.Command{
			applianceOnly(centralCommand()),
			applianceOnly(relayCommand()),
			agentCommand(),
			pkiCommand(),
			deviceCommand(),
			siteCommand(),
			clusterCommand(),
			applianceOnly(demoCommand()),
			eventCommand(),
			auditCommand(),
			dbCommand(),
			supportCommand(),
			offlineCommand(), // offlinecmd.go
			packageCommand(), // packagecmd.go
			taskCommand(),    // taskcmd.go
			cacheCommand(),   // cachecmd.go
			accountCommand(), // accountcmd.go
			tokenCommand(),   // tokencmd.go
		},
		OnUsageError: func(c *cli.Context, err error, isSubcommand bool) error {
			return cli.Exit(err.Error(), 2)
		},
	}
}

func setupLogging(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String("log-level"))); err != nil {
		return cli.Exit(fmt.Sprintf("--log-level %q: %v", c.String("log-level"), err), 2)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch strings.ToLower(c.String("log-format")) {
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	default:
		return cli.Exit(fmt.Sprintf("--log-format %q: want text or json", c.String("log-format")), 2)
	}
	slog.SetDefault(slog.New(h))
	return nil
}

// usageError reports bad flags with exit code 2.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
