package test

import (
	"bufio"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// unitFile is a parsed systemd unit: section -> key -> values in order
// (a key may repeat; an empty assignment is kept as "").
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, ";"):
		case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
			section = l[1 : len(l)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok || section == "" || strings.HasSuffix(l, "\\") {
				t.Fatalf("%s:%d: not KEY=VALUE in a section: %q", path, line, l)
			}
			u[section][strings.TrimSpace(k)] = append(u[section][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// TestSystemdUnits: the shipped units run the node with `run` and neither
// --bootstrap nor --join (restart is just run), restart it on failure, and
// keep the hardened sandbox, with the data directory the only writable path.
func TestSystemdUnits(t *testing.T) {
	for _, role := range []string{"relay", "central"} {
		t.Run(role, func(t *testing.T) {
			u := parseUnit(t, filepath.Join("..", "packaging", "systemd", "edgesync-"+role+".service"))
			svc := u["Service"]
			if svc == nil || u["Unit"] == nil || u["Install"] == nil {
				t.Fatalf("sections: want Unit, Service and Install, have %v", keys(u))
			}
			exec := svc["ExecStart"]
			if len(exec) != 1 {
				t.Fatalf("ExecStart = %q, want one", exec)
			}
			args := strings.Fields(exec[0])
			if len(args) < 3 || filepath.Base(args[0]) != "edgesync" || args[1] != role || args[2] != "run" {
				t.Fatalf("ExecStart = %q, want edgesync %s run ...", exec[0], role)
			}
			for _, a := range args {
				if a == "--bootstrap" || a == "--join" || strings.HasPrefix(a, "--bootstrap=") || strings.HasPrefix(a, "--join=") {
					t.Fatalf("ExecStart has %s: restart must be just run: %q", a, exec[0])
				}
			}
			data := ""
			if i := slices.Index(args, "--data"); i > 0 && i+1 < len(args) {
				data = args[i+1]
			}
			if data == "" {
				t.Fatalf("ExecStart names no --data: %q", exec[0])
			}
			want := map[string]string{
				"Restart":                 "on-failure",
				"ReadWritePaths":          data,
				"NoNewPrivileges":         "yes",
				"PrivateTmp":              "yes",
				"PrivateDevices":          "yes",
				"ProtectSystem":           "strict",
				"ProtectHome":             "yes",
				"ProtectKernelTunables":   "yes",
				"ProtectKernelModules":    "yes",
				"ProtectKernelLogs":       "yes",
				"ProtectControlGroups":    "yes",
				"RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
				"RestrictNamespaces":      "yes",
				"RestrictSUIDSGID":        "yes",
				"LockPersonality":         "yes",
				"SystemCallArchitectures": "native",
				"CapabilityBoundingSet":   "",
			}
			for k, v := range want {
				got, ok := svc[k]
				if !ok || !slices.Contains(got, v) {
					t.Errorf("[Service] %s = %q, want %q", k, got, v)
				}
			}
			if !slices.Contains(svc["SystemCallFilter"], "@system-service") {
				t.Errorf("SystemCallFilter = %q, want @system-service", svc["SystemCallFilter"])
			}
			if rw := svc["ReadWritePaths"]; len(rw) != 1 || len(strings.Fields(rw[0])) != 1 {
				t.Errorf("ReadWritePaths = %q: the data directory must be the only writable path", rw)
			}
			if u := svc["User"]; len(u) != 1 || u[0] == "" || u[0] == "root" {
				t.Errorf("User = %q, want an unprivileged user", u)
			}
		})
	}
}

func keys(u unitFile) []string {
	var out []string
	for k := range u {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
