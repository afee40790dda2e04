package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func TestParseAt(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "+30m", want: now.Add(30 * time.Minute)},
		{in: "2026-05-01T22:00:00+02:00", want: time.Date(2026, 5, 1, 20, 0, 0, 0, time.UTC)},
		{in: "2026-05-01 22:00", want: time.Date(2026, 5, 1, 22, 0, 0, 0, time.Local)},
		{in: "tomorrow", bad: true},
		{in: "+-5m", bad: true},
		{in: "+5", bad: true},
	} {
		got, err := parseAt(tc.in, now)
		if tc.bad != (err != nil) || (!tc.bad && !got.Equal(tc.want)) {
			t.Errorf("parseAt(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.bad)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 3 << 20: "3.0 MiB", 5 << 30: "5.0 GiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// runApp runs the CLI in-process and returns its exit code (from a
// cli.ExitCoder) and output.
func runApp(t *testing.T, args ...string) (int, string) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer, app.ErrWriter = &out, &out
	code := 0
	app.ExitErrHandler = func(c *cli.Context, err error) {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode()
		} else if err != nil {
			code = 1
		}
		if err != nil {
			out.WriteString(err.Error())
		}
	}
	if err := app.Run(append([]string{"edgesync"}, args...)); err != nil && code == 0 {
		code = 1
	}
	return code, out.String()
}

// Usage errors exit 2 before any request is made; flags may follow FILE.
func TestDistributionUsageErrors(t *testing.T) {
	t.Setenv("EDGESYNC_TOKEN", "x")
	t.Setenv("EDGESYNC_SERVER", "https://127.0.0.1:1")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"package", "add"}, "want 1 argument"},
		{[]string{"package", "add", "/etc/hostname", "--name", "a"}, "--version required"},
		{[]string{"package", "add", "/etc/hostname", "--name", "a", "--version", "1", "--bogus"}, "not defined"},
		{[]string{"package", "add", "/etc/hostname", "--name", "a", "--version", "1", "--type", "zip"}, "want install or file"},
		{[]string{"package", "add", "/etc/hostname", "--name", "a", "--version", "1", "--type", "file", "--dest", "rel"}, "absolute"},
		{[]string{"package", "add", "/nonexistent/file", "--name", "a", "--version", "1", "--command", "true"}, "FILE"},
		{[]string{"package", "export", "--format", "xml"}, "want csv"},
		{[]string{"package", "export", "--encoding", "latin1"}, "--encoding"},
		{[]string{"task", "create", "--site", "s"}, "--package is required"},
		{[]string{"task", "create", "--package", "a@1"}, "exactly one of"},
		{[]string{"task", "create", "--package", "a@1", "--devices", "nothex"}, "not a device ID"},
		{[]string{"task", "show"}, "want 1 argument"},
		{[]string{"task", "stop", "t1", "--device", "x"}, "--device"},
		{[]string{"cache", "list", "extra"}, "no arguments"},
	} {
		code, out := runApp(t, tc.args...)
		if code != 2 || !strings.Contains(out, tc.want) {
			t.Errorf("edgesync %s: exit %d, output %q; want exit 2 mentioning %q", strings.Join(tc.args, " "), code, out, tc.want)
		}
	}
}

// FuzzParseAt: --at never panics; a relative time is never in the past and
// an accepted absolute time prints back (RFC 3339) to one that parses to the
// same instant.
func FuzzParseAt(f *testing.F) {
	for _, s := range []string{"+30m", "2026-05-01T22:00:00+02:00", "2026-05-01 22:00", "2026-05-01T22:00", "tomorrow", "+-5m", "+5", "+9999999999h", "2026-02-30 10:00"} {
		f.Add(s)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := parseAt(s, now)
		if err != nil {
			return
		}
		if strings.HasPrefix(s, "+") {
			if got.Before(now) {
				t.Fatalf("parseAt(%q) = %v, before now", s, got)
			}
			return
		}
		again, err := parseAt(got.Format(time.RFC3339Nano), now)
		if err != nil || !again.Equal(got) {
			t.Fatalf("parseAt(%q) = %v; its RFC 3339 form gives %v, %v", s, got, again, err)
		}
	})
}
