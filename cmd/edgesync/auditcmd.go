package main

import (
	"fmt"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "the audit trail of admin actions (who, what, when, from where, result)",
		Subcommands: []*cli.Command{{
			Name:      "list",
			Usage:     "list audit entries, newest first (against central or a relay)",
			UsageText: "edgesync audit list [--limit N] [--json]",
			Flags:     append([]cli.Flag{&cli.IntFlag{Name: "limit", Value: 200, Usage: "at most this many"}}, clientFlags...),
			Action: func(c *cli.Context) error {
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				var entries []central.AuditEntry
				if err := a.get(c.Context, "/api/v1/audit?limit="+strconv.Itoa(c.Int("limit")), &entries); err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, entries)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tNODE\tWHO\tFROM\tACTION\tRESULT")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05Z07:00"), e.Node, e.Who, e.From, e.Action, e.Result)
				}
				return tw.Flush()
			},
		}},
	}
}
