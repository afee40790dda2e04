package test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/relay"
)

// cliResult is one run of the edgesync binary.
type cliResult struct {
	stdout, stderr string
	code           int
}

// cli runs the built edgesync binary with the admin environment of a
// localnet central (env may add or override variables).
type cliRunner struct {
	t   *testing.T
	bin string
	env []string
}

func (r *cliRunner) run(ctx context.Context, env []string, args ...string) cliResult {
	r.t.Helper()
	cmd := exec.CommandContext(ctx, r.bin, args...)
	cmd.Env = append(append(os.Environ(), r.env...), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		r.t.Fatalf("edgesync %s: %v", strings.Join(args, " "), err)
	}
	return res
}

// ok runs a command that must succeed and returns its standard output.
func (r *cliRunner) ok(ctx context.Context, args ...string) string {
	r.t.Helper()
	res := r.run(ctx, nil, args...)
	if res.code != 0 {
		r.t.Fatalf("edgesync %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
	}
	return res.stdout
}

// json runs a command with --json and decodes its output into v.
func (r *cliRunner) json(ctx context.Context, v any, args ...string) {
	r.t.Helper()
	out := r.ok(ctx, append(args, "--json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("edgesync %s --json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// fails runs a command that must exit with code, mentioning want on stderr.
func (r *cliRunner) fails(ctx context.Context, code int, want string, args ...string) {
	r.t.Helper()
	res := r.run(ctx, nil, args...)
	if res.code != code || !strings.Contains(res.stderr, want) {
		r.t.Errorf("edgesync %s: exit %d, stderr %q; want exit %d mentioning %q", strings.Join(args, " "), res.code, res.stderr, code, want)
	}
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// TestDistribution_CLI drives distribution end to end through the edgesync
// binary against a localnet deployment: package add (streamed upload), task
// create --site, task show --json, cache list at the relays; a real agent
// (collector/agent) runs an install task whose command writes a marker and a
// file task that places the file in a temporary folder, and central sees
// both devices' statuses reach successful.
func TestDistribution_CLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const site = "cli"
	bin := edgesyncBinary(t) // first, so the build does not eat the deadline
	n := startNet(t, site, fastCatalog)
	ctx := ctxTimeout(t, 60*time.Second)
	c := n.Centrals[0]
	r := &cliRunner{t: t, bin: bin, env: []string{
		"EDGESYNC_SERVER=" + c.Node.URL(), "EDGESYNC_TOKEN=" + n.AdminToken(), "EDGESYNC_CA=" + n.CAFile(),
	}}
	relayEnv := func(rl int) []string {
		return []string{"EDGESYNC_SERVER=" + n.Sites[site][rl].URL(), "EDGESYNC_TOKEN=" + n.Sites[site][0].Node.AdminToken()}
	}

	// A real agent enrolls and reports once, so central knows the device.
	dir := t.TempDir()
	probe := func(context.Context) (record.Inventory, error) {
		return record.Inventory{Hostname: "cli-pc", OS: record.OS{Name: "Ubuntu", Version: "24.04", Arch: "amd64"}}, nil
	}
	agentCfg := agent.Config{Relays: n.URLs(site), JoinToken: n.JoinToken(site), StateDir: filepath.Join(dir, "agent"), Once: true,
		Logger: testLogger(t), Probe: probe, MaxRetryWait: time.Second}
	a, err := agent.New(agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Run(ctx); err != nil {
		t.Fatalf("agent once: %v", err)
	}
	devID := a.DeviceID()
	waitDrained(t, n, site, 20*time.Second)

	// Two packages: an install script and a data file.
	marker := filepath.Join(dir, "marker")
	script := filepath.Join(dir, "setup.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho installing\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, dataSum := randomBlob(t, 3<<20)
	dataFile := filepath.Join(dir, "payload.bin")
	if err := os.WriteFile(dataFile, data, 0o644); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(dir, "dest")

	// Usage errors exit 2 and change nothing.
	r.fails(ctx, 2, "--version required", "package", "add", dataFile, "--name", "data")
	r.fails(ctx, 2, "needs --dest", "package", "add", dataFile, "--name", "data", "--version", "1", "--type", "file")
	r.fails(ctx, 2, "exactly one of", "task", "create", "--package", "data@1", "--site", site, "--all")
	r.fails(ctx, 2, "--at", "task", "create", "--package", "data@1", "--all", "--at", "soon")
	r.fails(ctx, 2, "argument", "task", "show")

	// Flags after FILE, as in the usage line.
	var inst, file central.Package
	r.json(ctx, &inst, "package", "add", script, "--name", "setup", "--version", "1.0", "--type", "install",
		"--command", `sha256sum "$EDGESYNC_PACKAGE_FILE" | cut -d' ' -f1 > `+marker, "--description", "writes a marker", "-q")
	r.fails(ctx, 1, "mode", "package", "add", dataFile, "--name", "data", "--version", "1", "--type", "file", "--dest", dest, "--mode", "u+x", "-q")
	r.json(ctx, &file, "package", "add", "--name", "data", "--version", "1", "--type", "file", "--dest", dest, "--mode", "750", dataFile)
	if want := fileSum(t, script); inst.ID != "setup@1.0" || inst.SHA256 != want || inst.Type != central.PackageInstall || !inst.Local {
		t.Fatalf("install package %+v, want setup@1.0 with sha256 %s", inst, want)
	}
	if file.ID != "data@1" || file.SHA256 != dataSum || file.Size != int64(len(data)) || file.FileName != "payload.bin" || file.Mode != "0750" {
		t.Fatalf("file package %+v, want data@1, sha256 %s, %d bytes", file, dataSum, len(data))
	}
	r.fails(ctx, 1, "exists", "package", "add", dataFile, "--name", "data", "--version", "1", "--type", "file", "--dest", dest, "-q")
	var pkgs []central.Package
	r.json(ctx, &pkgs, "package", "list")
	if len(pkgs) != 2 {
		t.Fatalf("package list: %d packages, want 2", len(pkgs))
	}
	if csv := r.ok(ctx, "package", "export", "--format", "csv"); !strings.Contains(csv, dataSum) || !strings.HasPrefix(csv, "Package ID,") {
		t.Errorf("package export:\n%s", csv)
	}

	// Tasks for the site: the agent is its only online-managed device.
	r.fails(ctx, 1, "not found", "task", "create", "--package", "nope@1", "--site", site)
	var tInst, tFile central.TaskView
	r.json(ctx, &tInst, "task", "create", "--package", inst.ID, "--site", site)
	r.json(ctx, &tFile, "task", "create", "--package", file.ID, "--devices", devID)
	if tInst.Total != 1 || tFile.Total != 1 || tInst.State != "running" {
		t.Fatalf("tasks %+v and %+v, want 1 target each, running", tInst, tFile)
	}
	r.fails(ctx, 1, "in use", "package", "remove", file.ID)
	r.fails(ctx, 1, "in progress", "task", "remove", tFile.ID)

	// Every relay node has both blobs cached for the active tasks.
	checkFor(t, 30*time.Second, func() error {
		for i := range n.Sites[site] {
			res := r.run(ctx, relayEnv(i), "cache", "list", "--json")
			var st relay.CacheStatus
			if res.code != 0 || json.Unmarshal([]byte(res.stdout), &st) != nil {
				return fmt.Errorf("cache list at relay %d: exit %d %s", i, res.code, res.stderr)
			}
			needed := 0
			for _, b := range st.Blobs {
				if b.Needed && (b.SHA256 == inst.SHA256 || b.SHA256 == file.SHA256) {
					needed++
				}
			}
			if needed != 2 {
				return fmt.Errorf("relay %s has %d of the 2 task blobs", st.Node, needed)
			}
		}
		return nil
	})
	if out := r.ok(ctx, append([]string{"cache", "verify"}, "--server", n.Sites[site][1].URL(), "--token", n.Sites[site][0].Node.AdminToken())...); !strings.Contains(out, "checks out") {
		t.Errorf("cache verify: %s", out)
	}

	// The agent, now running, executes both tasks.
	agentCfg.Once = false
	a, err = agent.New(agentCfg)
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	agentDone := make(chan error, 1)
	go func() { agentDone <- a.Run(actx) }()
	var agentErr error
	stopped := false
	stopAgent := func() {
		if !stopped {
			stopped = true
			stop()
			agentErr = <-agentDone
		}
	}
	t.Cleanup(stopAgent) // before the net closes, if the test ends early

	checkFor(t, 30*time.Second, func() error {
		for _, id := range []string{tInst.ID, tFile.ID} {
			var v central.TaskView
			r.json(ctx, &v, "task", "show", id)
			if v.Completed != 1 || v.Counts[central.StatusSuccessful] != 1 || v.State != "finished" {
				return fmt.Errorf("task %s: %d/%d, counts %v, state %s", id, v.Completed, v.Total, v.Counts, v.State)
			}
			if len(v.Statuses) != 1 || v.Statuses[0].Device != devID || v.Statuses[0].Status != central.StatusSuccessful || v.Statuses[0].Hostname != "cli-pc" {
				return fmt.Errorf("task %s statuses %+v", id, v.Statuses)
			}
		}
		return nil
	})
	stopAgent()
	if agentErr != nil {
		t.Errorf("agent run: %v", agentErr)
	}

	// The install command saw the package bytes; the file is in place.
	if b, err := os.ReadFile(marker); err != nil || strings.TrimSpace(string(b)) != inst.SHA256 {
		t.Errorf("marker = %q, %v; want the install package's sha256 %s", b, err, inst.SHA256)
	}
	if got := fileSum(t, filepath.Join(dest, "payload.bin")); got != dataSum {
		t.Errorf("placed file hashes to %s, want %s", got, dataSum)
	}
	if fi, err := os.Stat(filepath.Join(dest, "payload.bin")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("placed file: %v, %v; want mode 0750 as the package declares", fi.Mode(), err)
	}

	// Human output, then the stop/remove rules through the CLI.
	show := r.ok(ctx, "task", "show", tFile.ID)
	for _, want := range []string{"Progress: 1/1 completed, 0 errors", devID, "successful"} {
		if !strings.Contains(show, want) {
			t.Errorf("task show lacks %q:\n%s", want, show)
		}
	}
	if list := r.ok(ctx, "task", "list"); !strings.Contains(list, tInst.ID) || !strings.Contains(list, "1/1") {
		t.Errorf("task list:\n%s", list)
	}
	r.fails(ctx, 1, "finished", "task", "stop", tFile.ID)
	r.fails(ctx, 1, "no failed or cancelled", "task", "retry", tFile.ID)
	for _, tk := range []string{tInst.ID, tFile.ID} {
		r.ok(ctx, "task", "remove", tk)
	}
	for _, p := range []string{inst.ID, file.ID} {
		r.ok(ctx, "package", "remove", p)
	}
	r.fails(ctx, 1, "not found", "package", "show", file.ID)
}
