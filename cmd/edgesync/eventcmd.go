package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/httpx"
)

// send makes an authenticated request and returns the open response when
// its status is 200; other answers become errors.
func (a *adminClient) send(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var e httpx.Error
		if json.Unmarshal(body, &e) == nil && e.Code != "" {
			return nil, fmt.Errorf("%s %s: %s (%s)", method, path, e.Message, e.Code)
		}
		return nil, fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return resp, nil
}

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
					a, err := newAdminClient(c)
					if err != nil {
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
					var evs []central.EventView
					if err := a.get(c.Context, "/api/v1/events?"+q.Encode(), &evs); err != nil {
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
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
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
			{
				Name:      "ack",
				Usage:     "acknowledge an event (recorded in central's Raft state and audit trail)",
				UsageText: "edgesync event ack ID",
				Flags:     clientFlags,
				Action: func(c *cli.Context) error {
					id, err := strconv.ParseUint(c.Args().First(), 10, 64)
					if c.NArg() != 1 || err != nil {
						return usageError("want one event ID (a number from `edgesync event list`)")
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					resp, err := a.send(c.Context, http.MethodPost, "/api/v1/events/"+strconv.FormatUint(id, 10)+"/ack")
					if err != nil {
						return err
					}
					resp.Body.Close()
					fmt.Fprintf(c.App.Writer, "event %d acknowledged\n", id)
					return nil
				},
			},
		},
	}
}
