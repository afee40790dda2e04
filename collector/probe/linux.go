package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/collector/record"
)

func collectHostname(_ context.Context, o Options, inv *record.Inventory) error {
	if d, err := o.read("/proc/sys/kernel/domainname"); err == nil && d != "" && d != "(none)" {
		inv.Domain = d
	}
	if h, err := o.read("/proc/sys/kernel/hostname"); err == nil && h != "" {
		inv.Hostname = h
		return nil
	}
	if h, err := o.read("/etc/hostname"); err == nil && h != "" {
		inv.Hostname = h
		return nil
	}
	if o.live() {
		h, err := os.Hostname()
		if err != nil {
			return err
		}
		inv.Hostname = h
		return nil
	}
	return errors.New("no host name found")
}

func collectOS(_ context.Context, o Options, inv *record.Inventory) error {
	s, err := o.read("/etc/os-release")
	if err != nil {
		var err2 error
		if s, err2 = o.read("/usr/lib/os-release"); err2 != nil {
			inv.OS.Name, inv.OS.Family = "Linux", "linux"
			return err
		}
	}
	kv := parseOSRelease(s)
	inv.OS.Family = "linux"
	inv.OS.Name = kv["NAME"]
	if inv.OS.Name == "" {
		inv.OS.Name = "Linux"
	}
	inv.OS.Version = kv["VERSION_ID"]
	if inv.OS.Version == "" {
		inv.OS.Version = kv["VERSION"]
	}
	return nil
}

func parseOSRelease(s string) map[string]string {
	kv := make(map[string]string)
	for line := range strings.Lines(s) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil {
			v = uq
		} else {
			v = strings.Trim(v, `"'`)
		}
		kv[k] = v
	}
	return kv
}

func collectKernel(_ context.Context, o Options, inv *record.Inventory) error {
	inv.OS.Arch = runtime.GOARCH
	if o.live() {
		if release, machine, ok := uname(); ok {
			inv.OS.Kernel, inv.OS.Arch = release, machine
			return nil
		}
	}
	if a, err := o.read("/proc/sys/kernel/arch"); err == nil && a != "" {
		inv.OS.Arch = a
	}
	k, err := o.read("/proc/sys/kernel/osrelease")
	if err != nil {
		return err
	}
	inv.OS.Kernel = k
	return nil
}

func collectCPU(_ context.Context, o Options, inv *record.Inventory) error {
	s, err := o.read("/proc/cpuinfo")
	if err != nil {
		return err
	}
	for line := range strings.Lines(s) {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "processor":
			inv.Hardware.CPUCores++
			inv.Hardware.CPUThreads++
		case "model name", "Model", "cpu model", "uarch":
			if inv.Hardware.CPUModel == "" {
				inv.Hardware.CPUModel = v
			}
		}
	}
	return nil
}

func collectMemory(_ context.Context, o Options, inv *record.Inventory) error {
	s, err := o.read("/proc/meminfo")
	if err != nil {
		return err
	}
	for line := range strings.Lines(s) {
		if !strings.HasPrefix(line, "MemTotal:") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			break
		}
		kb, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return fmt.Errorf("parse MemTotal: %w", err)
		}
		inv.Hardware.MemoryBytes = kb * 1024
		return nil
	}
	return errors.New("no MemTotal in meminfo")
}

// collectDMI reads /sys/class/dmi/id. Files that are missing or unreadable
// (product_serial is root-only) are skipped, not errors.
func collectDMI(_ context.Context, o Options, inv *record.Inventory) error {
	get := func(name string) string {
		v, _ := o.read("/sys/class/dmi/id/" + name)
		return v
	}
	h := &inv.Hardware
	h.Vendor = get("sys_vendor")
	h.Model = get("product_name")
	h.Serial = get("product_serial")
	h.UUID = strings.ToUpper(get("product_uuid"))
	var bios []string
	for _, n := range []string{"bios_vendor", "bios_version"} {
		if v := get(n); v != "" {
			bios = append(bios, v)
		}
	}
	if d := get("bios_date"); d != "" {
		bios = append(bios, "("+d+")")
	}
	h.BIOS = strings.Join(bios, " ")
	return nil
}

var virtualDiskPrefixes = []string{"loop", "ram", "zram", "dm-", "fd", "nbd"}

func collectDisks(_ context.Context, o Options, inv *record.Inventory) error {
	dir := o.path("/sys/block")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if slices.ContainsFunc(virtualDiskPrefixes, func(p string) bool { return strings.HasPrefix(name, p) }) {
			continue
		}
		sz, err := o.read("/sys/block/" + name + "/size")
		if err != nil {
			continue
		}
		sectors, err := strconv.ParseUint(sz, 10, 64)
		if err != nil || sectors == 0 {
			continue
		}
		model, _ := o.read("/sys/block/" + name + "/device/model")
		serial, _ := o.read("/sys/block/" + name + "/device/serial")
		d := record.Disk{Name: name, SizeBytes: sectors * 512, Model: model, Serial: serial}
		switch rot, _ := o.read("/sys/block/" + name + "/queue/rotational"); rot {
		case "0":
			d.Type = "ssd"
		case "1":
			d.Type = "hdd"
		}
		inv.Hardware.Disks = append(inv.Hardware.Disks, d)
	}
	return nil
}

func collectNetwork(_ context.Context, o Options, inv *record.Inventory) error {
	fn := o.Interfaces
	if fn == nil {
		if o.live() {
			fn = liveInterfaces
		} else {
			fn = func() ([]record.Interface, error) { return sysInterfaces(o) }
		}
	}
	ifs, err := fn()
	gws := map[string][]string{}
	if s, rerr := o.read("/proc/net/route"); rerr == nil {
		gws = parseProcRoute(s)
	}
	var dns []string
	if s, rerr := o.read("/etc/resolv.conf"); rerr == nil {
		dns = parseResolvConf(s)
	}
	for i := range ifs {
		ifs[i].Gateways = gws[ifs[i].Name]
		ifs[i].DNSServers = dns
	}
	inv.Hardware.Interfaces = ifs
	return err
}

func liveInterfaces() ([]record.Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []record.Interface
	var errs []error
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback != 0 {
			continue
		}
		ri := record.Interface{Name: i.Name, MAC: i.HardwareAddr.String()}
		addrs, err := i.Addrs()
		if err != nil {
			errs = append(errs, fmt.Errorf("addresses of %s: %w", i.Name, err))
		}
		for _, a := range addrs {
			ri.Addresses = append(ri.Addresses, a.String())
		}
		out = append(out, ri)
	}
	return out, errors.Join(errs...)
}

func sysInterfaces(o Options) ([]record.Interface, error) {
	ents, err := os.ReadDir(o.path("/sys/class/net"))
	if err != nil {
		return nil, err
	}
	var out []record.Interface
	for _, e := range ents {
		if e.Name() == "lo" {
			continue
		}
		mac, _ := o.read("/sys/class/net/" + e.Name() + "/address")
		out = append(out, record.Interface{Name: e.Name(), MAC: mac})
	}
	return out, nil
}

func collectSoftware(ctx context.Context, o Options, inv *record.Inventory) error {
	f, err := os.Open(o.path("/var/lib/dpkg/status"))
	if err == nil {
		defer f.Close()
		sw, err := parseDpkgStatus(bufio.NewReader(f))
		inv.Software = sw
		return err
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	rpm, lerr := exec.LookPath("rpm")
	if lerr != nil {
		return nil // neither dpkg nor rpm: nothing installed that we can list
	}
	args := []string{"-qa", "--qf", `%{NAME}\t%{VERSION}-%{RELEASE}\t%{VENDOR}\n`}
	if !o.live() {
		args = append([]string{"--root", o.Root}, args...)
	}
	out, err := exec.CommandContext(ctx, rpm, args...).Output()
	if err != nil {
		return fmt.Errorf("rpm -qa: %w", err)
	}
	inv.Software = parseRPM(out)
	return nil
}

func parseDpkgStatus(r *bufio.Reader) ([]record.Software, error) {
	var out []record.Software
	var cur record.Software
	installed := false
	flush := func() {
		if installed && cur.Name != "" {
			out = append(out, cur)
		}
		cur, installed = record.Software{}, false
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			flush()
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // continuation of a multi-line field
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "Package":
			cur.Name = v
		case "Version":
			cur.Version = v
		case "Maintainer":
			cur.Publisher = v
		case "Status":
			installed = strings.HasSuffix(v, " installed")
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("read dpkg status: %w", err)
	}
	return out, nil
}

func parseRPM(b []byte) []record.Software {
	var out []record.Software
	for line := range strings.Lines(string(b)) {
		f := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(f) < 2 || f[0] == "" {
			continue
		}
		s := record.Software{Name: f[0], Version: f[1]}
		if len(f) > 2 && f[2] != "(none)" {
			s.Publisher = f[2]
		}
		out = append(out, s)
	}
	return out
}

// utmp layout on Linux (glibc, 64-bit and 32-bit alike): 384-byte entries.
const (
	utmpSize        = 384
	utmpUserProcess = 7
	utmpUserOff     = 44 // ut_type(2)+pad(2)+ut_pid(4)+ut_line(32)+ut_id(4)
	utmpUserLen     = 32
)

func collectUsers(ctx context.Context, o Options, inv *record.Inventory) error {
	var b []byte
	var err error
	for _, p := range []string{"/run/utmp", "/var/run/utmp"} {
		if b, err = os.ReadFile(o.path(p)); err == nil {
			inv.Users = parseUtmp(b)
			return nil
		}
	}
	if !o.live() {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	out, werr := exec.CommandContext(ctx, "who").Output()
	if werr != nil {
		return errors.Join(err, fmt.Errorf("who: %w", werr))
	}
	inv.Users = parseWho(out)
	return nil
}

func parseUtmp(b []byte) []string {
	var users []string
	for off := 0; off+utmpSize <= len(b); off += utmpSize {
		e := b[off : off+utmpSize]
		typ := int16(uint16(e[0]) | uint16(e[1])<<8)
		if typ != utmpUserProcess {
			continue
		}
		u := e[utmpUserOff : utmpUserOff+utmpUserLen]
		if i := bytes.IndexByte(u, 0); i >= 0 {
			u = u[:i]
		}
		if len(u) > 0 {
			users = append(users, string(u))
		}
	}
	slices.Sort(users)
	return slices.Compact(users)
}

func parseWho(b []byte) []string {
	var users []string
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 0 {
			users = append(users, f[0])
		}
	}
	slices.Sort(users)
	return slices.Compact(users)
}

// parseProcRoute returns the default gateways per interface from
// /proc/net/route (addresses are little-endian hex).
func parseProcRoute(s string) map[string][]string {
	out := map[string][]string{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) < 3 || f[1] != "00000000" || f[2] == "00000000" {
			continue
		}
		v, err := strconv.ParseUint(f[2], 16, 32)
		if err != nil {
			continue
		}
		ip := net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String()
		if !slices.Contains(out[f[0]], ip) {
			out[f[0]] = append(out[f[0]], ip)
		}
	}
	return out
}

// parseResolvConf returns the name servers of resolv.conf.
func parseResolvConf(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" && net.ParseIP(f[1]) != nil && !slices.Contains(out, f[1]) {
			out = append(out, f[1])
		}
	}
	return out
}

// collectLocalUsers lists the accounts people log in with: /etc/passwd
// entries with a uid from 1000 (the Debian and Red Hat range for people)
// and a real shell.
func collectLocalUsers(_ context.Context, o Options, inv *record.Inventory) error {
	s, err := o.read("/etc/passwd")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	inv.LocalUsers = parsePasswd(s)
	return nil
}

func parsePasswd(s string) []string {
	var out []string
	for line := range strings.Lines(s) {
		f := strings.Split(strings.TrimRight(line, "\r\n"), ":")
		if len(f) < 7 || strings.HasPrefix(f[0], "#") {
			continue
		}
		uid, err := strconv.Atoi(f[2])
		if err != nil || uid < 1000 || uid == 65534 {
			continue
		}
		if shell := f[6]; strings.HasSuffix(shell, "nologin") || strings.HasSuffix(shell, "/false") {
			continue
		}
		out = append(out, f[0])
	}
	slices.Sort(out)
	return slices.Compact(out)
}
