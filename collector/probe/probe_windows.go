//go:build windows

package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/registry"

	"github.com/edgesync/edgesync/collector/record"
)

// partsFor on Windows reads the live machine; a fake Root (tests) still
// means the Linux file layout.
func partsFor(o Options) []part {
	if !o.live() {
		return linuxParts
	}
	return []part{{"windows", collectWindows}}
}

// wmiTimeout bounds one WMI query: a wedged WMI service (it happens on PCs
// with a corrupt repository) must not hold the collection forever.
const wmiTimeout = 45 * time.Second

// collectWindows reads every source; each that fails is a warning in the
// record, never a failed collection.
func collectWindows(ctx context.Context, _ Options, inv *record.Inventory) error {
	src := &winSources{Errors: map[string]string{}, Arch: nativeArch()}
	fail := func(part string, err error) {
		if err != nil {
			src.Errors[part] = err.Error()
		}
	}
	h, err := os.Hostname()
	src.Hostname = h
	fail("hostname", err)

	cv, err := readRegKey(registry.LOCAL_MACHINE, `SOFTWARE\Microsoft\Windows NT\CurrentVersion`, registry.WOW64_64KEY)
	if err == nil {
		src.CurrentVersion = &cv
	}
	fail("registry os", err)
	src.Uninstall, err = readUninstall()
	fail("software", err)

	wmiOK := true
	query := func(part, q, ns string, dst any) {
		if !wmiOK {
			src.Errors[part] = "skipped: an earlier WMI query did not return"
			return
		}
		if err := ctx.Err(); err != nil {
			src.Errors[part] = err.Error()
			return
		}
		done := make(chan error, 1)
		go func() {
			done <- wmiQuery(q, ns, dst)
		}()
		select {
		case err := <-done:
			fail(part, err)
		case <-time.After(wmiTimeout):
			// WMI is wedged; later queries would wait as long.
			wmiOK = false
			src.Errors[part] = fmt.Sprintf("WMI did not answer within %s", wmiTimeout)
		case <-ctx.Done():
			wmiOK = false
			src.Errors[part] = ctx.Err().Error()
		}
	}
	query("computer system", "SELECT * FROM Win32_ComputerSystem", "", &src.ComputerSystem)
	query("operating system", "SELECT * FROM Win32_OperatingSystem", "", &src.OperatingSystem)
	query("product", "SELECT * FROM Win32_ComputerSystemProduct", "", &src.Product)
	query("bios", "SELECT * FROM Win32_BIOS", "", &src.BIOS)
	query("processor", "SELECT * FROM Win32_Processor", "", &src.Processor)
	query("disks", "SELECT * FROM Win32_DiskDrive", "", &src.DiskDrive)
	query("updates", "SELECT * FROM Win32_QuickFixEngineering", "", &src.QuickFix)
	query("video", "SELECT * FROM Win32_VideoController", "", &src.Video)
	query("keyboard", "SELECT * FROM Win32_Keyboard", "", &src.Keyboard)
	if clientEdition(src) {
		query("antivirus", "SELECT * FROM AntiVirusProduct", `root\SecurityCenter2`, &src.Antivirus)
	}
	src.UserAccount, err = localUsers()
	fail("local users", err)
	src.Sessions, err = logonSessions()
	fail("logged-on users", err)
	src.Adapters, err = adapters()
	fail("network", err)

	*inv = buildWindows(src)
	return nil
}

// clientEdition reports whether SecurityCenter2 exists: it does on client
// editions (ProductType 1) only, so servers get no warning for lacking it.
func clientEdition(src *winSources) bool {
	if src.CurrentVersion != nil {
		if t := src.CurrentVersion.Values["InstallationType"].Str; t != "" {
			return t == "Client"
		}
	}
	return true
}

func nativeArch() string {
	a := os.Getenv("PROCESSOR_ARCHITEW6432") // set for a 32-bit process on a 64-bit OS
	if a == "" {
		a = os.Getenv("PROCESSOR_ARCHITECTURE")
	}
	switch strings.ToUpper(a) {
	case "AMD64":
		return "amd64"
	case "ARM64":
		return "arm64"
	case "X86":
		return "386"
	}
	return runtime.GOARCH
}

// readRegKey reads every value of one key.
func readRegKey(root registry.Key, path string, view uint32) (regKey, error) {
	k, err := registry.OpenKey(root, path, registry.QUERY_VALUE|view)
	if err != nil {
		return regKey{}, fmt.Errorf(`open %s: %w`, path, err)
	}
	defer k.Close()
	names, err := k.ReadValueNames(-1)
	if err != nil {
		return regKey{}, fmt.Errorf(`values of %s: %w`, path, err)
	}
	out := regKey{Path: path, Values: make(map[string]regValue, len(names))}
	for _, n := range names {
		if v, ok := readRegValue(k, n); ok {
			out.Values[n] = v
		}
	}
	return out, nil
}

func readRegValue(k registry.Key, name string) (regValue, bool) {
	_, typ, err := k.GetValue(name, nil)
	if err != nil && !errors.Is(err, registry.ErrShortBuffer) {
		return regValue{}, false
	}
	switch typ {
	case registry.SZ, registry.EXPAND_SZ:
		s, _, err := k.GetStringValue(name)
		kind := "sz"
		if typ == registry.EXPAND_SZ {
			kind = "expand_sz"
		}
		return regValue{Kind: kind, Str: s}, err == nil
	case registry.MULTI_SZ:
		s, _, err := k.GetStringsValue(name)
		return regValue{Kind: "multi_sz", Str: strings.Join(s, "\n")}, err == nil
	case registry.DWORD, registry.QWORD:
		n, _, err := k.GetIntegerValue(name)
		kind := "dword"
		if typ == registry.QWORD {
			kind = "qword"
		}
		return regValue{Kind: kind, Num: n}, err == nil
	}
	return regValue{Kind: "binary"}, true
}

const uninstallPath = `SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall`

// readUninstall reads the Uninstall keys of both registry views and of
// every loaded user hive (the users logged on, and services' profiles).
// Hives of users not logged on are on disk (NTUSER.DAT) and would need
// RegLoadKey with the restore privilege; they are not read.
func readUninstall() ([]uninstallKey, error) {
	var out []uninstallKey
	var errs []error
	for _, v := range []struct {
		name string
		flag uint32
	}{{"x64", registry.WOW64_64KEY}, {"x86", registry.WOW64_32KEY}} {
		keys, err := readUninstallUnder(registry.LOCAL_MACHINE, uninstallPath, v.flag)
		if errors.Is(err, registry.ErrNotExist) {
			continue // no program registered in this view
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s view: %w", v.name, err))
		}
		for _, k := range keys {
			k.View = v.name
			out = append(out, k)
		}
	}
	if runtime.GOARCH == "386" && nativeArch() == "386" {
		// On 32-bit Windows both views are the same key.
		for i := range out {
			out[i].View = "x86"
		}
	}
	users, err := registry.USERS.ReadSubKeyNames(-1)
	if err != nil {
		errs = append(errs, fmt.Errorf("list user hives: %w", err))
	}
	for _, sid := range users {
		if strings.HasSuffix(sid, "_Classes") || sid == ".DEFAULT" {
			continue
		}
		keys, err := readUninstallUnder(registry.USERS, sid+`\Software\Microsoft\Windows\CurrentVersion\Uninstall`, 0)
		if err != nil {
			continue // most service hives have no Uninstall key
		}
		for _, k := range keys {
			k.User = sid
			out = append(out, k)
		}
	}
	return out, errors.Join(errs...)
}

func readUninstallUnder(root registry.Key, path string, view uint32) ([]uninstallKey, error) {
	k, err := registry.OpenKey(root, path, registry.ENUMERATE_SUB_KEYS|view)
	if err != nil {
		return nil, err
	}
	defer k.Close()
	subs, err := k.ReadSubKeyNames(-1)
	if err != nil {
		return nil, err
	}
	var out []uninstallKey
	for _, s := range subs {
		rk, err := readRegKey(root, path+`\`+s, view)
		if err != nil {
			continue // a key we may not read is a program we cannot list
		}
		u := uninstallKey{Values: make(map[string]string, len(rk.Values))}
		for n, v := range rk.Values {
			u.Values[n] = v.String()
		}
		out = append(out, u)
	}
	return out, nil
}

var (
	netapi32        = windows.NewLazySystemDLL("netapi32.dll")
	procNetUserEnum = netapi32.NewProc("NetUserEnum")
)

// userInfo1 is USER_INFO_1.
type userInfo1 struct {
	Name        *uint16
	Password    *uint16
	PasswordAge uint32
	Priv        uint32
	HomeDir     *uint16
	Comment     *uint16
	Flags       uint32
	ScriptPath  *uint16
}

const (
	filterNormalAccount = 0x2
	ufAccountDisable    = 0x2
	maxPreferredLength  = 0xFFFFFFFF
	nerrMoreData        = 234
)

// localUsers lists the local accounts with NetUserEnum: on a domain member
// WMI's Win32_UserAccount would walk the whole domain. Level 1 carries the
// disabled flag; where it is refused (Wine knows only level 0) names alone.
func localUsers() ([]win32UserAccount, error) {
	if err := procNetUserEnum.Find(); err != nil {
		return nil, err
	}
	out, err := netUserEnum(1)
	if errors.Is(err, windows.ERROR_INVALID_LEVEL) {
		out, err = netUserEnum(0)
	}
	return out, err
}

func netUserEnum(level uintptr) ([]win32UserAccount, error) {
	var out []win32UserAccount
	var resume uint32
	for range 1000 {
		var buf *byte
		var read, total uint32
		r, _, _ := procNetUserEnum.Call(0, level, filterNormalAccount, uintptr(unsafe.Pointer(&buf)),
			maxPreferredLength, uintptr(unsafe.Pointer(&read)), uintptr(unsafe.Pointer(&total)), uintptr(unsafe.Pointer(&resume)))
		if r != 0 && r != nerrMoreData {
			return out, fmt.Errorf("NetUserEnum: %w", windows.Errno(r))
		}
		if buf != nil {
			if level == 1 {
				for _, u := range unsafe.Slice((*userInfo1)(unsafe.Pointer(buf)), read) {
					out = append(out, win32UserAccount{Name: windows.UTF16PtrToString(u.Name), LocalAccount: true,
						Disabled: u.Flags&ufAccountDisable != 0})
				}
			} else {
				for _, name := range unsafe.Slice((**uint16)(unsafe.Pointer(buf)), read) { // USER_INFO_0
					out = append(out, win32UserAccount{Name: windows.UTF16PtrToString(name), LocalAccount: true})
				}
			}
			windows.NetApiBufferFree(buf)
		}
		if r == 0 {
			return out, nil
		}
	}
	return out, errors.New("NetUserEnum: too many pages")
}

var (
	wtsapi32                        = windows.NewLazySystemDLL("wtsapi32.dll")
	procWTSQuerySessionInformationW = wtsapi32.NewProc("WTSQuerySessionInformationW")
)

const (
	wtsUserName   = 5
	wtsDomainName = 7
	wtsActive     = 0
	wtsDisconnect = 4
)

// logonSessions lists DOMAIN\user for each active or disconnected session.
func logonSessions() ([]string, error) {
	if err := procWTSQuerySessionInformationW.Find(); err != nil {
		return nil, err
	}
	var info *windows.WTS_SESSION_INFO
	var n uint32
	if err := windows.WTSEnumerateSessions(0, 0, 1, &info, &n); err != nil {
		return nil, fmt.Errorf("WTSEnumerateSessions: %w", err)
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(info)))
	var out []string
	for _, s := range unsafe.Slice(info, n) {
		if s.State != wtsActive && s.State != wtsDisconnect {
			continue
		}
		user := sessionString(s.SessionID, wtsUserName)
		if user == "" {
			continue
		}
		if d := sessionString(s.SessionID, wtsDomainName); d != "" {
			user = d + `\` + user
		}
		out = append(out, user)
	}
	return out, nil
}

func sessionString(id uint32, class uintptr) string {
	var buf *uint16
	var size uint32
	r, _, _ := procWTSQuerySessionInformationW.Call(0, uintptr(id), class,
		uintptr(unsafe.Pointer(&buf)), uintptr(unsafe.Pointer(&size)))
	if r == 0 || buf == nil {
		return ""
	}
	defer windows.WTSFreeMemory(uintptr(unsafe.Pointer(buf)))
	return windows.UTF16PtrToString(buf)
}

const (
	ipAdapterDHCPEnabled = 0x4
	ifTypeLoopback       = 24
	ifTypeTunnel         = 131
)

// adapters reads GetAdaptersAddresses, growing the buffer as it asks.
func adapters() ([]winAdapter, error) {
	size := uint32(16 << 10)
	var buf []byte
	for range 4 {
		buf = make([]byte, size)
		err := windows.GetAdaptersAddresses(windows.AF_UNSPEC,
			windows.GAA_FLAG_INCLUDE_PREFIX|windows.GAA_FLAG_INCLUDE_GATEWAYS, 0,
			(*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])), &size)
		if err == nil {
			break
		}
		if !errors.Is(err, windows.ERROR_BUFFER_OVERFLOW) {
			return nil, fmt.Errorf("GetAdaptersAddresses: %w", err)
		}
		buf = nil
	}
	if buf == nil {
		return nil, errors.New("GetAdaptersAddresses: buffer keeps growing")
	}
	var out []winAdapter
	for a := (*windows.IpAdapterAddresses)(unsafe.Pointer(&buf[0])); a != nil; a = a.Next {
		if a.IfType == ifTypeTunnel {
			continue
		}
		w := winAdapter{
			Name:        windows.UTF16PtrToString(a.FriendlyName),
			Description: windows.UTF16PtrToString(a.Description),
			DHCP:        a.Flags&ipAdapterDHCPEnabled != 0,
			Loopback:    a.IfType == ifTypeLoopback,
		}
		if a.PhysicalAddressLength > 0 {
			w.MAC = net.HardwareAddr(a.PhysicalAddress[:a.PhysicalAddressLength]).String()
		}
		for u := a.FirstUnicastAddress; u != nil; u = u.Next {
			if ip := u.Address.IP(); ip != nil {
				if v4 := ip.To4(); v4 != nil {
					ip = v4
				}
				w.Addresses = append(w.Addresses, (&net.IPNet{IP: ip, Mask: net.CIDRMask(int(u.OnLinkPrefixLength), 8*len(ip))}).String())
			}
		}
		for g := a.FirstGatewayAddress; g != nil; g = g.Next {
			if ip := g.Address.IP(); ip != nil {
				w.Gateways = append(w.Gateways, ip.String())
			}
		}
		for d := a.FirstDnsServerAddress; d != nil; d = d.Next {
			if ip := d.Address.IP(); ip != nil {
				w.DNSServers = append(w.DNSServers, ip.String())
			}
		}
		out = append(out, w)
	}
	return out, nil
}
