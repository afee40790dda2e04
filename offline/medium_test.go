package offline_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/offline"
)

// fakeProgram writes a file that starts with magic, as a binary would.
func fakeProgram(t *testing.T, magic string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prog")
	if err := os.WriteFile(p, append([]byte(magic), bytes.Repeat([]byte{0}, 4096)...), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParsePlatforms(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []offline.Platform
		wantErr string
	}{
		{"windows,linux", []offline.Platform{offline.PlatformWindows, offline.PlatformLinux}, ""},
		{" Linux ", []offline.Platform{offline.PlatformLinux}, ""},
		{"windows,windows", []offline.Platform{offline.PlatformWindows}, ""},
		{"", nil, "no platform"},
		{",", nil, "no platform"},
		{"macos", nil, `unknown platform "macos"`},
	} {
		got, err := offline.ParsePlatforms(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParsePlatforms(%q) error = %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("ParsePlatforms(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("ParsePlatforms(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestWriteMedium(t *testing.T) {
	k, kitJSON := testKit(t)
	exe, elf := fakeProgram(t, "MZ\x90\x00"), fakeProgram(t, "\x7fELF")

	t.Run("both platforms", func(t *testing.T) {
		out := t.TempDir()
		root, err := offline.WriteMedium(offline.MediumConfig{Root: out, Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformWindows: exe, offline.PlatformLinux: elf}})
		if err != nil {
			t.Fatal(err)
		}
		if root != filepath.Join(out, offline.RootDir) {
			t.Fatalf("root = %s", root)
		}
		names := map[string]bool{}
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			n := e.Name()
			// FAT32/exFAT: no reserved characters, no two names equal
			// without regard to case, nothing but files and Data.
			if strings.ContainsAny(n, `:*?"<>|\`) {
				t.Errorf("%q is not a FAT-safe name", n)
			}
			if names[strings.ToLower(n)] {
				t.Errorf("%q clashes with another name on a case-insensitive medium", n)
			}
			names[strings.ToLower(n)] = true
			if e.Type()&os.ModeSymlink != 0 {
				t.Errorf("%s is a symlink", n)
			}
		}
		for _, want := range []string{offline.KitFile, offline.DataDir, offline.WindowsBinaryName, offline.LauncherName,
			offline.BinaryName, offline.ShellLauncherName} {
			if !names[strings.ToLower(want)] {
				t.Errorf("medium lacks %s (has %v)", want, names)
			}
		}
		if len(names) != 6 {
			t.Errorf("medium holds %v, want exactly the kit, Data, two binaries and two launchers", names)
		}
		if got, _ := os.ReadFile(filepath.Join(root, offline.WindowsBinaryName)); !bytes.HasPrefix(got, []byte("MZ")) {
			t.Errorf("edgesync.exe is not the Windows binary given")
		}
		cmd, err := os.ReadFile(filepath.Join(root, offline.LauncherName))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Count(cmd, []byte("\n")) != bytes.Count(cmd, []byte("\r\n")) || !bytes.HasSuffix(cmd, []byte("\r\n")) {
			t.Errorf("collect.cmd must use CRLF line ends throughout")
		}
		for _, want := range []string{`/u`, `/s`, `/silent`, `exit /b 10011`, `"%~dp0edgesync.exe" offline collect --kit "%~dp0."`} {
			if !bytes.Contains(cmd, []byte(want)) {
				t.Errorf("collect.cmd lacks %q", want)
			}
		}
		if got, err := offline.ParseKit(mustRead(t, filepath.Join(root, offline.KitFile)), nil); err != nil || got.ID != k.ID {
			t.Errorf("kit.json on the medium: %v, %v", got, err)
		}
		leftovers, _ := filepath.Glob(filepath.Join(root, ".tmp-*"))
		if len(leftovers) != 0 {
			t.Errorf("temporary files left: %v", leftovers)
		}
	})

	t.Run("linux only", func(t *testing.T) {
		root, err := offline.WriteMedium(offline.MediumConfig{Root: t.TempDir(), Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformLinux: elf}})
		if err != nil {
			t.Fatal(err)
		}
		for _, absent := range []string{offline.WindowsBinaryName, offline.LauncherName} {
			if _, err := os.Stat(filepath.Join(root, absent)); !os.IsNotExist(err) {
				t.Errorf("%s on a Linux-only medium: %v", absent, err)
			}
		}
	})

	for _, tc := range []struct {
		name    string
		cfg     offline.MediumConfig
		wantErr string
	}{
		{"linux binary as the windows one", offline.MediumConfig{Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformWindows: elf}}, "is not a PE"},
		{"windows binary as the linux one", offline.MediumConfig{Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformLinux: exe}}, "is not an ELF"},
		{"missing binary", offline.MediumConfig{Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformWindows: "/nonexistent/edgesync.exe"}}, "no such file"},
		{"no binary", offline.MediumConfig{Kit: kitJSON}, "no platform binary"},
		{"tampered kit", offline.MediumConfig{Kit: bytes.Replace(kitJSON, []byte("kit-test"), []byte("kit-evil"), 1),
			Binaries: map[offline.Platform]string{offline.PlatformLinux: elf}}, "kit invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			tc.cfg.Root = out
			_, err := offline.WriteMedium(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("WriteMedium error = %v, want %q", err, tc.wantErr)
			}
			if _, err := os.Stat(filepath.Join(out, offline.RootDir)); !os.IsNotExist(err) {
				t.Errorf("a refused medium got an EDGESYNC folder: %v", err)
			}
		})
	}

	t.Run("collect from the medium", func(t *testing.T) {
		root, err := offline.WriteMedium(offline.MediumConfig{Root: t.TempDir(), Kit: kitJSON,
			Binaries: map[offline.Platform]string{offline.PlatformLinux: elf}})
		if err != nil {
			t.Fatal(err)
		}
		inv := func(context.Context) (record.Inventory, error) {
			return record.Inventory{Hostname: "pc1", Software: []record.Software{{Name: "Office"}}}, nil
		}
		path, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: filepath.Dir(root), StateDir: t.TempDir(),
			Silent: true, SkipSoftware: true, Inventory: inv, Now: func() time.Time { return time.Unix(1700000100, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := offline.Verify(filepath.Dir(root), offline.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Counts[offline.OutcomeVerified] != 1 || rep.Rejected() != 0 {
			t.Fatalf("verify of a medium with binaries and launchers: %+v", rep)
		}
		o, err := offline.Open(mustRead(t, path), offline.OpenOptions{KitID: k.ID, KitGen: k.Generation, Now: time.Unix(1700000200, 0)})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(o.Record.Payload, []byte(`"pc1"`)) || bytes.Contains(o.Record.Payload, []byte("Office")) {
			t.Errorf("with SkipSoftware the record must hold no software: %s", o.Record.Payload)
		}
	})
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
