package probe

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

// FuzzCollect: whatever the machine's os-release, dpkg status, cpuinfo,
// meminfo, DMI strings and utmp hold, the inventory Collect builds is
// accepted by the relay's validator (a record refused for a control
// character or bad UTF-8 would be refused on every run, forever), unless it
// is simply too large.
func FuzzCollect(f *testing.F) {
	read := func(p string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata/root", p))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	f.Add(read("etc/os-release"), read("var/lib/dpkg/status"), read("proc/cpuinfo"), read("proc/meminfo"), read("sys/class/dmi/id/product_name"), makeUtmp("alice", "bob"))
	f.Add([]byte("NAME=\"A\x01\"\nVERSION_ID=\xff\n"), []byte("Package: p\x00\nStatus: install ok installed\nVersion: 1\x1b[31m\nMaintainer: \xc3\x28\n\n"),
		[]byte("model name\t: \x7f\n"), []byte("MemTotal: 99999999999999999999 kB\n"), []byte("Model\x07X\n"), makeUtmp("ev\x01il\xff"))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, []byte{}, []byte{})
	f.Fuzz(func(t *testing.T, osRelease, dpkg, cpuinfo, meminfo, model, utmp []byte) {
		root := t.TempDir()
		if err := os.CopyFS(root, os.DirFS("testdata/root")); err != nil {
			t.Fatal(err)
		}
		for p, b := range map[string][]byte{
			"etc/os-release": osRelease, "var/lib/dpkg/status": dpkg, "proc/cpuinfo": cpuinfo,
			"proc/meminfo": meminfo, "sys/class/dmi/id/product_name": model, "run/utmp": utmp,
		} {
			full := filepath.Join(root, p)
			_ = os.MkdirAll(filepath.Dir(full), 0o755)
			if err := os.WriteFile(full, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		inv, _ := Collect(context.Background(), Options{Root: root})
		payload, err := json.Marshal(inv)
		if err != nil {
			t.Fatalf("inventory does not marshal: %v", err)
		}
		now := time.Now()
		r := record.Record{DeviceID: record.NewDeviceID(), Seq: 1, Kind: record.KindInventory, CollectedAt: now, Schema: record.SchemaVersion, Payload: payload}
		if err := record.Validate(&r, now, record.DefaultLimits()); err != nil {
			if ve, ok := errors.AsType[*record.ValidationError](err); ok && ve.Code == record.CodeTooLarge {
				return
			}
			t.Fatalf("collected inventory is refused: %v", err)
		}
	})
}

// FuzzParseRegExport: a regedit export, however damaged, either parses or
// fails with errRegExport; never panics. What parses feeds buildWindows,
// whose inventory the relay accepts once cleaned.
func FuzzParseRegExport(f *testing.F) {
	for _, n := range []string{"currentversion.reg", "uninstall.reg"} {
		b, err := os.ReadFile("testdata/windows/" + n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("Windows Registry Editor Version 5.00\n[K]\n\"A\"=hex(7):61,00,\\\n  62\n@=\"x\\\"\"\n"))
	f.Add([]byte("\xff\xfe"))
	now := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := parseRegExport(b)
		if err != nil {
			if !errors.Is(err, errRegExport) {
				t.Fatalf("error %v does not wrap errRegExport", err)
			}
			return
		}
		src := &winSources{Uninstall: uninstallFromExport(keys)}
		if len(keys) > 0 {
			src.CurrentVersion = &keys[0]
		}
		inv := buildWindows(src)
		cleanInventory(&inv)
		payload, err := json.Marshal(inv)
		if err != nil {
			t.Fatal(err)
		}
		r := &record.Record{DeviceID: "0123456789abcdef0123456789abcdef", Seq: 1, Kind: record.KindInventory,
			CollectedAt: now, Schema: record.SchemaVersion, Payload: payload}
		var ve *record.ValidationError
		if err := record.Validate(r, now, record.Limits{}); err != nil && !(errors.As(err, &ve) && ve.Code == record.CodeTooLarge) {
			t.Fatalf("Windows inventory refused: %v", err)
		}
	})
}

// FuzzLinuxNetworkFiles: /proc/net/route, resolv.conf and passwd parsers
// never panic and return only well-formed addresses.
func FuzzLinuxNetworkFiles(f *testing.F) {
	for _, p := range []string{"proc/net/route", "etc/resolv.conf", "etc/passwd"} {
		b, err := os.ReadFile(filepath.Join("testdata/root", p))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, gws := range parseProcRoute(s) {
			for _, g := range gws {
				if net.ParseIP(g) == nil {
					t.Fatalf("gateway %q is no IP", g)
				}
			}
		}
		for _, d := range parseResolvConf(s) {
			if net.ParseIP(d) == nil {
				t.Fatalf("DNS server %q is no IP", d)
			}
		}
		for _, u := range parsePasswd(s) {
			if u == "" || strings.Contains(u, ":") {
				t.Fatalf("user %q", u)
			}
		}
	})
}
