// Package probe collects a Linux machine's inventory (DESIGN.md §5): host
// name, OS, hardware from /proc and /sys, network interfaces, installed
// packages (dpkg or rpm) and logged-in users (utmp).
//
// Every part is collected independently: a part that fails leaves its fields
// empty and adds a warning to the joined error, so a partial inventory is
// always returned.
package probe
