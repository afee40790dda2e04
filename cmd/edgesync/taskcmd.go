package main

import (
	"fmt"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/record"
)

// parseAt reads --at: RFC 3339, "YYYY-MM-DD HH:MM[:SS]" in local time, or
// "+DURATION" from now.
func parseAt(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 {
			return time.Time{}, fmt.Errorf("--at %q: want +DURATION like +30m", s)
		}
		return now.Add(dur), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("--at %q: want RFC 3339 (2026-05-01T22:00:00+02:00), local \"2026-05-01 22:00\" or +DURATION", s)
}

func taskTarget(t central.TaskView) string {
	switch {
	case t.All:
		return "all devices"
	case t.Site != "":
		return "site " + t.Site
	}
	return fmt.Sprintf("%d devices", t.Total)
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func taskCommand() *cli.Command {
	const createUsage = "edgesync task create --package NAME@VERSION (--devices ID,ID | --site S | --all) [--at TIME] [--json]"
	return &cli.Command{
		Name:  "task",
		Usage: "distribute packages to devices and watch the progress (against central)",
		Subcommands: []*cli.Command{
			apiCommand[central.TaskView]{
				Name:  "create",
				Usage: "distribute a package to devices, a site or every online-managed device",
				Description: "Targets are resolved now: online-managed devices only; a device enrolled later is not\n" +
					"a target. --at delays the start: RFC 3339, \"YYYY-MM-DD HH:MM\" (local time) or +DURATION.",
				UsageText: createUsage,
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "package", Aliases: []string{"p"}, Usage: "package ID (NAME@VERSION)"},
					&cli.StringFlag{Name: "devices", Usage: "comma-separated device IDs"},
					&cli.StringFlag{Name: "site", Usage: "every online-managed device of this site"},
					&cli.BoolFlag{Name: "all", Usage: "every online-managed device"},
					&cli.StringFlag{Name: "at", Usage: "start time (default: now)"},
				},
				Request: func(c *cli.Context, _ []string) (apiRequest, error) {
					req := central.TaskRequest{Package: c.String("package"), Devices: splitList(c.String("devices")), Site: c.String("site"), All: c.Bool("all")}
					if req.Package == "" {
						return apiRequest{}, usageError("--package is required\nusage: %s", createUsage)
					}
					modes := 0
					for _, b := range []bool{len(req.Devices) > 0, req.Site != "", req.All} {
						if b {
							modes++
						}
					}
					if modes != 1 {
						return apiRequest{}, usageError("give exactly one of --devices, --site and --all\nusage: %s", createUsage)
					}
					for _, id := range req.Devices {
						if !record.ValidDeviceID(id) {
							return apiRequest{}, usageError("--devices: %q is not a device ID (32 lowercase hex characters)", id)
						}
					}
					if s := c.String("at"); s != "" {
						at, err := parseAt(s, time.Now())
						if err != nil {
							return apiRequest{}, usageError("%v", err)
						}
						req.At = at
					}
					return postRequest("/api/v1/tasks", req), nil
				},
				Print: func(c *cli.Context, v central.TaskView) error {
					when := "now"
					if !v.At.IsZero() {
						when = "at " + localTime(v.At)
					}
					_, err := fmt.Fprintf(c.App.Writer, "task %s created: package %s to %s (%d targets), starts %s\n", v.ID, v.Package, taskTarget(v), v.Total, when)
					return err
				},
			}.command(),
			apiCommand[[]central.TaskView]{
				Name:      "list",
				Usage:     "list tasks with their progress",
				UsageText: "edgesync task list [--json]",
				Request:   func(*cli.Context, []string) (apiRequest, error) { return getRequest("/api/v1/tasks"), nil },
				Print: func(c *cli.Context, ts []central.TaskView) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "TASK\tPACKAGE\tTARGET\tSTATE\tPROGRESS\tERRORS\tCREATED")
					for _, t := range ts {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%d\t%s\n", t.ID, t.Package, taskTarget(t), t.State, t.Completed, t.Total, t.Errors, localTime(t.CreatedAt))
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "%d tasks\n", len(ts))
					return nil
				},
			}.command(),
			apiCommand[central.TaskView]{
				Name:      "show",
				Usage:     "show a task's progress and every target's status",
				UsageText: "edgesync task show TASK [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return getRequest("/api/v1/tasks/" + url.PathEscape(args[0])), nil
				},
				Print: func(c *cli.Context, v central.TaskView) error {
					w := c.App.Writer
					fmt.Fprintf(w, "Task %s: package %s to %s, %s\n", v.ID, v.Package, taskTarget(v), v.State)
					fmt.Fprintf(w, "Progress: %d/%d completed, %d errors", v.Completed, v.Total, v.Errors)
					var counts []string
					for _, s := range []string{central.StatusWaiting, central.StatusDownloading, central.StatusDownloaded, central.StatusInstalling,
						central.StatusSuccessful, central.StatusFailed, central.StatusCancelled} {
						if v.Counts[s] > 0 {
							counts = append(counts, fmt.Sprintf("%s %d", s, v.Counts[s]))
						}
					}
					if len(counts) > 0 {
						fmt.Fprintf(w, " (%s)", strings.Join(counts, ", "))
					}
					fmt.Fprintln(w)
					fmt.Fprintf(w, "Created %s", localTime(v.CreatedAt))
					if !v.At.IsZero() {
						fmt.Fprintf(w, ", starts %s", localTime(v.At))
					}
					if !v.FinishedAt.IsZero() {
						fmt.Fprintf(w, ", finished %s", localTime(v.FinishedAt))
					}
					fmt.Fprintln(w)
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "DEVICE\tHOSTNAME\tSTATUS\tAT\tRETRIES\tCAUSE")
					for _, s := range v.Statuses {
						cause := s.Message
						if s.Cause != "" {
							cause = s.Cause + ": " + cause
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", s.Device, s.Hostname, s.Status, localTime(s.At), s.Attempt, cause)
					}
					return tw.Flush()
				},
			}.command(),
			taskOp("stop", "stop a task (or one device of it) that has not started installing", "stopped"),
			taskOp("retry", "run a task again at once for its failed and cancelled devices (or one of them)", "will retry"),
			apiCommand[map[string]any]{
				Name:      "remove",
				Usage:     "remove a stopped or finished task",
				UsageText: "edgesync task remove TASK [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return deleteRequest("/api/v1/tasks/" + url.PathEscape(args[0])), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "task %s removed\n", c.Args().First())
					return err
				},
			}.command(),
		},
	}
}

// taskOp is `task stop` and `task retry`: POST /api/v1/tasks/ID/OP, for
// the whole task or one device.
func taskOp(op, usage, done string) *cli.Command {
	return apiCommand[map[string]any]{
		Name:      op,
		Usage:     usage,
		UsageText: "edgesync task " + op + " TASK [--device ID] [--json]",
		Flags:     []cli.Flag{&cli.StringFlag{Name: "device", Usage: op + " only this device"}},
		Args:      1,
		Request: func(c *cli.Context, args []string) (apiRequest, error) {
			path := "/api/v1/tasks/" + url.PathEscape(args[0]) + "/" + op
			if dev := c.String("device"); dev != "" {
				if !record.ValidDeviceID(dev) {
					return apiRequest{}, usageError("--device %q: want a device ID (32 lowercase hex characters)", dev)
				}
				path += "?device=" + url.QueryEscape(dev)
			}
			return postRequest(path, nil), nil
		},
		Print: func(c *cli.Context, out map[string]any) error {
			_, err := fmt.Fprintf(c.App.Writer, "task %s: %v device(s) %s\n", c.Args().First(), out[op], done)
			return err
		},
	}.command()
}
