package probe

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
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
