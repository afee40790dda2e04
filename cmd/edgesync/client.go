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
	"time"

	"github.com/urfave/cli/v2"
)

// The client commands (device, site, cluster, package, task, event, audit,
// cache, db, support, offline kit/import) talk to a node's admin API. What
// they share lives here: the flags, the HTTP client, and apiCommand, which
// makes a command of one API call.

var clientFlags = []cli.Flag{
	&cli.StringFlag{Name: "server", Usage: "admin API base URL of a central or relay node", EnvVars: []string{"EDGESYNC_SERVER"}, Value: "https://127.0.0.1:7080"},
	&cli.StringFlag{Name: "token", Usage: "bearer token: an account's API token (`token create`, `account signin`) or the bootstrap admin token", EnvVars: []string{"EDGESYNC_TOKEN"}},
	&cli.StringFlag{Name: "ca", Usage: "CA certificate file (ca.crt) that signed the server's certificate", EnvVars: []string{"EDGESYNC_CA"}},
	&cli.BoolFlag{Name: "json", Usage: "print JSON"},
}

// callTimeout bounds one JSON call. Uploads, backups and imports stream
// for as long as they take, bounded by the command's context only.
const callTimeout = 30 * time.Second

// maxAnswer caps what the client reads of one answer.
const maxAnswer = 64 << 20

// adminClient is the small HTTP client of the admin commands.
type adminClient struct {
	base  string
	token string
	hc    *http.Client // no Timeout: see callTimeout
}

func newAdminClient(c *cli.Context) (*adminClient, error) { return newClient(c, true) }

// newClient is newAdminClient; without needToken it may have none (sign-in).
func newClient(c *cli.Context, needToken bool) (*adminClient, error) {
	base := strings.TrimRight(c.String("server"), "/")
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, usageError("--server %q: want an https://HOST:PORT URL", base)
	}
	if c.String("token") == "" && needToken {
		return nil, usageError("an admin token is required (--token or EDGESYNC_TOKEN): the bootstrap admin token or an account's API token")
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
		Transport: &http.Transport{TLSClientConfig: tlsConf},
	}}, nil
}

// open sends one request (body nil for none; size -1 when unknown) and
// returns a 2xx response with its body still open. Any other answer is an
// error that names the route (not the query), the status, and the
// server's message and code.
func (a *adminClient) open(ctx context.Context, method, path, contentType string, body io.Reader, size int64) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	route, _, _ := strings.Cut(path, "?")
	resp, err := a.hc.Do(req)
	if err != nil {
		var uerr x509.UnknownAuthorityError
		if errors.As(err, &uerr) {
			return nil, fmt.Errorf("%s: server certificate not trusted: pass --ca with the site or central ca.crt", a.base)
		}
		return nil, fmt.Errorf("%s %s: %w", method, route, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	// Admin APIs answer {"code","message"}; raft membership calls {"code","error"}.
	var e struct {
		Code    any    `json:"code"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && (e.Message != "" || e.Error != "") {
		return nil, fmt.Errorf("%s %s: %s: %s%s (%v)", method, route, resp.Status, e.Message, e.Error, e.Code)
	}
	return nil, fmt.Errorf("%s %s: %s", method, route, resp.Status)
}

// decode reads a JSON answer into out (nil: the answer is dropped).
func decode(resp *http.Response, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	if out == nil || len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("%s %s: bad answer: %w", resp.Request.Method, resp.Request.URL.Path, err)
	}
	return nil
}

// call sends in as JSON (nil: no body) and decodes the answer into out.
func (a *adminClient) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var body io.Reader
	var size int64
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, size = bytes.NewReader(b), int64(len(b))
	}
	resp, err := a.open(ctx, method, path, "application/json", body, size)
	if err != nil {
		return err
	}
	return decode(resp, out)
}

// apiRequest is one admin API call.
type apiRequest struct {
	Method string
	Path   string // with the query
	Body   any    // sent as JSON; nil for none
}

func getRequest(path string) apiRequest { return apiRequest{Method: http.MethodGet, Path: path} }

func postRequest(path string, body any) apiRequest {
	return apiRequest{Method: http.MethodPost, Path: path, Body: body}
}

func deleteRequest(path string) apiRequest { return apiRequest{Method: http.MethodDelete, Path: path} }

// apiCommand is a client command that makes one admin API call: Request
// builds the call from the arguments and flags, Print shows the answer to
// a person, and --json prints it as JSON. Flags may follow the arguments.
type apiCommand[T any] struct {
	Name, Usage, UsageText, Description string
	Flags                               []cli.Flag // the command's own; clientFlags are added
	Args                                int        // positional arguments required
	OptionalArgs                        int        // and how many more it takes
	Request                             func(c *cli.Context, args []string) (apiRequest, error)
	Print                               func(c *cli.Context, v T) error
}

func (s apiCommand[T]) command() *cli.Command {
	return &cli.Command{
		Name: s.Name, Usage: s.Usage, UsageText: s.UsageText, Description: s.Description,
		Flags: append(append([]cli.Flag{}, s.Flags...), clientFlags...),
		Action: func(c *cli.Context) error {
			args, err := interspersed(c, s.Args, s.Args+s.OptionalArgs, s.UsageText)
			if err != nil {
				return err
			}
			req, err := s.Request(c, args)
			if err != nil {
				return err
			}
			v, err := fetch[T](c, req)
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, v)
			}
			return s.Print(c, v)
		},
	}
}

// fetch makes one call with the command's client flags.
func fetch[T any](c *cli.Context, req apiRequest) (T, error) {
	var v T
	a, err := newAdminClient(c)
	if err != nil {
		return v, err
	}
	return v, a.call(c.Context, req.Method, req.Path, req.Body, &v)
}

// interspersed returns the positional arguments of c and applies flags
// written after them (`package add FILE --name N`), which urfave/cli v2
// leaves as arguments. It wants between min and max positional arguments.
func interspersed(c *cli.Context, min, max int, usage string) ([]string, error) {
	kind := map[string]bool{} // name → is a bool flag
	for _, f := range c.Command.Flags {
		_, b := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			kind[n] = b
		}
	}
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			pos = append(pos, arg)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		isBool, known := kind[name]
		if !known {
			return nil, usageError("flag provided but not defined: %s\nusage: %s", arg, usage)
		}
		if !hasVal {
			if isBool {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				return nil, usageError("flag %s needs a value\nusage: %s", arg, usage)
			}
		}
		if err := c.Set(name, val); err != nil {
			return nil, usageError("%s: %v", arg, err)
		}
	}
	if max == 0 && len(pos) > 0 {
		return nil, usageError("%s takes no arguments, got %q\nusage: %s", c.Command.FullName(), pos[0], usage)
	}
	if len(pos) < min || len(pos) > max {
		want := fmt.Sprint(min)
		if max > min {
			want = fmt.Sprintf("%d to %d", min, max)
		}
		return nil, usageError("want %s argument(s), got %d\nusage: %s", want, len(pos), usage)
	}
	return pos, nil
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
