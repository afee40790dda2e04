package probe

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

// newFakeRoot copies testdata/root into a temp dir and adds a binary utmp.
func newFakeRoot(t *testing.T, users ...string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS("testdata/root")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "run", "utmp"), makeUtmp(users...), 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

func makeUtmp(users ...string) []byte {
	var b []byte
	// A boot-time entry that must be ignored.
	boot := make([]byte, utmpSize)
	binary.LittleEndian.PutUint16(boot[0:], 2)
	copy(boot[utmpUserOff:], "reboot")
	b = append(b, boot...)
	for _, u := range users {
		e := make([]byte, utmpSize)
		binary.LittleEndian.PutUint16(e[0:], utmpUserProcess)
		copy(e[8:], "pts/0")
		copy(e[utmpUserOff:], u)
		b = append(b, e...)
	}
	return b
}

func TestCollect_FakeRoot(t *testing.T) {
	root := newFakeRoot(t, "alice", "bob", "alice")
	inv, err := Collect(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatalf("Collect() err = %v", err)
	}
	want := record.Inventory{
		Hostname: "pc-fixture-01",
		Domain:   "corp.example.com",
		OS:       record.OS{Name: "Debian GNU/Linux", Version: "12", Kernel: "6.1.0-18-amd64", Arch: "x86_64", Family: "linux"},
		Hardware: record.Hardware{
			Vendor: "LENOVO", Model: "20KH006JGE", Serial: "PF1ABCDE", UUID: "4C4C4544-0042-3510-8052-B4C04F4E3432",
			BIOS:     "LENOVO N23ET59W (1.34 ) (11/08/2018)",
			CPUModel: "Intel(R) Core(TM) i5-8250U CPU @ 1.60GHz", CPUCores: 2, CPUThreads: 2,
			MemoryBytes: 8049156 * 1024,
			Disks:       []record.Disk{{Name: "sda", SizeBytes: 500118192 * 512, Model: "Samsung SSD 860", Type: "ssd", Serial: "S3Z9NB0K123456X"}},
			Interfaces: []record.Interface{{Name: "eth0", MAC: "52:54:00:12:34:56",
				Gateways: []string{"192.168.0.1"}, DNSServers: []string{"192.168.0.53", "2001:db8::53"}}},
		},
		LocalUsers: []string{"alice", "bob"},
		Software: []record.Software{
			{Name: "bash", Version: "5.2.15-2+b2", Publisher: "Matthias Klose <doko@debian.org>"},
			{Name: "coreutils", Version: "9.1-1", Publisher: "Michael Stone <mstone@debian.org>"},
		},
		Users: []string{"alice", "bob"},
	}
	if !reflect.DeepEqual(inv, want) {
		got, _ := json.MarshalIndent(inv, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("Collect() =\n%s\nwant\n%s", got, w)
	}
}

func TestCollect_PartialRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "hostname"), []byte("only-host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Collect(context.Background(), Options{Root: root})
	if err == nil {
		t.Fatal("Collect() err = nil, want warnings for the missing parts")
	}
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Collect() err = %v, want it to wrap fs.ErrNotExist", err)
	}
	if inv.Hostname != "only-host" || inv.OS.Name != "Linux" {
		t.Fatalf("partial inventory = %+v", inv)
	}
}

func TestCollect_Interfaces(t *testing.T) {
	root := newFakeRoot(t)
	want := []record.Interface{{Name: "wlan0", MAC: "aa:bb:cc:dd:ee:ff", Addresses: []string{"10.0.0.2/24"}}}
	inv, err := Collect(context.Background(), Options{Root: root, Interfaces: func() ([]record.Interface, error) {
		return want, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(inv.Hardware.Interfaces, want) {
		t.Fatalf("interfaces = %+v", inv.Hardware.Interfaces)
	}
}

func TestCollect_CleansControlChars(t *testing.T) {
	root := newFakeRoot(t, "ev\x01il\xff")
	if err := os.WriteFile(filepath.Join(root, "sys/class/dmi/id/product_name"), []byte("Model\x07X\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	inv, err := Collect(context.Background(), Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(inv)
	r := record.Record{DeviceID: record.NewDeviceID(), Seq: 1, Kind: record.KindInventory,
		CollectedAt: time.Now(), Schema: record.SchemaVersion, Payload: payload}
	if err := record.Validate(&r, time.Now(), record.DefaultLimits()); err != nil {
		t.Fatalf("collected inventory does not validate: %v", err)
	}
	if inv.Hardware.Model != "ModelX" {
		t.Errorf("model = %q", inv.Hardware.Model)
	}
}

func TestParseRPMAndWho(t *testing.T) {
	if got := parseRPM([]byte("a\t1.0-1\t(none)\nb\t2-3\tRed Hat\n")); !reflect.DeepEqual(got, []record.Software{
		{Name: "a", Version: "1.0-1"}, {Name: "b", Version: "2-3", Publisher: "Red Hat"}}) {
		t.Fatalf("parseRPM() = %+v", got)
	}
	if got := parseWho([]byte("root pts/0 2026-01-01 10:00\nann tty1 2026-01-01\nroot pts/1\n")); !reflect.DeepEqual(got, []string{"ann", "root"}) {
		t.Fatalf("parseWho() = %v", got)
	}
}

// TestCollect_RealMachine runs against the live system.
func TestCollect_RealMachine(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inv, err := Collect(ctx, Options{})
	if err != nil {
		t.Logf("Collect() warnings: %v", err)
	}
	if inv.Hostname == "" || inv.OS.Name == "" {
		t.Fatalf("Collect() hostname %q, OS name %q: want both set", inv.Hostname, inv.OS.Name)
	}
	t.Logf("host %s, OS %s %s, kernel %s, %d packages, %d interfaces", inv.Hostname, inv.OS.Name,
		inv.OS.Version, inv.OS.Kernel, len(inv.Software), len(inv.Hardware.Interfaces))
}
