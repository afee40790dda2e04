package probe

import (
	"strings"
	"unicode"

	"github.com/edgesync/edgesync/collector/record"
)

// clean makes s acceptable to record.Validate: valid UTF-8 without control
// characters (a DMI string or utmp entry can hold either).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

func cleanInventory(inv *record.Inventory) {
	inv.Hostname = clean(inv.Hostname)
	for _, p := range []*string{&inv.OS.Name, &inv.OS.Version, &inv.OS.Kernel, &inv.OS.Arch,
		&inv.Hardware.Vendor, &inv.Hardware.Model, &inv.Hardware.Serial, &inv.Hardware.BIOS, &inv.Hardware.CPUModel} {
		*p = clean(*p)
	}
	for i := range inv.Hardware.Disks {
		d := &inv.Hardware.Disks[i]
		d.Name, d.Model = clean(d.Name), clean(d.Model)
	}
	for i := range inv.Hardware.Interfaces {
		n := &inv.Hardware.Interfaces[i]
		n.Name, n.MAC = clean(n.Name), clean(n.MAC)
		for j := range n.Addresses {
			n.Addresses[j] = clean(n.Addresses[j])
		}
	}
	for i := range inv.Software {
		s := &inv.Software[i]
		s.Name, s.Version, s.Publisher = clean(s.Name), clean(s.Version), clean(s.Publisher)
	}
	for i := range inv.Users {
		inv.Users[i] = clean(inv.Users[i])
	}
	for k, v := range inv.CustomFields {
		delete(inv.CustomFields, k)
		inv.CustomFields[clean(k)] = clean(v)
	}
}
