package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/csvx"
)

// humanBytes prints a size in binary units.
func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func short(sum string) string {
	if len(sum) > 12 {
		return sum[:12]
	}
	return sum
}

func packageCommand() *cli.Command {
	const addUsage = "edgesync package add FILE --name N --version V [--type install|file] [--command CMD] [--dest DIR [--mode MODE]] [--description D] [--json]"
	return &cli.Command{
		Name:  "package",
		Usage: "register and list the packages central distributes (against central)",
		Subcommands: []*cli.Command{
			{
				Name:  "add",
				Usage: "upload FILE to central as a package (stored by SHA-256 on every central node)",
				Description: "An install package runs --command on each target with the file in $EDGESYNC_PACKAGE_FILE\n" +
					"(working directory: the file's folder). A file package places the file in --dest.",
				UsageText: addUsage,
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "package name (1-64 of A-Z a-z 0-9 . _ + -)"},
					&cli.StringFlag{Name: "version", Usage: "package version"},
					&cli.StringFlag{Name: "type", Value: central.PackageInstall, Usage: "install (run --command) or file (place in --dest)"},
					&cli.StringFlag{Name: "command", Usage: "install command, run with /bin/sh -c"},
					&cli.StringFlag{Name: "dest", Usage: "absolute destination folder of a file package"},
					&cli.StringFlag{Name: "mode", Usage: "permission bits of a file package's placed file, octal (default 0644)"},
					&cli.StringFlag{Name: "description", Usage: "free text"},
					&cli.StringFlag{Name: "file-name", Usage: "name of the file on the targets (default: FILE's base name)"},
					&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					args, err := interspersed(c, 1, 1, addUsage)
					if err != nil {
						return err
					}
					var missing []string
					for _, f := range []string{"name", "version"} {
						if c.String(f) == "" {
							missing = append(missing, "--"+f)
						}
					}
					if len(missing) > 0 {
						return usageError("%s required\nusage: %s", strings.Join(missing, " and "), addUsage)
					}
					switch c.String("type") {
					case central.PackageInstall:
						if strings.TrimSpace(c.String("command")) == "" {
							return usageError("an install package needs --command")
						}
					case central.PackageFile:
						if !filepath.IsAbs(c.String("dest")) {
							return usageError("a file package needs --dest with an absolute folder")
						}
					default:
						return usageError("--type %q: want install or file", c.String("type"))
					}
					f, err := os.Open(args[0])
					if err != nil {
						return usageError("FILE: %v", err)
					}
					defer f.Close()
					fi, err := f.Stat()
					if err != nil {
						return err
					}
					if !fi.Mode().IsRegular() {
						return usageError("FILE %s: not a regular file", args[0])
					}
					a, err := newAdminClient(c)
					if err != nil {
						return err
					}
					fileName := c.String("file-name")
					if fileName == "" {
						fileName = filepath.Base(args[0])
					}
					q := url.Values{}
					for k, v := range map[string]string{"name": c.String("name"), "version": c.String("version"), "type": c.String("type"),
						"command": c.String("command"), "dest": c.String("dest"), "mode": c.String("mode"), "description": c.String("description"), "file_name": fileName} {
						if v != "" {
							q.Set(k, v)
						}
					}
					var body io.Reader = f
					var bar *progressbar.ProgressBar
					if !c.Bool("quiet") {
						bar = progressbar.NewOptions64(fi.Size(), progressbar.OptionSetWriter(c.App.ErrWriter), progressbar.OptionShowBytes(true),
							progressbar.OptionSetDescription("uploading "+filepath.Base(args[0])), progressbar.OptionThrottle(100*time.Millisecond),
							progressbar.OptionShowCount(), progressbar.OptionOnCompletion(func() { fmt.Fprintln(c.App.ErrWriter) }))
						r := progressbar.NewReader(f, bar)
						body = &r
					}
					var p central.Package
					resp, err := a.open(c.Context, http.MethodPost, "/api/v1/packages?"+q.Encode(), "application/octet-stream", body, fi.Size())
					if err == nil {
						err = decode(resp, &p)
					}
					if err != nil {
						if bar != nil {
							bar.Exit()
							fmt.Fprintln(c.App.ErrWriter)
						}
						return err
					}
					if bar != nil {
						bar.Finish()
					}
					if c.Bool("json") {
						return printJSON(c.App.Writer, p)
					}
					fmt.Fprintf(c.App.Writer, "package %s registered: %s, %s, sha256 %s\n", p.ID, p.Type, humanBytes(p.Size), p.SHA256)
					return nil
				},
			},
			apiCommand[[]central.Package]{
				Name:      "list",
				Usage:     "list packages",
				UsageText: "edgesync package list [--json]",
				Request:   func(*cli.Context, []string) (apiRequest, error) { return getRequest("/api/v1/packages"), nil },
				Print: func(c *cli.Context, ps []central.Package) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "PACKAGE\tTYPE\tSIZE\tSHA-256\tON THIS NODE\tREGISTERED")
					for _, p := range ps {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, p.Type, humanBytes(p.Size), short(p.SHA256), yesNo(p.Local), p.CreatedAt.Local().Format("2006-01-02 15:04"))
					}
					tw.Flush()
					fmt.Fprintf(c.App.Writer, "%d packages\n", len(ps))
					return nil
				},
			}.command(),
			apiCommand[central.Package]{
				Name:      "show",
				Usage:     "show one package",
				UsageText: "edgesync package show NAME@VERSION [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return getRequest("/api/v1/packages/" + url.PathEscape(args[0])), nil
				},
				Print: func(c *cli.Context, p central.Package) error {
					tw := newTable(c)
					for _, kv := range [][2]string{
						{"Package", p.ID}, {"Name", p.Name}, {"Version", p.Version}, {"Type", p.Type},
						{"Command", p.Command}, {"Destination", p.Dest}, {"Mode", p.Mode}, {"Description", p.Description},
						{"File name", p.FileName}, {"Size", fmt.Sprintf("%s (%d bytes)", humanBytes(p.Size), p.Size)}, {"SHA-256", p.SHA256},
						{"Registered", p.CreatedAt.Local().Format(time.RFC3339)}, {"Blob on this node", yesNo(p.Local)},
					} {
						if kv[1] != "" {
							fmt.Fprintf(tw, "%s:\t%s\n", kv[0], kv[1])
						}
					}
					return tw.Flush()
				},
			}.command(),
			apiCommand[map[string]any]{
				Name:      "remove",
				Usage:     "remove a package no task uses",
				UsageText: "edgesync package remove NAME@VERSION [--json]",
				Args:      1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return deleteRequest("/api/v1/packages/" + url.PathEscape(args[0])), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "package %s removed\n", c.Args().First())
					return err
				},
			}.command(),
			{
				Name:      "export",
				Usage:     "write the package list as CSV",
				UsageText: "edgesync package export --format csv [--encoding utf-8|utf-16le] [--output FILE]",
				Flags: append([]cli.Flag{
					&cli.StringFlag{Name: "format", Value: "csv", Usage: "csv (the only format)"},
					&cli.StringFlag{Name: "encoding", Value: "utf-8", Usage: "utf-16le (the ISM dialect: BOM, tab, quoted, CRLF) or utf-8"},
					&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to FILE instead of standard output"},
				}, clientFlags...),
				Action: func(c *cli.Context) error {
					if _, err := interspersed(c, 0, 0, "edgesync package export --format csv [--encoding utf-8|utf-16le] [--output FILE]"); err != nil {
						return err
					}
					if c.String("format") != "csv" {
						return usageError("--format %q: want csv", c.String("format"))
					}
					var buf bytes.Buffer
					cw, err := csvx.NewWriter(&buf, c.String("encoding"))
					if err != nil {
						return usageError("--encoding: %v", err)
					}
					ps, err := fetch[[]central.Package](c, getRequest("/api/v1/packages"))
					if err != nil {
						return err
					}
					cw.Write([]string{"Package ID", "Package Name", "Version", "Type", "File Name", "Size (bytes)", "SHA-256",
						"Command", "Destination Folder", "Description", "Registered Date/Time"})
					for _, p := range ps {
						cw.Write([]string{p.ID, p.Name, p.Version, p.Type, p.FileName, fmt.Sprint(p.Size), p.SHA256,
							p.Command, p.Dest, p.Description, p.CreatedAt.Local().Format("2006/01/02 15:04:05")})
					}
					if err := cw.Flush(); err != nil {
						return err
					}
					if out := c.String("output"); out != "" {
						return os.WriteFile(out, buf.Bytes(), 0o644)
					}
					_, err = c.App.Writer.Write(buf.Bytes())
					return err
				},
			},
		},
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
