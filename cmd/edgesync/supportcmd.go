package main

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// secretRE matches "name: value" / name=value / "name":"value" pairs whose
// name says secret; the value is replaced.
var secretRE = regexp.MustCompile(`(?i)("?[a-z_-]*(token|secret|password|passwd|private[_-]?key|authorization)[a-z_-]*"?\s*[:=]\s*"?)(bearer\s+)?[^\s",}]+`)

var pemRE = regexp.MustCompile(`(?s)-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----`)

// redact removes secrets from support data: the admin token itself, any
// secret-named value and PEM private keys.
func redact(b []byte, token string) []byte {
	s := string(b)
	if token != "" {
		s = strings.ReplaceAll(s, token, "[REDACTED]")
	}
	s = pemRE.ReplaceAllString(s, "[REDACTED PRIVATE KEY]")
	s = secretRE.ReplaceAllString(s, "${1}[REDACTED]")
	return []byte(s)
}

func supportCommand() *cli.Command {
	return &cli.Command{
		Name:  "support",
		Usage: "collect what a support case needs",
		Subcommands: []*cli.Command{{
			Name:      "bundle",
			Usage:     "write a tar.gz of status, sites, events, audit, metrics and the given logs and config files, with secrets removed",
			UsageText: "edgesync support bundle --out FILE [--log FILE ...] [--config FILE ...] [--server URL --token T --ca CA]",
			Flags: append([]cli.Flag{
				&cli.StringFlag{Name: "out", Required: true, Usage: "bundle to write (.tar.gz)"},
				&cli.StringSliceFlag{Name: "log", Usage: "log file to include (redacted)"},
				&cli.StringSliceFlag{Name: "config", Usage: "config file to include (redacted)"},
			}, clientFlags...),
			Action: func(c *cli.Context) error {
				a, err := newAdminClient(c)
				if err != nil {
					return err
				}
				f, err := os.OpenFile(c.String("out"), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				gz := gzip.NewWriter(f)
				tw := tar.NewWriter(gz)
				add := func(name string, b []byte) error {
					b = redact(b, a.token)
					if err := tw.WriteHeader(&tar.Header{Name: "edgesync-support/" + name, Mode: 0o600, Size: int64(len(b)), ModTime: time.Now()}); err != nil {
						return err
					}
					_, err := tw.Write(b)
					return err
				}
				meta, _ := json.MarshalIndent(map[string]any{"version": version, "go": runtime.Version(), "os": runtime.GOOS, "arch": runtime.GOARCH,
					"server": a.base, "collected_at": time.Now().UTC()}, "", "  ")
				if err := add("bundle.json", meta); err != nil {
					return err
				}
				var problems []string
				for _, ep := range []struct{ name, path string }{
					{"cluster.json", "/api/v1/cluster"}, {"sites.json", "/api/v1/sites"}, {"events.json", "/api/v1/events?limit=2000"},
					{"audit.json", "/api/v1/audit?limit=2000"}, {"metrics.txt", "/metrics"},
				} {
					resp, err := a.open(c.Context, http.MethodGet, ep.path, "", nil, 0)
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
					resp.Body.Close()
					if err != nil {
						problems = append(problems, err.Error())
						continue
					}
					if err := add(ep.name, b); err != nil {
						return err
					}
				}
				for _, kind := range []string{"log", "config"} {
					for _, p := range c.StringSlice(kind) {
						b, err := os.ReadFile(p)
						if err != nil {
							problems = append(problems, err.Error())
							continue
						}
						if err := add(kind+"/"+filepath.Base(p), b); err != nil {
							return err
						}
					}
				}
				if len(problems) > 0 {
					add("problems.txt", []byte(strings.Join(problems, "\n")+"\n"))
				}
				if err := tw.Close(); err != nil {
					return err
				}
				if err := gz.Close(); err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "support bundle written to %s (%d problems)\n", c.String("out"), len(problems))
				return f.Sync()
			},
		}},
	}
}
