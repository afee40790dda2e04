package main

import (
	"fmt"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
)

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:  "audit",
		Usage: "the audit trail of admin actions (who, what, when, from where, result)",
		Subcommands: []*cli.Command{apiCommand[[]central.AuditEntry]{
			Name:      "list",
			Usage:     "list audit entries, newest first (against central or a relay)",
			UsageText: "edgesync audit list [--limit N] [--json]",
			Flags:     []cli.Flag{&cli.IntFlag{Name: "limit", Value: 200, Usage: "at most this many"}},
			Request: func(c *cli.Context, _ []string) (apiRequest, error) {
				return getRequest("/api/v1/audit?limit=" + strconv.Itoa(c.Int("limit"))), nil
			},
			Print: func(c *cli.Context, entries []central.AuditEntry) error {
				tw := newTable(c)
				fmt.Fprintln(tw, "TIME\tNODE\tWHO\tFROM\tACTION\tRESULT")
				for _, e := range entries {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Format("2006-01-02 15:04:05Z07:00"), e.Node, e.Who, e.From, e.Action, e.Result)
				}
				return tw.Flush()
			},
		}.command()},
	}
}
