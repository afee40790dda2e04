package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/internal/backup"
	"github.com/edgesync/edgesync/internal/raftnode"
)

func dbCommand() *cli.Command {
	return &cli.Command{
		Name:  "db",
		Usage: "back up, restore and check a node's replicated state",
		Subcommands: []*cli.Command{
			{
				Name:      "backup",
				Usage:     "download a consistent backup of a running node's state (online; one point in time)",
				UsageText: "edgesync db backup --out FILE [--server URL --token T --ca CA]",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "out", Required: true, Usage: "backup file to write"},
					&cli.BoolFlag{Name: "quiet", Usage: "no progress bar"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					resp, err := a.open(c.Context, http.MethodGet, "/api/v1/backup", "", nil, 0) // as long as it takes; ctx bounds it
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					out := c.String("out")
					tmp := out + ".part"
					f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						return err
					}
					defer os.Remove(tmp)
					var w io.Writer = f
					if !c.Bool("quiet") {
						bar := progressbar.DefaultBytes(-1, "backup")
						defer bar.Finish()
						w = io.MultiWriter(f, bar)
					}
					_, err = io.Copy(w, resp.Body)
					if err == nil {
						err = f.Sync()
					}
					if cerr := f.Close(); err == nil {
						err = cerr
					}
					if err != nil {
						return fmt.Errorf("download backup: %w", err)
					}
					info, err := verifyFile(tmp)
					if err != nil {
						return fmt.Errorf("downloaded backup does not check out: %w", err)
					}
					if err := os.Rename(tmp, out); err != nil {
						return err
					}
					fmt.Fprintf(c.App.ErrWriter, "\nbackup of index %d: %d records (%d devices, %d events) in %s\n", info.Index, info.Records, info.ByKind["d/"], info.ByKind["e/"], out)
					return nil
				},
			},
			{
				Name:      "restore",
				Usage:     "restore a backup into a new data dir; then start the node there with --bootstrap",
				UsageText: "edgesync db restore FILE --data DIR [--node-id ID] [--raft-addr HOST:PORT]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data", Required: true, Usage: "new (empty) data dir"},
					&cli.StringFlag{Name: "node-id", Value: "central-1", Usage: "ID of the node that will run on the data dir"},
					&cli.StringFlag{Name: "raft-addr", Value: "127.0.0.1:7300", Usage: "Raft address that node will use"},
				},
				Action: func(c *cli.Context) error {
					if c.NArg() != 1 {
						return usageError("want one backup FILE")
					}
					f, err := os.Open(c.Args().First())
					if err != nil {
						return err
					}
					defer f.Close()
					info, err := backup.Restore(f, c.String("data"), c.String("node-id"), c.String("raft-addr"))
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "restored index %d (%d records, %d devices) into %s\nstart it with: edgesync central run --bootstrap --data %s --node-id %s --raft-addr %s (the backed-up admin token stays valid)\n",
						info.Index, info.Records, info.ByKind["d/"], c.String("data"), c.String("data"), c.String("node-id"), c.String("raft-addr"))
					return nil
				},
			},
			{
				Name:      "verify",
				Usage:     "check a stopped node's data dir (or a backup file with --file)",
				UsageText: "edgesync db verify --data DIR | --file BACKUP [--json]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data", Usage: "data dir of a stopped node"},
					&cli.StringFlag{Name: "file", Usage: "a backup file"},
					&cli.BoolFlag{Name: "json", Usage: "print JSON"},
				},
				Action: func(c *cli.Context) error {
					if (c.String("data") == "") == (c.String("file") == "") {
						return usageError("want exactly one of --data and --file")
					}
					if f := c.String("file"); f != "" {
						info, err := verifyFile(f)
						if err != nil {
							return cli.Exit(err.Error(), 1)
						}
						if c.Bool("json") {
							return printJSON(c.App.Writer, info)
						}
						fmt.Fprintf(c.App.Writer, "backup OK: index %d, %d records, %d bytes\n", info.Index, info.Records, info.Bytes)
						return nil
					}
					// The at-rest check first: it reads the files without opening
					// Badger, which would silently cut a damaged value log.
					if err := raftnode.CheckDir(filepath.Clean(c.String("data"))); err != nil {
						if c.Bool("json") {
							_ = printJSON(c.App.Writer, map[string]any{"problems": []string{err.Error()}})
						}
						return cli.Exit(err.Error(), 1)
					}
					rep, err := backup.Verify(filepath.Clean(c.String("data")))
					if err != nil {
						return cli.Exit(err.Error(), 1)
					}
					if c.Bool("json") {
						if err := printJSON(c.App.Writer, rep); err != nil {
							return err
						}
					} else {
						fmt.Fprintf(c.App.Writer, "state %s: applied index %d, %d keys (%d devices, %d events); raft log %d..%d; %d snapshot(s), latest at %d\n",
							rep.StateDir, rep.AppliedIndex, rep.Keys, rep.ByKind["d/"], rep.ByKind["e/"], rep.LogFirst, rep.LogLast, rep.Snapshots, rep.SnapshotIndex)
						for _, p := range rep.Problems {
							fmt.Fprintln(c.App.Writer, "PROBLEM:", p)
						}
					}
					if len(rep.Problems) > 0 {
						return cli.Exit("", 1)
					}
					return nil
				},
			},
		},
	}
}

func verifyFile(path string) (backup.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return backup.Info{}, err
	}
	defer f.Close()
	return backup.Scan(f, nil)
}
