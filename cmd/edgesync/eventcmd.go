package main

import (
	"fmt"
	"net/url"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
)

func eventCommand() *cli.Command {
	return &cli.Command{
		Name:  "event",
		Usage: "list and acknowledge events (against central, or a relay for `list`)",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list events, newest first",
				UsageText: "edgesync event list [--severity Critical|Warning|Information] [--type T] [--unacked] [--limit N] [--json]",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "severity", Usage: "only this severity (Critical, Warning, Information)"},
					&cli.StringFlag{Name: "type", Usage: "only this type (Settings, Error, Security, Distribution, Device)"},
					&cli.BoolFlag{Name: "unacked", Usage: "only events not acknowledged yet"},
					&cli.IntFlag{Name: "limit", Value: 200, Usage: "at most this many"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					if _, err := interspersed(c, 0, 0, c.Command.UsageText); err != nil {
						return err
					}
					q := url.Values{"limit": {strconv.Itoa(c.Int("limit"))}}
					for _, f := range []string{"severity", "type"} {
						if v := c.String(f); v != "" {
							q.Set(f, v)
						}
					}
					if c.Bool("unacked") {
						q.Set("unacked", "1")
					}
					evs, err := fetch[[]central.EventView](c, getRequest("/api/v1/events?"+q.Encode()))
					if err != nil {
						return err
					}
					// A relay answers unfiltered: filter here too.
					out := evs[:0]
					for _, e := range evs {
						if (c.String("severity") == "" || e.Severity == c.String("severity")) && (c.String("type") == "" || e.Type == c.String("type")) && !(c.Bool("unacked") && e.Acked) {
							out = append(out, e)
						}
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, out)
					}
					tw := newTable(c)
					fmt.Fprintln(tw, "ID\tNO.\tSEVERITY\tTYPE\tSOURCE\tTIME\tACK\tMESSAGE")
					for _, e := range out {
						ack := ""
						if e.Acked {
							ack = e.AckedBy
						}
						fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Number, e.Severity, e.Type, e.Source, e.Time.Format("2006-01-02 15:04:05Z07:00"), ack, e.Message)
					}
					return tw.Flush()
				},
			},
			apiCommand[map[string]any]{
				Name:      "ack",
				Usage:     "acknowledge an event (recorded in central's Raft state and audit trail)",
				UsageText: "edgesync event ack ID",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					id, err := strconv.ParseUint(args[0], 10, 64)
					if err != nil {
						return apiRequest{}, usageError("want one event ID (a number from `edgesync event list`)")
					}
					return postRequest("/api/v1/events/"+strconv.FormatUint(id, 10)+"/ack", nil), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "event %s acknowledged\n", c.Args().First())
					return err
				},
			}.command(),
		},
	}
}
