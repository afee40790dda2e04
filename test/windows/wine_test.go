//go:build !windows

package windows

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/test/procnet"
)

// run is one finished command: its output and exit code.
type run struct {
	out, errOut string
	code        int
}

func (r run) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.out, r.errOut)
}

func execute(ctx context.Context, env []string, name string, args ...string) (run, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	// The Wine process that boots a session leaves its stdio to the
	// session's system processes (services.exe, ...), which outlive it: do
	// not wait for their end of the pipes.
	cmd.WaitDelay = 3 * time.Second
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	r := run{out: out.String(), errOut: errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code, err = ee.ExitCode(), nil
	}
	return r, err
}

// winPath is the Windows name of a Unix path under Wine's Z: drive.
func winPath(p string) string { return `Z:` + strings.ReplaceAll(p, "/", `\`) }

type harness struct {
	t        *testing.T
	exe, bin string
	net      *procnet.Net
	c1, r1   *procnet.Proc
	token    string // the site join token
	state    string // the Windows agent's state dir (Unix path)
}

// wine runs edgesync.exe under Wine.
func (h *harness) wine(ctx context.Context, env []string, args ...string) run {
	h.t.Helper()
	r, err := execute(ctx, env, "wine", append([]string{h.exe}, args...)...)
	if err != nil {
		h.t.Fatalf("wine edgesync.exe %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// linux runs the Linux edgesync.
func (h *harness) linux(ctx context.Context, args ...string) run {
	h.t.Helper()
	r, err := execute(ctx, nil, h.bin, args...)
	if err != nil {
		h.t.Fatalf("edgesync %s: %v", strings.Join(args, " "), err)
	}
	return r
}

func (h *harness) client(p *procnet.Proc) []string {
	return []string{"--server", p.URL, "--token", h.net.AdminToken, "--ca", filepath.Join(h.net.PKIDir, "ca.crt")}
}

func (h *harness) winClient(p *procnet.Proc) []string {
	return []string{"--server", p.URL, "--token", h.net.AdminToken, "--ca", winPath(filepath.Join(h.net.PKIDir, "ca.crt"))}
}

func (h *harness) device(ctx context.Context, id string) (central.Device, error) {
	var d central.Device
	err := h.c1.Get(ctx, "/api/v1/devices/"+id, &d)
	return d, err
}

func (h *harness) history(ctx context.Context, id string) ([]central.Revision, error) {
	var revs []central.Revision
	err := h.c1.Get(ctx, "/api/v1/devices/"+id+"/history", &revs)
	return revs, err
}

func TestWine(t *testing.T) {
	exe := os.Getenv("EDGESYNC_WINE_EXE")
	if exe == "" {
		t.Skip("EDGESYNC_WINE_EXE not set: run make test-windows")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := procnet.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	net, err := procnet.New(bin, dir)
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		net.Log = os.Stderr
	}
	h := &harness{t: t, exe: exe, bin: bin, net: net, state: filepath.Join(dir, "winagent")}
	if h.c1, err = net.Central("c1", true, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.c1.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.c1.Kill)
	if h.r1, err = net.Relay("branch", "r1", []string{h.c1.SyncAddr("quic")}, "quic", true, ""); err != nil {
		t.Fatal(err)
	}
	if err := h.r1.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.r1.Kill)
	if h.token, err = h.r1.JoinToken(ctx); err != nil {
		t.Fatal(err)
	}
	if err := procnet.Wait(ctx, func() error {
		var st procnet.RelayStatus
		if err := h.r1.Get(ctx, "/api/v1/cluster", &st); err != nil {
			return err
		}
		if st.Raft.State != "Leader" {
			return fmt.Errorf("relay is %s", st.Raft.State)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	id := h.agentOnce(ctx)
	h.offlineKit(ctx, id)
	h.clientCommands(ctx, id)
	t.Run("service", func(t *testing.T) { h.service(ctx, t, id) })
}

// agentOnce runs `agent run --once` under Wine and waits for the device's
// Windows inventory at central.
func (h *harness) agentOnce(ctx context.Context) string {
	t := h.t
	r := h.wine(ctx, nil, "agent", "run", "--once", "--relay", h.r1.URL, "--join-token", h.token, "--state", winPath(h.state))
	if r.code != 0 {
		t.Fatalf("agent run --once under Wine: %s", r)
	}
	idb, err := os.ReadFile(filepath.Join(h.state, "device_id"))
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(string(idb))
	var d central.Device
	if err := procnet.Wait(ctx, func() error {
		var err error
		if d, err = h.device(ctx, id); err != nil {
			return err
		}
		if len(d.Inventory) == 0 {
			return errors.New("no inventory yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("the Windows agent's inventory never reached central: %v", err)
	}
	var inv record.Inventory
	if err := json.Unmarshal(d.Inventory, &inv); err != nil {
		t.Fatal(err)
	}
	t.Logf("device %s %q at central: os %q, vendor %q, %d software, %d updates, warnings %v",
		id, d.Hostname, inv.OS.Name, inv.Hardware.Vendor, len(inv.Software), len(inv.Updates), inv.Warnings)
	switch {
	case inv.OS.Family != "windows" || !strings.Contains(inv.OS.Name, "Windows"):
		t.Errorf("os = %+v, want a Windows OS", inv.OS)
	case inv.Hardware.Vendor != "The Wine Project":
		t.Errorf("vendor = %q, want Wine's Win32_ComputerSystem answer", inv.Hardware.Vendor)
	case inv.Hostname == "" || inv.Hardware.CPUModel == "" || inv.Hardware.MemoryBytes == 0 || len(inv.Hardware.Interfaces) == 0:
		t.Errorf("hostname, CPU, memory or interfaces empty: %+v", inv.Hardware)
	case d.Channel != string(record.ChannelOnline):
		t.Errorf("channel %q, want online", d.Channel)
	}
	if p := os.Getenv("EDGESYNC_WINE_REPORT"); p != "" {
		writeReport(t, p, inv)
	}
	return id
}

// offlineKit makes a kit for Windows, collects onto it under Wine through
// collect.cmd and through `offline collect`, and imports the media at the
// Linux relay and at central.
func (h *harness) offlineKit(ctx context.Context, id string) {
	t := h.t
	before, err := h.history(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	medium := filepath.Join(filepath.Dir(h.state), "stick")
	r := h.linux(ctx, append([]string{"offline", "kit", "create", "--out", medium, "--windows-binary", h.exe, "--name", "wine"}, h.client(h.c1)...)...)
	if r.code != 0 || !strings.Contains(r.out, "windows collector from "+h.exe) {
		t.Fatalf("kit create: %s", r)
	}
	root := filepath.Join(medium, offline.RootDir)
	// The collector on the stick uses the agent's device identity, as on a
	// PC whose agent is installed but offline.
	env := []string{"EDGESYNC_AGENT_STATE=" + winPath(h.state)}
	launch := func(args ...string) run {
		r, err := execute(ctx, env, "wine", append([]string{"cmd", "/c", winPath(filepath.Join(root, offline.LauncherName))}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := launch("/silent"); r.code != 0 {
		t.Fatalf("collect.cmd /silent: %s", r)
	}
	// Wine hands the Unix side only the low 8 bits of an exit code.
	if r := launch("/bogus"); r.code != offline.ExitUsage&0xff || !strings.Contains(r.errOut, "unknown option") {
		t.Fatalf("collect.cmd /bogus: %s, want exit %d (10011) and the usage", r, offline.ExitUsage&0xff)
	}
	records, _ := filepath.Glob(filepath.Join(root, offline.DataDir, id, "*"+offline.SealedExt))
	if len(records) != 1 {
		t.Fatalf("collect.cmd wrote %v, want one sealed record for %s", records, id)
	}
	if r := h.linux(ctx, "offline", "verify", "--json", medium); r.code != 0 {
		t.Fatalf("verify of the Windows record on Linux: %s", r)
	}
	if r := h.linux(ctx, append([]string{"offline", "import", "--json"}, append(h.client(h.r1), medium)...)...); r.code != 0 {
		t.Fatalf("import at the relay: %s", r)
	}

	// A second stick, Windows only, written by `offline collect` itself and
	// imported at central.
	medium2 := filepath.Join(filepath.Dir(h.state), "stick2")
	if r := h.linux(ctx, append([]string{"offline", "kit", "create", "--out", medium2, "--platform", "windows", "--windows-binary", h.exe}, h.client(h.c1)...)...); r.code != 0 {
		t.Fatalf("kit create --platform windows: %s", r)
	}
	if _, err := os.Stat(filepath.Join(medium2, offline.RootDir, offline.BinaryName)); !os.IsNotExist(err) {
		t.Errorf("a Windows-only kit carries the Linux binary: %v", err)
	}
	if r := h.wine(ctx, env, "offline", "collect", "--kit", winPath(medium2), "--silent"); r.code != 0 {
		t.Fatalf("offline collect under Wine: %s", r)
	}
	if r := h.linux(ctx, append([]string{"offline", "import", "--json"}, append(h.client(h.c1), medium2)...)...); r.code != 0 {
		t.Fatalf("import at central: %s", r)
	}
	if err := procnet.Wait(ctx, func() error {
		revs, err := h.history(ctx, id)
		if err != nil {
			return err
		}
		usb := 0
		for _, rv := range revs {
			if rv.Channel == string(record.ChannelUSB) {
				usb++
			}
		}
		if usb < 2 || len(revs) < len(before)+2 {
			return fmt.Errorf("%d revisions, %d from usb; want both media", len(revs), usb)
		}
		return nil
	}); err != nil {
		t.Fatalf("the Windows media never reached central: %v", err)
	}
}

// clientCommands runs admin commands from Windows and checks that the
// appliance roles refuse to start there.
func (h *harness) clientCommands(ctx context.Context, id string) {
	t := h.t
	r := h.wine(ctx, nil, append([]string{"device", "list", "--json"}, h.winClient(h.c1)...)...)
	if r.code != 0 || !strings.Contains(r.out, id) {
		t.Fatalf("device list from Windows: %s", r)
	}
	r = h.wine(ctx, nil, append(append([]string{"device", "show", "--json"}, h.winClient(h.c1)...), id)...)
	if r.code != 0 || !strings.Contains(r.out, "The Wine Project") {
		t.Fatalf("device show from Windows: %s", r)
	}
	r = h.wine(ctx, nil, "relay", "run", "--data", `C:\relay`)
	if r.code != 2 || !strings.Contains(r.errOut, "not on Windows") {
		t.Fatalf("relay run on Windows: %s, want exit 2 and a one-line refusal", r)
	}
}

// service installs, starts, stops and removes the agent service under
// Wine's service manager, and checks the service reports to the relay.
func (h *harness) service(ctx context.Context, t *testing.T, id string) {
	status := func() (map[string]any, error) {
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		r := h.wine(cctx, nil, "agent", "service", "status", "--json")
		var st map[string]any
		if r.code != 0 || json.Unmarshal([]byte(r.out), &st) != nil {
			return nil, fmt.Errorf("service status: %s", r)
		}
		return st, nil
	}
	waitState := func(want string) map[string]any {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		var st map[string]any
		if err := procnet.Wait(wctx, func() error {
			var err error
			if st, err = status(); err != nil {
				return err
			}
			if st["state"] != want {
				return fmt.Errorf("service %v", st)
			}
			return nil
		}); err != nil {
			t.Fatalf("service never %s: %v", want, err)
		}
		return st
	}
	// Wine ends its session (services.exe with it) when the last Windows
	// process exits, and the next Wine process boots it again, starting
	// every automatic service. A process that waits on stdin holds the
	// session, so the states below are the ones the commands set.
	endSession := keepSession(t)
	// A run that died half-way may have left it installed.
	h.wine(ctx, nil, "agent", "service", "stop")
	h.wine(ctx, nil, "agent", "service", "uninstall")
	if st, err := status(); err != nil || st["installed"] == true {
		t.Fatalf("service still installed after uninstall: %v %v", st, err)
	}
	revs, err := h.history(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	r := h.wine(ctx, nil, "agent", "service", "install", "--relay", h.r1.URL, "--join-token", h.token, "--state", winPath(h.state))
	if r.code != 0 {
		t.Fatalf("service install: %s", r)
	}
	t.Cleanup(func() {
		h.wine(context.Background(), nil, "agent", "service", "stop")
		h.wine(context.Background(), nil, "agent", "service", "uninstall")
	})
	st := waitState("stopped")
	if st["installed"] != true {
		t.Fatalf("after install: %v", st)
	}
	if st["start_type"] != "automatic" || !strings.Contains(fmt.Sprint(st["command"]), "agent service run --service --state") {
		t.Errorf("installed service: %v, want start type automatic and the agent's command line", st)
	}
	// Installing again updates the service in place (a new relay list).
	if r := h.wine(ctx, nil, "agent", "service", "install", "--relay", h.r1.URL, "--join-token", h.token, "--state", winPath(h.state)); r.code != 0 {
		t.Fatalf("a second install: %s", r)
	}
	if r := h.wine(ctx, nil, "agent", "service", "start"); r.code != 0 {
		t.Fatalf("service start: %s", r)
	}
	waitState("running")
	// The service is the agent: its first report is a new revision.
	if err := procnet.Wait(ctx, func() error {
		now, err := h.history(ctx, id)
		if err != nil {
			return err
		}
		if len(now) <= len(revs) {
			return fmt.Errorf("%d revisions, had %d", len(now), len(revs))
		}
		return nil
	}); err != nil {
		st, _ := status()
		t.Fatalf("the service never reported: %v (service %v)", err, st)
	}
	if r := h.wine(ctx, nil, "agent", "service", "stop"); r.code != 0 {
		t.Fatalf("service stop: %s", r)
	}
	waitState("stopped")
	// A reboot, as far as Wine has one: the next session's service manager
	// starts the automatic service.
	endSession()
	waitState("running")
	if r := h.wine(ctx, nil, "agent", "service", "stop"); r.code != 0 {
		t.Fatalf("service stop after the reboot: %s", r)
	}
	if r := h.wine(ctx, nil, "agent", "service", "uninstall"); r.code != 0 {
		t.Fatalf("service uninstall: %s", r)
	}
	if st, err := status(); err != nil || st["installed"] == true {
		t.Fatalf("after uninstall: %v %v", st, err)
	}
}

// keepSession starts a Windows process that lives until the returned
// function ends it and waits for the Wine session to close.
func keepSession(t *testing.T) func() {
	cmd := exec.Command("wine", "cmd", "/c", "set /p x=")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	end := func() {
		once.Do(func() {
			in.Close()
			cmd.Wait()
			exec.Command("wineserver", "-w").Run()
		})
	}
	t.Cleanup(end)
	return end
}

// writeReport records which inventory fields Wine filled and which it left
// empty, for the issue note and docs.
func writeReport(t *testing.T, path string, inv record.Inventory) {
	filled, empty := []string{}, []string{}
	var walk func(prefix string, v reflect.Value)
	walk = func(prefix string, v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			name := prefix + strings.Split(f.Tag.Get("json"), ",")[0]
			fv := v.Field(i)
			if fv.Kind() == reflect.Struct && f.Type.String() != "time.Time" {
				walk(name+".", fv)
				continue
			}
			if fv.IsZero() || (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) && fv.Len() == 0 {
				empty = append(empty, name)
			} else {
				filled = append(filled, name)
			}
		}
	}
	walk("", reflect.ValueOf(inv))
	b, err := json.MarshalIndent(map[string]any{"filled": filled, "empty": empty, "warnings": inv.Warnings, "inventory": inv}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("inventory report %s: filled %v; empty %v", path, filled, empty)
}
