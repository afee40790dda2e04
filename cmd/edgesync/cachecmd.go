package main

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/dustin/go-humanize"
	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/relay"
)

func cacheCommand() *cli.Command {
	return &cli.Command{
		Name:  "cache",
		Usage: "the package cache of one relay node (--server is that relay node's URL)",
		Subcommands: []*cli.Command{
			apiCommand[relay.CacheStatus]{
				Name:      "list",
				Usage:     "list the cached blobs with their packages, size and last use",
				UsageText: "edgesync cache list --server https://RELAY:PORT [--json]",
				Request:   func(*cli.Context, []string) (apiRequest, error) { return getRequest("/api/v1/cache"), nil },
				Print: func(c *cli.Context, st relay.CacheStatus) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "SHA-256\tSIZE\tPACKAGES\tNEEDED\tLAST USED")
					for _, b := range st.Blobs {
						pkgs := strings.Join(b.Packages, ",")
						if pkgs == "" {
							pkgs = "-"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", short(b.SHA256), humanBytes(b.Size), pkgs, yesNo(b.Needed), ago(b.LastUsed))
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "relay node %s: %d blobs, %s; upstream fetches %d, resumes %d\n",
						st.Node, len(st.Blobs), humanBytes(st.Bytes), st.Fetches, st.Resumes)
					return nil
				},
			}.command(),
			{
				Name:  "verify",
				Usage: "hash every cached blob; corrupt ones are removed (and fetched again if a task needs them)",
				Description: "Exits 0 when every blob checks out, 1 when corrupt blobs were found (they are removed:\n" +
					"they are never served, and the blobs of active tasks are fetched again).",
				UsageText: "edgesync cache verify --server https://RELAY:PORT [--json]",
				Flags:     clientFlags,
				Action: func(c *cli.Context) error {
					if _, err := interspersed(c, 0, 0, c.Command.UsageText); err != nil {
						return err
					}
					// Not an apiCommand: it exits 1 on corrupt blobs, with --json too.
					out, err := fetch[struct {
						Node    string   `json:"node"`
						Corrupt []string `json:"corrupt"`
					}](c, postRequest("/api/v1/cache/verify", nil))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						if err := printJSON(c.App.Writer, out); err != nil {
							return err
						}
					} else if len(out.Corrupt) == 0 {
						fmt.Fprintf(c.App.Writer, "relay node %s: every cached blob checks out\n", out.Node)
					} else {
						fmt.Fprintf(c.App.Writer, "relay node %s: %d corrupt blobs removed:\n", out.Node, len(out.Corrupt))
						for _, s := range out.Corrupt {
							fmt.Fprintln(c.App.Writer, "  "+s)
						}
					}
					if len(out.Corrupt) > 0 {
						return cli.Exit("", 1)
					}
					return nil
				},
			},
			apiCommand[relay.EvictResult]{
				Name:      "evict",
				Usage:     "remove cached blobs no active task needs, least recently used first",
				UsageText: "edgesync cache evict --server https://RELAY:PORT [--target-size SIZE] [--json]",
				Description: "Without --target-size every blob no active task needs is removed; with it, blobs are removed\n" +
					"least recently used first until the cache holds at most SIZE (e.g. 20GB, 512MiB). Blobs of\n" +
					"active tasks are never removed, so the cache may stay above SIZE (at_target false).",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "target-size", Value: "0", Usage: "evict until the cache is at or under this size"},
				},
				Request: func(c *cli.Context, _ []string) (apiRequest, error) {
					target, err := humanize.ParseBytes(c.String("target-size"))
					if err != nil || target > math.MaxInt64 {
						return apiRequest{}, usageError("--target-size %q: want a size such as 20GB or 512MiB", c.String("target-size"))
					}
					return postRequest("/api/v1/cache/evict?target_size="+strconv.FormatUint(target, 10), nil), nil
				},
				Print: func(c *cli.Context, out relay.EvictResult) error {
					fmt.Fprintf(c.App.Writer, "relay node %s: %d blobs evicted, %s freed; cache now %s (target %s)\n",
						out.Node, len(out.Evicted), humanBytes(out.Freed), humanBytes(out.Bytes), humanBytes(out.TargetSize))
					for _, s := range out.Evicted {
						fmt.Fprintln(c.App.Writer, "  "+s)
					}
					if !out.AtTarget {
						fmt.Fprintln(c.App.Writer, "the cache is still above the target: the blobs left are needed by active tasks")
					}
					return nil
				},
			}.command(),
		},
	}
}
