package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/record"
)

var clientFlags = []cli.Flag{
	&cli.StringFlag{Name: "server", Usage: "admin API base URL of a central or relay node", EnvVars: []string{"EDGESYNC_SERVER"}, Value: "https://127.0.0.1:7080"},
	&cli.StringFlag{Name: "token", Usage: "admin bearer token", EnvVars: []string{"EDGESYNC_TOKEN"}},
	&cli.StringFlag{Name: "ca", Usage: "CA certificate file (ca.crt) that signed the server's certificate", EnvVars: []string{"EDGESYNC_CA"}},
	&cli.BoolFlag{Name: "json", Usage: "print JSON"},
}

// adminClient is the small HTTP client of the admin commands.
type adminClient struct {
	base  string
	token string
	hc    *http.Client
}

func newAdminClient(c *cli.Context) (*adminClient, error) {
	base := strings.TrimRight(c.String("server"), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usageError("--server %q: want an https://HOST:PORT URL", base)
	}
	if c.String("token") == "" {
		return nil, usageError("an admin token is required (--token or EDGESYNC_TOKEN)")
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if ca := c.String("ca"); ca != "" {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, usageError("--ca: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError("--ca %s: no PEM certificate found", ca)
		}
		tlsConf.RootCAs = pool
	}
	return &adminClient{base: base, token: c.String("token"), hc: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{TLSClientConfig: tlsConf},
	}}, nil
}

func (a *adminClient) get(ctx context.Context, path string, out any) error {
	return a.do(ctx, http.MethodGet, path, nil, out)
}

func (a *adminClient) post(ctx context.Context, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	return a.do(ctx, http.MethodPost, path, b, out)
}

func (a *adminClient) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		var uerr x509.UnknownAuthorityError
		if errors.As(err, &uerr) {
			return fmt.Errorf("%s: server certificate not trusted: pass --ca with the site or central ca.crt", a.base)
		}
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		// Admin APIs answer {"code","message"}; raft membership calls {"code","error"}.
		var e struct {
			Code    any    `json:"code"`
			Message string `json:"message"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && (e.Message != "" || e.Error != "") {
			return fmt.Errorf("%s %s: %s: %s%s (%v)", method, path, resp.Status, e.Message, e.Error, e.Code)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return json.Unmarshal(b, out)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return time.Since(t).Round(time.Second).String() + " ago"
}

func deviceCommand() *cli.Command {
	return &cli.Command{
		Name:  "device",
		Usage: "list and inspect managed devices (against central)",
		Subcommands: []*cli.Command{
			{
				Name:      "list",
				Usage:     "list devices",
				UsageText: "edgesync device list [--site S] [--query Q] [--limit N] [--json]",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "site", Usage: "only devices of this site"},
					&cli.StringFlag{Name: "query", Aliases: []string{"q"}, Usage: "match device ID, host name, serial or MAC"},
					&cli.IntFlag{Name: "limit", Value: 1000, Usage: "at most this many"},
					&cli.StringFlag{Name: "format", Value: "table", Usage: "table or csv"},
					&cli.StringFlag{Name: "encoding", Value: "utf-8", Usage: "csv encoding: utf-16le (the ISM dialect: BOM, tab, quoted, CRLF) or utf-8"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					q := url.Values{}
					q.Set("limit", fmt.Sprint(c.Int("limit")))
					if s := c.String("site"); s != "" {
						q.Set("site", s)
					}
					if s := c.String("query"); s != "" {
						q.Set("q", s)
					}
					var list central.DeviceList
					if err := a.get(c.Context, "/api/v1/devices?"+q.Encode(), &list); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, list)
					}
					if c.String("format") == "csv" {
						return writeDeviceCSV(c.App.Writer, list.Devices, c.String("encoding")) // offlinecmd.go
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "DEVICE ID\tHOSTNAME\tSITE\tCHANNEL\tRECORDS\tLAST SEEN")
					for _, d := range list.Devices {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.Hostname, d.Site, d.Channel, d.Records, ago(d.LastSeen))
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "%d of %d devices\n", len(list.Devices), list.Total)
					return nil
				},
			},
			{
				Name:      "show",
				Usage:     "show a device with its current inventory",
				UsageText: "edgesync device show ID [--json]",
				Flags:     clientFlags,
				Action: func(c *cli.Context) error {
					id, err := deviceArg(c)
					if err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var d central.Device
					if err := a.get(c.Context, "/api/v1/devices/"+id, &d); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, d)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
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
			},
			{
				Name:      "history",
				Usage:     "list a device's inventory revisions by collection time",
				UsageText: "edgesync device history ID [--json]",
				Flags:     clientFlags,
				Action: func(c *cli.Context) error {
					id, err := deviceArg(c)
					if err != nil {
						return err
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var revs []central.Revision
					if err := a.get(c.Context, "/api/v1/devices/"+id+"/history", &revs); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, revs)
					}
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
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
			},
		},
	}
}

func deviceArg(c *cli.Context) (string, error) {
	id := c.Args().First()
	if c.NArg() != 1 || !record.ValidDeviceID(id) {
		return "", usageError("want exactly one device ID (32 lowercase hex characters)")
	}
	return id, nil
}

func siteCommand() *cli.Command {
	return &cli.Command{
		Name:  "site",
		Usage: "branch sites as central sees them",
		Subcommands: []*cli.Command{{
			Name:      "list",
			Usage:     "list sites with their relays, last contact, outbox depth, acked sequence and oldest unacked age",
			UsageText: "edgesync site list [--json]",
			Flags:     clientFlags,
			Action: func(c *cli.Context) error {
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				var sites []central.SiteView
				if err := a.get(c.Context, "/api/v1/sites", &sites); err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, sites)
				}
				tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
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
		}},
	}
}

func clusterCommand() *cli.Command {
	membership := func(name, usage, usageText, path string, needID bool) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, UsageText: usageText, Flags: clientFlags,
			Action: func(c *cli.Context) error {
				id := c.Args().First()
				if c.NArg() > 1 || (needID && id == "") {
					return usageError("usage: %s", usageText)
				}
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				var st map[string]any
				if err := a.post(c.Context, path, map[string]string{"id": id}, &st); err != nil {
					return err
				}
				if c.Bool("json") {
					return printJSON(c.App.Writer, st)
				}
				fmt.Fprintf(c.App.Writer, "%s: done; leader now %v\n", name, st["leader"])
				return nil
			},
		}
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
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					var st map[string]any
					if err := a.get(c.Context, "/api/v1/cluster", &st); err != nil {
						return err
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, st)
					}
					var v struct {
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
					tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
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
