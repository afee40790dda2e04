package probe

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/edgesync/edgesync/collector/record"
)

// The Windows inventory is built in two steps: probe_windows.go reads the
// registry, WMI and the adapter list into winSources, in the shapes the OS
// gives them, and buildWindows (here, portable) turns that into a
// record.Inventory. Tests feed buildWindows captured fixtures on Linux; the
// Wine system test runs the live half.

// winSources is everything the Windows probe read. A nil or empty part was
// not available; its error is in Errors under the part's name.
type winSources struct {
	CurrentVersion  *regKey                      `json:"current_version,omitempty"`
	Uninstall       []uninstallKey               `json:"uninstall,omitempty"`
	ComputerSystem  []win32ComputerSystem        `json:"computer_system,omitempty"`
	OperatingSystem []win32OperatingSystem       `json:"operating_system,omitempty"`
	Product         []win32ComputerSystemProduct `json:"product,omitempty"`
	BIOS            []win32BIOS                  `json:"bios,omitempty"`
	Processor       []win32Processor             `json:"processor,omitempty"`
	DiskDrive       []win32DiskDrive             `json:"disk_drive,omitempty"`
	QuickFix        []win32QuickFixEngineering   `json:"quick_fix,omitempty"`
	UserAccount     []win32UserAccount           `json:"user_account,omitempty"`
	Video           []win32VideoController       `json:"video,omitempty"`
	Keyboard        []win32Keyboard              `json:"keyboard,omitempty"`
	Antivirus       []antiVirusProduct           `json:"antivirus,omitempty"`
	Adapters        []winAdapter                 `json:"adapters,omitempty"`
	Sessions        []string                     `json:"sessions,omitempty"` // users with a logon session
	Hostname        string                       `json:"hostname,omitempty"`
	Arch            string                       `json:"arch,omitempty"`
	// Errors holds one message per part that could not be read.
	Errors map[string]string `json:"errors,omitempty"`
}

// uninstallKey is one subkey of an Uninstall key. View is "x64" or "x86"
// for the machine-wide keys; User is the SID of a per-user hive.
type uninstallKey struct {
	View   string            `json:"view,omitempty"`
	User   string            `json:"user,omitempty"`
	Values map[string]string `json:"values"`
}

// The WMI classes, with the properties we read. Field names are the WMI
// property names (the wmi package maps them by name); dates stay strings in
// CIM_DATETIME form and are parsed here, so a malformed one loses that field
// and not the row.
type win32ComputerSystem struct {
	Name                      string
	Domain                    string
	Workgroup                 string
	PartOfDomain              bool
	Manufacturer              string
	Model                     string
	TotalPhysicalMemory       uint64
	NumberOfLogicalProcessors uint32
	UserName                  string
}

type win32OperatingSystem struct {
	Caption        string
	Version        string
	BuildNumber    string
	CSDVersion     string
	OSArchitecture string
	InstallDate    string
}

type win32ComputerSystemProduct struct {
	UUID              string
	IdentifyingNumber string
}

type win32BIOS struct {
	Manufacturer      string
	SMBIOSBIOSVersion string
	SerialNumber      string
	ReleaseDate       string
}

type win32Processor struct {
	Name                      string
	NumberOfCores             uint32
	NumberOfLogicalProcessors uint32
}

type win32DiskDrive struct {
	DeviceID      string
	Model         string
	InterfaceType string
	MediaType     string
	SerialNumber  string
	Size          uint64
}

type win32QuickFixEngineering struct {
	HotFixID    string
	Description string
	InstalledOn string
}

type win32UserAccount struct {
	Name         string
	LocalAccount bool
	Disabled     bool
}

type win32VideoController struct{ Name string }

type win32Keyboard struct{ Description string }

// antiVirusProduct is root\SecurityCenter2 AntiVirusProduct (client
// editions only).
type antiVirusProduct struct {
	DisplayName  string
	ProductState uint32
}

// winAdapter is one entry of GetAdaptersAddresses.
type winAdapter struct {
	Name        string   `json:"name"` // friendly name, "Ethernet"
	Description string   `json:"description,omitempty"`
	MAC         string   `json:"mac,omitempty"`
	Addresses   []string `json:"addresses,omitempty"` // CIDR
	Gateways    []string `json:"gateways,omitempty"`
	DNSServers  []string `json:"dns_servers,omitempty"`
	DHCP        bool     `json:"dhcp,omitempty"`
	Loopback    bool     `json:"loopback,omitempty"`
}

// The order in which parts are reported, so warnings read the same on every
// run.
var winParts = []string{"hostname", "registry os", "software", "computer system", "operating system",
	"product", "bios", "processor", "disks", "updates", "local users", "logged-on users", "video",
	"keyboard", "antivirus", "network"}

// buildWindows makes the inventory from what the Windows probe read.
func buildWindows(src *winSources) record.Inventory {
	inv := record.Inventory{Hostname: src.Hostname}
	inv.OS.Family = "windows"
	inv.OS.Arch = src.Arch
	hw := &inv.Hardware

	if k := src.CurrentVersion; k != nil {
		v := k.Values
		inv.OS.Name = v["ProductName"].String()
		inv.OS.Edition = v["EditionID"].String()
		inv.OS.Version = cmp.Or(v["DisplayVersion"].String(), v["ReleaseId"].String())
		build := cmp.Or(v["CurrentBuildNumber"].String(), v["CurrentBuild"].String())
		if maj, ok := v["CurrentMajorVersionNumber"]; ok {
			inv.OS.Kernel = fmt.Sprintf("%d.%d.%s", maj.Num, v["CurrentMinorVersionNumber"].Num, build)
		} else {
			inv.OS.Kernel = v["CurrentVersion"].String()
		}
		if ubr, ok := v["UBR"]; ok && build != "" {
			build += "." + strconv.FormatUint(ubr.Num, 10)
		}
		inv.OS.Build = build
		inv.OS.ServicePack = v["CSDVersion"].String()
		if d, ok := v["InstallDate"]; ok && d.Num > 0 {
			inv.OS.InstallDate = time.Unix(int64(d.Num), 0).UTC().Format(time.RFC3339)
		}
		// Windows 11 kept "Windows 10" in ProductName; the build tells them apart.
		if n, err := strconv.Atoi(strings.Split(build, ".")[0]); err == nil && n >= 22000 {
			inv.OS.Name = strings.Replace(inv.OS.Name, "Windows 10", "Windows 11", 1)
		}
	}
	if len(src.OperatingSystem) > 0 {
		os := src.OperatingSystem[0]
		inv.OS.Name = cmp.Or(strings.TrimSpace(os.Caption), inv.OS.Name)
		if inv.OS.Kernel == "" {
			inv.OS.Kernel = os.Version
		}
		if inv.OS.Build == "" {
			inv.OS.Build = os.BuildNumber
		}
		inv.OS.ServicePack = cmp.Or(inv.OS.ServicePack, os.CSDVersion)
		if inv.OS.InstallDate == "" {
			if t, ok := parseCIMTime(os.InstallDate); ok {
				inv.OS.InstallDate = t.UTC().Format(time.RFC3339)
			}
		}
	}
	if inv.OS.Name == "" {
		inv.OS.Name = "Windows"
	}

	if len(src.ComputerSystem) > 0 {
		cs := src.ComputerSystem[0]
		inv.Hostname = cmp.Or(inv.Hostname, cs.Name)
		if cs.PartOfDomain {
			inv.Domain = cs.Domain
		} else {
			inv.Workgroup = cmp.Or(cs.Workgroup, cs.Domain)
		}
		hw.Vendor, hw.Model = strings.TrimSpace(cs.Manufacturer), strings.TrimSpace(cs.Model)
		hw.MemoryBytes = cs.TotalPhysicalMemory
		hw.CPUThreads = int(cs.NumberOfLogicalProcessors)
		if cs.UserName != "" {
			inv.Users = append(inv.Users, cs.UserName)
		}
	}
	if len(src.Product) > 0 {
		hw.UUID = strings.ToUpper(strings.TrimSpace(src.Product[0].UUID))
		hw.Serial = strings.TrimSpace(src.Product[0].IdentifyingNumber)
	}
	if len(src.BIOS) > 0 {
		b := src.BIOS[0]
		if s := strings.TrimSpace(b.SerialNumber); s != "" && !placeholderSerial(s) {
			hw.Serial = s
		}
		parts := []string{}
		for _, s := range []string{b.Manufacturer, b.SMBIOSBIOSVersion} {
			if s = strings.TrimSpace(s); s != "" {
				parts = append(parts, s)
			}
		}
		if t, ok := parseCIMTime(b.ReleaseDate); ok {
			parts = append(parts, "("+t.Format("01/02/2006")+")")
		}
		hw.BIOS = strings.Join(parts, " ")
	}
	if placeholderSerial(hw.Serial) {
		hw.Serial = ""
	}
	if len(src.Processor) > 0 {
		hw.CPUModel = strings.TrimSpace(src.Processor[0].Name)
		var cores, threads int
		for _, p := range src.Processor {
			cores += int(p.NumberOfCores)
			threads += int(p.NumberOfLogicalProcessors)
		}
		hw.CPUCores = cores
		if threads > 0 {
			hw.CPUThreads = threads
		}
	}
	for _, d := range src.DiskDrive {
		hw.Disks = append(hw.Disks, record.Disk{
			Name: diskName(d.DeviceID), SizeBytes: d.Size, Model: strings.TrimSpace(d.Model),
			Type: d.InterfaceType, Serial: strings.TrimSpace(d.SerialNumber),
		})
	}
	for _, v := range src.Video {
		if v.Name != "" && !slices.Contains(hw.VideoAdapters, v.Name) {
			hw.VideoAdapters = append(hw.VideoAdapters, v.Name)
		}
	}
	if len(src.Keyboard) > 0 {
		hw.Keyboard = src.Keyboard[0].Description
	}
	for _, a := range src.Adapters {
		if a.Loopback {
			continue
		}
		hw.Interfaces = append(hw.Interfaces, record.Interface{
			Name: a.Name, MAC: a.MAC, Addresses: a.Addresses, Description: a.Description,
			Gateways: a.Gateways, DNSServers: a.DNSServers, DHCP: a.DHCP,
		})
	}

	inv.Software = windowsSoftware(src.Uninstall)
	for _, q := range src.QuickFix {
		id := strings.TrimSpace(q.HotFixID)
		if id == "" || id == "File 1" { // Wine and old XP rows carry placeholders
			continue
		}
		inv.Updates = append(inv.Updates, record.Update{ID: id, Description: q.Description, InstalledOn: parseUSDate(q.InstalledOn)})
	}
	slices.SortFunc(inv.Updates, func(a, b record.Update) int { return strings.Compare(a.ID, b.ID) })
	inv.Updates = slices.CompactFunc(inv.Updates, func(a, b record.Update) bool { return a.ID == b.ID })
	for _, u := range src.UserAccount {
		if u.LocalAccount && !u.Disabled && u.Name != "" {
			inv.LocalUsers = append(inv.LocalUsers, u.Name)
		}
	}
	slices.Sort(inv.LocalUsers)
	inv.LocalUsers = slices.Compact(inv.LocalUsers)
	inv.Users = append(inv.Users, src.Sessions...)
	slices.Sort(inv.Users)
	inv.Users = slices.Compact(inv.Users)
	for _, a := range src.Antivirus {
		if a.DisplayName == "" {
			continue
		}
		inv.Antivirus = append(inv.Antivirus, record.Antivirus{
			Name: a.DisplayName, Enabled: (a.ProductState>>12)&0xF == 1, UpToDate: (a.ProductState>>4)&0xF == 0,
		})
	}
	for _, p := range winParts {
		if msg, ok := src.Errors[p]; ok {
			inv.Warnings = append(inv.Warnings, "probe "+p+": "+msg)
		}
	}
	return inv
}

// windowsSoftware lists the programs of the Uninstall keys the way
// Programs and Features does: entries with a display name that are neither
// system components nor updates of another entry. A program registered
// twice (both registry views, or machine and user) is listed once, the
// machine-wide 64-bit entry first.
func windowsSoftware(keys []uninstallKey) []record.Software {
	rank := func(k uninstallKey) int {
		switch {
		case k.User != "":
			return 2
		case k.View == "x86":
			return 1
		}
		return 0
	}
	sorted := slices.Clone(keys)
	slices.SortStableFunc(sorted, func(a, b uninstallKey) int { return cmp.Compare(rank(a), rank(b)) })
	seen := map[string]bool{}
	var out []record.Software
	for _, k := range sorted {
		v := k.Values
		name := strings.TrimSpace(v["DisplayName"])
		if name == "" || v["SystemComponent"] == "1" || v["ParentKeyName"] != "" {
			continue
		}
		switch v["ReleaseType"] {
		case "Update", "Security Update", "Hotfix", "Service Pack":
			continue
		}
		s := record.Software{
			Name: name, Version: strings.TrimSpace(v["DisplayVersion"]), Publisher: strings.TrimSpace(v["Publisher"]),
			InstallDate: parseYYYYMMDD(v["InstallDate"]), Arch: k.View, User: k.User,
		}
		id := strings.ToLower(s.Name) + "\x00" + strings.ToLower(s.Version)
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b record.Software) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.Version, b.Version))
	})
	return out
}

// diskName undoes the doubled backslashes Wine puts in DeviceID
// (`\\\\.\\PHYSICALDRIVE0` for Windows' `\\.\PHYSICALDRIVE0`).
func diskName(id string) string {
	if strings.HasPrefix(id, `\\\\`) {
		return strings.ReplaceAll(id, `\\`, `\`)
	}
	return id
}

// placeholderSerial reports the strings OEMs leave in an unset serial.
func placeholderSerial(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "none", "n/a", "default string", "to be filled by o.e.m.", "system serial number", "not specified", "0123456789":
		return true
	}
	return false
}

// parseCIMTime parses a CIM_DATETIME ("20231004121314.000000+540", the
// offset in minutes).
func parseCIMTime(s string) (time.Time, bool) {
	if len(s) < 14 {
		return time.Time{}, false
	}
	t, err := time.Parse("20060102150405", s[:14])
	if err != nil {
		return time.Time{}, false
	}
	if len(s) >= 25 && (s[21] == '+' || s[21] == '-') {
		if mins, err := strconv.Atoi(s[22:25]); err == nil {
			if s[21] == '-' {
				mins = -mins
			}
			t = t.Add(-time.Duration(mins) * time.Minute)
		}
	}
	return t.UTC(), true
}

// parseYYYYMMDD turns an Uninstall InstallDate ("20240131") into
// "2024-01-31"; anything else is dropped.
func parseYYYYMMDD(s string) string {
	t, err := time.Parse("20060102", strings.TrimSpace(s))
	if err != nil {
		return ""
	}
	return t.Format(time.DateOnly)
}

// parseUSDate turns Win32_QuickFixEngineering.InstalledOn ("3/14/2024", or
// a hex FILETIME on old systems) into "2024-03-14".
func parseUSDate(s string) string {
	s = strings.TrimSpace(s)
	if t, err := time.Parse("1/2/2006", s); err == nil {
		return t.Format(time.DateOnly)
	}
	if n, err := strconv.ParseUint(s, 16, 64); err == nil && n > 116444736000000000 {
		return time.Unix(0, int64(n-116444736000000000)*100).UTC().Format(time.DateOnly)
	}
	return ""
}
