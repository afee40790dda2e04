package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/internal/csvx"
	"github.com/edgesync/edgesync/offline"
)

func offlineCommand() *cli.Command {
	return &cli.Command{
		Name:  "offline",
		Usage: "offline-managed computers: collection kits, USB collection, verify and import",
		Subcommands: []*cli.Command{
			{
				Name:  "kit",
				Usage: "collection kits",
				Subcommands: []*cli.Command{{
					Name:      "create",
					Usage:     "ask central for a signed kit and write it with the collectors for Windows and Linux onto a medium",
					UsageText: "edgesync offline kit create --out DIR [--platform windows,linux] [--windows-binary PATH] [--linux-binary PATH] [--name NAME] [--encrypt] [--settings FILE]",
					Description: "The medium gets EDGESYNC\\kit.json, EDGESYNC\\Data and, per platform, the collector and its launcher:\n" +
						"edgesync.exe and collect.cmd for Windows, edgesync and collect.sh for Linux. The binary for the platform\n" +
						"kit create runs on is this one; the other comes from --windows-binary / --linux-binary, or from\n" +
						"bin/windows-amd64/edgesync.exe as `make build-windows` writes it (next to this binary or under the\n" +
						"current directory).",
					Flags: append([]cli.Flag{
						&cli.StringFlag{Name: "out", Required: true, Usage: "medium root (EDGESYNC/ is created in it)"},
						&cli.StringFlag{Name: "platform", Value: "windows,linux", Usage: "platforms the medium carries a collector for: windows, linux or both"},
						&cli.StringFlag{Name: "windows-binary", Usage: "edgesync.exe to put on the medium (default: this binary on Windows, else bin/windows-amd64/edgesync.exe)"},
						&cli.StringFlag{Name: "linux-binary", Usage: "Linux edgesync to put on the medium (default: this binary on Linux)"},
						&cli.StringFlag{Name: "name", Usage: "kit name"},
						&cli.BoolFlag{Name: "encrypt", Usage: "encrypt collected records to central (age X25519)"},
						&cli.StringFlag{Name: "settings", Usage: "JSON file of collection settings (custom fields, form questions, parts); changing them bumps the generation"},
					}, clientFlags...),
					Action: kitCreate,
				}},
			},
			{
				Name:      "collect",
				Usage:     "collect this computer's inventory into one sealed record on the medium",
				UsageText: "edgesync offline collect --kit DIR [--no-form] [--silent] [--skip-software] [--state DIR]",
				Description: "Exit codes (after the product's getinv.vbs): 0 success; 10001 form cancelled; 10011 bad arguments;\n" +
					"10031 another collection is running on this medium; 10051 medium path too long; 10101 collection failed;\n" +
					"10102 medium not writable; 10105 kit invalid or tampered; 10106 device ID or key on this machine corrupt.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "kit", Usage: "medium root or its EDGESYNC folder (default: next to this binary)"},
					&cli.BoolFlag{Name: "no-form", Usage: "do not ask the end-user form questions (/u)"},
					&cli.BoolFlag{Name: "silent", Usage: "no output and no form (/silent)"},
					&cli.BoolFlag{Name: "skip-software", Usage: "skip the installed-software search (/s)"},
					&cli.StringFlag{Name: "state", Value: defaultOfflineState(), Usage: "device ID and key directory: the agent's state dir when an agent is installed", EnvVars: []string{"EDGESYNC_AGENT_STATE"}},
				},
				Action: func(c *cli.Context) error {
					kit := c.String("kit")
					if kit == "" {
						exe, err := os.Executable()
						if err != nil {
							return cli.Exit(err.Error(), offline.ExitUsage)
						}
						kit = filepath.Dir(exe)
					}
					_, err := offline.Collect(c.Context, offline.CollectConfig{KitDir: kit, StateDir: c.String("state"),
						NoForm: c.Bool("no-form"), Silent: c.Bool("silent"), SkipSoftware: c.Bool("skip-software"), In: os.Stdin, Out: c.App.Writer})
					var ee *offline.ExitError
					if errors.As(err, &ee) {
						msg := ee.Err.Error()
						if c.Bool("silent") {
							msg = ""
						}
						return cli.Exit(msg, ee.Code)
					}
					return err
				},
			},
			{
				Name:      "verify",
				Usage:     "check every record's hash, signature and kit binding without a server",
				UsageText: "edgesync offline verify PATH [--json]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON"}},
				Action: func(c *cli.Context) error {
					path, err := mediumArg(c)
					if err != nil {
						return err
					}
					rep, err := offline.Verify(path, offline.Limits{})
					if err != nil {
						return err
					}
					return finishReport(c, rep)
				},
			},
			{
				Name:      "import",
				Usage:     "send a medium's records to a relay or central; the server verifies and applies them",
				UsageText: "edgesync offline import PATH --server URL [--dry-run] [--json] [--strict]",
				Flags: append([]cli.Flag{
					&cli.BoolFlag{Name: "dry-run", Usage: "report outcomes, change nothing"},
					&cli.BoolFlag{Name: "strict", Usage: "reject records from an older kit generation"},
					&cli.StringFlag{Name: "staging", Usage: "parent dir for archive staging"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					path, err := mediumArg(c)
					if err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					rep, err := offline.Import(c.Context, path, offline.ImportConfig{Server: a.base, Token: a.token, HTTP: a.hc,
						DryRun: c.Bool("dry-run"), Strict: c.Bool("strict"), Progress: os.Stderr, StagingDir: c.String("staging")})
					if err != nil {
						return err
					}
					return finishReport(c, rep)
				},
			},
		},
	}
}

func defaultOfflineState() string {
	if fi, err := os.Stat(agent.DefaultStateDir); err == nil && fi.IsDir() {
		return agent.DefaultStateDir
	}
	return agent.DefaultOfflineStateDir
}

func kitCreate(c *cli.Context) error {
	platforms, err := offline.ParsePlatforms(c.String("platform"))
	if err != nil {
		return usageError("--platform: %v", err)
	}
	bins, err := kitBinaries(c, platforms)
	if err != nil {
		return err
	}
	a, err := newAdminClient(c)
	if err != nil {
		return err
	}
	req := central.KitRequest{Name: c.String("name"), Encrypt: c.Bool("encrypt")}
	if p := c.String("settings"); p != "" {
		b, err := os.ReadFile(p)
		if err != nil {
			return usageError("--settings: %v", err)
		}
		var s offline.Settings
		if err := json.Unmarshal(b, &s); err != nil {
			return usageError("--settings %s: %v", p, err)
		}
		req.Settings = &s
	}
	var kit json.RawMessage
	if err := a.call(c.Context, http.MethodPost, offline.KitsPath, req, &kit); err != nil {
		return err
	}
	k, err := offline.ParseKit(kit, nil)
	if err != nil {
		return err
	}
	root, err := offline.WriteMedium(offline.MediumConfig{Root: c.String("out"), Kit: kit, Binaries: bins})
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "kit %s (generation %d) written to %s\n", k.ID, k.Generation, root)
	for _, p := range platforms {
		fmt.Fprintf(w, "  %s collector from %s\n", p, bins[p])
	}
	fmt.Fprintln(w, "on each offline computer run from the medium:")
	for _, p := range platforms {
		if p == offline.PlatformWindows {
			fmt.Fprintf(w, "  Windows: %s [/u] [/s] [/silent]\n", filepath.Join(root, offline.LauncherName))
		} else {
			fmt.Fprintf(w, "  Linux:   sh %s [/u] [/s] [/silent]\n", filepath.Join(root, offline.ShellLauncherName))
		}
	}
	return nil
}

// kitBinaries finds the collector binary of each platform: this binary for
// its own OS, else the flag, else (Windows) what make build-windows wrote.
func kitBinaries(c *cli.Context, platforms []offline.Platform) (map[offline.Platform]string, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	out := map[offline.Platform]string{}
	for _, p := range platforms {
		flag := string(p) + "-binary"
		switch {
		case c.String(flag) != "":
			out[p] = c.String(flag)
		case string(p) == runtime.GOOS:
			out[p] = exe
		case p == offline.PlatformWindows:
			built := filepath.Join("bin", "windows-amd64", offline.WindowsBinaryName)
			for _, cand := range []string{filepath.Join(filepath.Dir(exe), "windows-amd64", offline.WindowsBinaryName), built} {
				if fi, err := os.Stat(cand); err == nil && fi.Mode().IsRegular() {
					out[p], _ = filepath.Abs(cand)
					break
				}
			}
			if out[p] == "" {
				return nil, usageError("the kit needs a Windows collector and this binary is for %s: give --windows-binary PATH, "+
					"or run `make build-windows` so that %s exists (or use --platform linux)", runtime.GOOS, built)
			}
		default:
			return nil, usageError("the kit needs a %s collector and this binary is for %s: give --%s PATH (or leave %s out of --platform)",
				p, runtime.GOOS, flag, p)
		}
	}
	return out, nil
}

// finishReport prints a report and fails when anything was rejected.
func finishReport(c *cli.Context, rep *offline.Report) error {
	if c.Bool("json") {
		if err := printJSON(c.App.Writer, rep); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RECORD\tHOST\tOUTCOME\tREASON")
		for _, r := range rep.Records {
			if r.Outcome == offline.OutcomeRejected || r.Warning != "" && r.Outcome != offline.OutcomeImported {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s %s\n", r.Name, r.Hostname, r.Outcome, r.Reason, r.Warning)
			}
		}
		tw.Flush()
		fmt.Fprintf(c.App.Writer, "%d records: %v\n", len(rep.Records), rep.Counts)
	}
	if n := rep.Rejected(); n > 0 {
		return cli.Exit(fmt.Sprintf("%d records rejected", n), 1)
	}
	return nil
}

// writeDeviceCSV writes `device list --format csv`: a header row with the
// console's column labels, then one row per device.
func writeDeviceCSV(w io.Writer, devices []central.Device, encoding string) error {
	cw, err := csvx.NewWriter(w, encoding)
	if err != nil {
		return usageError("--encoding: %v", err)
	}
	date := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("2006/01/02 15:04:05")
	}
	cw.Write([]string{"Device ID", "Host Name", "Site", "Channel", "OS", "Serial #", "MAC Address", "Records", "Revisions",
		"Registered Date/Time", "Last Alive Confirmation Date/Time", "Last Modified Date/Time"})
	for _, d := range devices {
		cw.Write([]string{d.ID, d.Hostname, d.Site, d.Channel, d.OS, d.Serial, strings.Join(d.MACs, " "), fmt.Sprint(d.Records), fmt.Sprint(d.Revisions),
			date(d.FirstSeen), date(d.LastSeen), date(d.InventoryAt)})
	}
	return cw.Flush()
}

// mediumArg is the one PATH of `offline verify|import PATH [flags]`.
func mediumArg(c *cli.Context) (string, error) {
	args, err := interspersed(c, 1, 1, c.Command.UsageText+"\nPATH is a medium directory, .zip or .tar.zst")
	if err != nil {
		return "", err
	}
	return args[0], nil
}
