package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/record"
)

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func newTable(c *cli.Context) *tabwriter.Writer {
	return tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
}

func deviceCommand() *cli.Command {
	return &cli.Command{
		Name:  "device",
		Usage: "list and inspect managed devices (against central)",
		Subcommands: []*cli.Command{
			apiCommand[central.DeviceList]{
				Name:      "list",
				Usage:     "list devices",
				UsageText: "edgesync device list [--site S] [--query Q] [--limit N] [--format table|csv] [--json]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "site", Usage: "only devices of this site"},
					&cli.StringFlag{Name: "query", Aliases: []string{"q"}, Usage: "match device ID, host name, serial or MAC"},
					&cli.IntFlag{Name: "limit", Value: 1000, Usage: "at most this many"},
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table or csv"},
					&cli.StringFlag{Name: "encoding", Value: "utf-8", Usage: "csv encoding: utf-16le (the ISM dialect: BOM, tab, quoted, CRLF) or utf-8"},
				},
				Request: func(c *cli.Context, _ []string) (apiRequest, error) {
					q := url.Values{}
					q.Set("limit", fmt.Sprint(c.Int("limit")))
					if s := c.String("site"); s != "" {
						q.Set("site", s)
					}
					if s := c.String("query"); s != "" {
						q.Set("q", s)
					}
					return getRequest("/api/v1/devices?" + q.Encode()), nil
				},
				Print: func(c *cli.Context, list central.DeviceList) error {
					if c.String("format") == "csv" {
						return writeDeviceCSV(c.App.Writer, list.Devices, c.String("encoding")) // offlinecmd.go
					}
					tw := newTable(c)
					fmt.Fprintln(tw, "DEVICE ID\tHOSTNAME\tSITE\tCHANNEL\tRECORDS\tLAST SEEN")
					for _, d := range list.Devices {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Hostname, d.Site, d.Channel, d.Records, ago(d.LastSeen))
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "%d of %d devices\n", len(list.Devices), list.Total)
					return nil
				},
			}.command(),
			apiCommand[central.Device]{
				Name:      "show",
				Usage:     "show a device with its current inventory",
				UsageText: "edgesync device show ID [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					id, err := deviceArg(args[0])
					return getRequest("/api/v1/devices/" + id), err
				},
				Print: func(c *cli.Context, d central.Device) error {
					tw := newTable(c)
					for _, kv := range [][2]string{
						{"Device ID", d.ID}, {"Host name", d.Hostname}, {"OS", d.OS}, {"Serial", d.Serial},
						{"MACs", strings.Join(d.MACs, ", ")}, {"Site", d.Site}, {"Relay", d.Relay}, {"Channel", d.Channel},
						{"First seen", d.FirstSeen.Format(time.RFC3339)}, {"Last seen", ago(d.LastSeen)},
						{"Inventory collected", d.InventoryAt.Format(time.RFC3339)},
						{"Revisions", fmt.Sprint(d.Revisions)}, {"Records", fmt.Sprint(d.Records)},
					} {
						fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
					}
					tw.Flush()
					var inv record.Inventory
					if json.Unmarshal(d.Inventory, &inv) == nil {
						fmt.Fprintf(c.App.Writer, "Hardware: %s %s, %s x%d, %d MiB RAM, %d disks, %d interfaces; %d software packages; users %s\n",
							inv.Hardware.Vendor, inv.Hardware.Model, inv.Hardware.CPUModel, inv.Hardware.CPUCores, inv.Hardware.MemoryBytes>>20,
							len(inv.Hardware.Disks), len(inv.Hardware.Interfaces), len(inv.Software), strings.Join(inv.Users, ","))
					}
					return nil
				},
			}.command(),
			apiCommand[[]central.Revision]{
				Name:      "history",
				Usage:     "list a device's inventory revisions by collection time",
				UsageText: "edgesync device history ID [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					id, err := deviceArg(args[0])
					return getRequest("/api/v1/devices/" + id + "/history"), err
				},
				Print: func(c *cli.Context, revs []central.Revision) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "SEQ\tCOLLECTED\tRECEIVED\tCHANNEL\tSITE\tRELAY\tCURRENT")
					for _, r := range revs {
						cur := ""
						if r.Current {
							cur = "*"
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Seq, r.CollectedAt.Format(time.RFC3339), r.ReceivedAt.Format(time.RFC3339), r.Channel, r.Site, r.Relay, cur)
					}
					return tw.Flush()
				},
			}.command(),
		},
	}
}

func deviceArg(id string) (string, error) {
	if !record.ValidDeviceID(id) {
		return "", usageError("want a device ID (32 lowercase hex characters), not %q", id)
	}
	return id, nil
}

func siteCommand() *cli.Command {
	return &cli.Command{
		Name:  "site",
		Usage: "branch sites as central sees them",
		Subcommands: []*cli.Command{apiCommand[[]central.SiteView]{
			Name:      "list",
			Usage:     "list sites with their relays, last contact, outbox depth, acked sequence and oldest unacked age",
			UsageText: "edgesync site list [--json]",
			Request:   func(*cli.Context, []string) (apiRequest, error) { return getRequest("/api/v1/sites"), nil },
			Print: func(c *cli.Context, sites []central.SiteView) error {
				tw := newTable(c)
				fmt.Fprintln(tw, "SITE\tACKED SEQ\tRECORDS\tRELAY\tLAST CONTACT\tOUTBOX\tOLDEST UNACKED")
				for _, s := range sites {
					if len(s.Relays) == 0 {
						fmt.Fprintf(tw, "%s\t%d\t%d\t-\t-\t-\t-\n", s.ID, s.AckedSeq, s.Records)
					}
					for i, r := range s.Relays {
						id := s.ID
						if i > 0 {
							id = ""
						}
						fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%.0fs\n", id, s.AckedSeq, s.Records, r.Node, ago(r.LastContact), r.OutboxDepth, r.OldestUnackedAge)
					}
				}
				return tw.Flush()
			},
		}.command()},
	}
}

// clusterStatus is what `cluster status` prints of GET /api/v1/cluster.
type clusterStatus struct {
	Role string `json:"role"`
	Site string `json:"site"`
	Node string `json:"node"`
	Raft struct {
		State        string `json:"state"`
		Term         uint64 `json:"term"`
		CommitIndex  uint64 `json:"commit_index"`
		AppliedIndex uint64 `json:"applied_index"`
		Leader       struct {
			ID string `json:"id"`
		} `json:"leader"`
		Members []struct {
			ID       string `json:"id"`
			RaftAddr string `json:"raft_addr"`
			HTTPAddr string `json:"http_addr"`
			Suffrage string `json:"suffrage"`
			Leader   bool   `json:"leader"`
		} `json:"members"`
	} `json:"raft"`
}

func clusterCommand() *cli.Command {
	membership := func(name, usage, usageText, path string, needID bool) *cli.Command {
		cmd := apiCommand[map[string]any]{
			Name: name, Usage: usage, UsageText: usageText, OptionalArgs: 1,
			Request: func(_ *cli.Context, args []string) (apiRequest, error) {
				return postRequest(path, map[string]string{"id": strings.Join(args, "")}), nil
			},
			Print: func(c *cli.Context, st map[string]any) error {
				_, err := fmt.Fprintf(c.App.Writer, "%s: done; leader now %v\n", name, st["leader"])
				return err
			},
		}
		if needID {
			cmd.Args, cmd.OptionalArgs = 1, 0
		}
		return cmd.command()
	}
	return &cli.Command{
		Name:  "cluster",
		Usage: "Raft cluster state and membership of a central or relay node",
		Subcommands: []*cli.Command{
			membership("remove", "remove a member (a dead node, or one being retired)", "edgesync cluster remove NODE-ID", "/api/v1/cluster/remove", true),
			membership("transfer", "move leadership to a member (or any other voter)", "edgesync cluster transfer [NODE-ID]", "/api/v1/cluster/transfer", false),
			{
				Name:      "status",
				Usage:     "members, leader, term, commit and applied index",
				UsageText: "edgesync cluster status [--server URL] [--json]",
				Flags:     clientFlags,
				Action: func(c *cli.Context) error {
					// --json prints the whole answer, which holds more than clusterStatus reads.
					st, err := fetch[map[string]any](c, getRequest("/api/v1/cluster"))
					if err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, st)
					}
					var v clusterStatus
					b, _ := json.Marshal(st)
					if err := json.Unmarshal(b, &v); err != nil {
						return err
					}
					where := v.Role + " node " + v.Node
					if v.Site != "" {
						where += " (site " + v.Site + ")"
					}
					fmt.Fprintf(c.App.Writer, "%s: %s, term %d, leader %s, commit %d, applied %d\n",
						where, v.Raft.State, v.Raft.Term, v.Raft.Leader.ID, v.Raft.CommitIndex, v.Raft.AppliedIndex)
					tw := newTable(c)
					fmt.Fprintln(tw, "MEMBER\tRAFT\tHTTPS\tSUFFRAGE\tLEADER")
					for _, m := range v.Raft.Members {
						l := ""
						if m.Leader {
							l = "*"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.RaftAddr, m.HTTPAddr, m.Suffrage, l)
					}
					return tw.Flush()
				},
			}},
	}
}
