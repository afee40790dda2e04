package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

// windowsFixture builds winSources from the captures in testdata/windows:
// two regedit exports and the WMI and adapter results as JSON.
func windowsFixture(t *testing.T) *winSources {
	t.Helper()
	var src winSources
	b, err := os.ReadFile("testdata/windows/wmi.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &src); err != nil {
		t.Fatal(err)
	}
	cv := readRegFixture(t, "currentversion.reg")
	if len(cv) != 1 {
		t.Fatalf("currentversion.reg: %d keys", len(cv))
	}
	src.CurrentVersion = &cv[0]
	src.Uninstall = uninstallFromExport(readRegFixture(t, "uninstall.reg"))
	return &src
}

func readRegFixture(t *testing.T, name string) []regKey {
	t.Helper()
	b, err := os.ReadFile("testdata/windows/" + name)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := parseRegExport(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return keys
}

func TestBuildWindows_Fixture(t *testing.T) {
	inv := buildWindows(windowsFixture(t))
	cleanInventory(&inv)
	want := record.Inventory{
		Hostname: "PC-TOKYO-0142",
		Domain:   "corp.example.co.jp",
		OS: record.OS{Name: "Microsoft Windows 11 Pro", Version: "23H2", Kernel: "10.0.22631", Arch: "amd64", Family: "windows",
			Edition: "Professional", Build: "22631.4460", InstallDate: "2024-01-18T06:19:28Z"},
		Hardware: record.Hardware{
			Vendor: "LENOVO", Model: "21HD003XJP", Serial: "PF4XK2LM", UUID: "4C4C4544-0042-3510-8052-B4C04F4E3432",
			BIOS:     "LENOVO R23ET70W (1.45 ) (11/06/2023)",
			CPUModel: "13th Gen Intel(R) Core(TM) i5-1335U", CPUCores: 10, CPUThreads: 12,
			MemoryBytes: 17011802112,
			Disks: []record.Disk{
				{Name: `\\.\PHYSICALDRIVE0`, SizeBytes: 512105932800, Model: "SAMSUNG MZVL2512HCJQ-00BL7", Type: "SCSI", Serial: "0025_3881_2144_8C8E."},
				{Name: `\\.\PHYSICALDRIVE1`, SizeBytes: 30751160320, Model: "SanDisk Ultra USB Device", Type: "USB", Serial: "4C530001230807115123"},
			},
			Interfaces: []record.Interface{{Name: "Ethernet", MAC: "c4:ef:bb:12:34:56",
				Addresses:   []string{"10.20.30.142/24", "fe80::1c2d:3e4f:5a6b:7c8d/64"},
				Description: "Intel(R) Ethernet Connection (16) I219-LM", Gateways: []string{"10.20.30.1"},
				DNSServers: []string{"10.20.0.10", "10.20.0.11"}, DHCP: true}},
			VideoAdapters: []string{"Intel(R) Iris(R) Xe Graphics"},
			Keyboard:      "Japanese PS/2 Keyboard (106/109 Key)",
		},
		Software: []record.Software{
			{Name: "7-Zip 23.01 (x64 edition)", Version: "23.01.00.0", Publisher: "Igor Pavlov", InstallDate: "2024-01-15", Arch: "x64"},
			{Name: "Adobe Acrobat Reader DC", Version: "24.004.20220", Publisher: "Adobe Systems Incorporated", InstallDate: "2024-03-02", Arch: "x86"},
			{Name: "Microsoft Edge", Version: "131.0.2903.70", Publisher: "Microsoft Corporation", InstallDate: "2024-12-04", Arch: "x64"},
			{Name: "Microsoft Teams classic", Version: "1.7.00.13456", Publisher: "Microsoft Corporation", InstallDate: "2024-02-10",
				User: "S-1-5-21-3623811015-3361044348-30300820-1013"},
			{Name: "Microsoft Visual C++ 2015-2022 Redistributable (x64) - 14.38.33135", Version: "14.38.33135.0", Publisher: "Microsoft Corporation", InstallDate: "2023-11-20", Arch: "x64"},
			{Name: "Microsoft Visual C++ 2015-2022 Redistributable (x86) - 14.38.33135", Version: "14.38.33135.0", Publisher: "Microsoft Corporation", Arch: "x86"},
			{Name: "Zoom Workplace", Version: "6.2.11 (52658)", Publisher: "Zoom Video Communications, Inc.",
				User: "S-1-5-21-3623811015-3361044348-30300820-1013"},
		},
		Users:      []string{`CORP\tanaka`},
		LocalUsers: []string{"tanaka-local"},
		Updates: []record.Update{
			{ID: "KB5044033", Description: "Update", InstalledOn: "2024-10-09"},
			{ID: "KB5046633", Description: "Security Update", InstalledOn: "2024-11-13"},
		},
		Antivirus: []record.Antivirus{
			{Name: "Windows Defender", Enabled: true, UpToDate: true},
			{Name: "Trend Micro Apex One", Enabled: true, UpToDate: false},
		},
		Warnings: []string{"probe antivirus: partial"},
	}
	if !reflect.DeepEqual(inv, want) {
		got, _ := json.MarshalIndent(inv, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Fatalf("buildWindows() =\n%s\nwant\n%s", got, w)
	}
	// What the agent sends must pass the relay's validation unchanged.
	payload, _ := json.Marshal(inv)
	fixedNow := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	if err := record.Validate(&record.Record{DeviceID: strings.Repeat("ab", 16), Seq: 1, Kind: record.KindInventory,
		CollectedAt: fixedNow, Schema: record.SchemaVersion, Payload: payload}, fixedNow, record.Limits{}); err != nil {
		t.Fatalf("Windows inventory does not validate: %v", err)
	}
}

// A PC where nothing but the host name could be read (WMI service stopped,
// registry access denied) still yields an inventory, with a warning for each
// part and a name for the OS.
func TestBuildWindows_Degraded(t *testing.T) {
	src := &winSources{Hostname: "PC-1", Arch: "amd64", Errors: map[string]string{
		"registry os": "Access is denied.", "computer system": "Invalid class", "network": "not supported"}}
	inv := buildWindows(src)
	if inv.Hostname != "PC-1" || inv.OS.Name != "Windows" || inv.OS.Family != "windows" {
		t.Fatalf("degraded inventory = %+v", inv)
	}
	want := []string{"probe registry os: Access is denied.", "probe computer system: Invalid class", "probe network: not supported"}
	if !reflect.DeepEqual(inv.Warnings, want) {
		t.Fatalf("warnings = %q, want %q", inv.Warnings, want)
	}
}

func TestParseRegExport_Values(t *testing.T) {
	keys := readRegFixture(t, "currentversion.reg")
	v := keys[0].Values
	for name, want := range map[string]regValue{
		"SystemRoot":       {Kind: "sz", Str: `C:\WINDOWS`},
		"UBR":              {Kind: "dword", Num: 4460},
		"InstallTime":      {Kind: "qword", Num: 0x01da4b6b9d14a44c},
		"DigitalProductId": {Kind: "binary"},
	} {
		if got := v[name]; got != want {
			t.Errorf("%s = %+v, want %+v", name, got, want)
		}
	}
	multi := "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\X]\r\n" +
		"\"M\"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n\"E\"=hex(2):25,00,54,00,00,00\r\n"
	k, err := parseRegExport([]byte(multi))
	if err != nil {
		t.Fatal(err)
	}
	if m := k[0].Values["M"]; m.Str != "a\nb" || m.Kind != "multi_sz" {
		t.Errorf("multi_sz = %+v", m)
	}
	if e := k[0].Values["E"]; e.Str != "%T" || e.Kind != "expand_sz" {
		t.Errorf("expand_sz = %+v", e)
	}
}

func TestParseRegExport_Rejects(t *testing.T) {
	for name, in := range map[string]string{
		"no header":        "[HKEY_LOCAL_MACHINE\\X]\n",
		"value before key": "Windows Registry Editor Version 5.00\n\"A\"=\"b\"\n",
		"unterminated key": "Windows Registry Editor Version 5.00\n[HKEY_LOCAL_MACHINE\\X\n",
		"bad dword":        "Windows Registry Editor Version 5.00\n[K]\n\"A\"=dword:zz\n",
		"open quote":       "Windows Registry Editor Version 5.00\n[K]\n\"A\"=\"b\n",
		"bad hex":          "Windows Registry Editor Version 5.00\n[K]\n\"A\"=hex:1,zz\n",
		"short qword":      "Windows Registry Editor Version 5.00\n[K]\n\"A\"=hex(b):01,02\n",
		"odd utf16":        "\xff\xfeW\x00i",
		"not utf8":         "Windows Registry Editor Version 5.00\n[K\xff]\n",
	} {
		if _, err := parseRegExport([]byte(in)); !errors.Is(err, errRegExport) {
			t.Errorf("%s: err = %v, want errRegExport", name, err)
		}
	}
	big := bytes.Repeat([]byte("x"), maxRegExportBytes+1)
	if _, err := parseRegExport(big); !errors.Is(err, errRegExport) {
		t.Errorf("oversize: err = %v", err)
	}
}

func TestWindowsDates(t *testing.T) {
	for in, want := range map[string]string{"3/14/2024": "2024-03-14", "01d3a7e0c5a3b000": "2018-02-17", "": "", "garbage": ""} {
		if got := parseUSDate(in); got != want {
			t.Errorf("parseUSDate(%q) = %q, want %q", in, got, want)
		}
	}
	if got, ok := parseCIMTime("20240118143000.000000+540"); !ok || got.Format("2006-01-02T15:04") != "2024-01-18T05:30" {
		t.Errorf("parseCIMTime = %v %v", got, ok)
	}
	if _, ok := parseCIMTime("2024"); ok {
		t.Error("short CIM time accepted")
	}
}
