//go:build linux

package probe

import (
	"strings"
	"syscall"
)

// uname returns the kernel release and machine of the running system.
func uname() (release, machine string, ok bool) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return "", "", false
	}
	return utsString(u.Release[:]), utsString(u.Machine[:]), true
}

func utsString[T int8 | uint8](b []T) string {
	var sb strings.Builder
	for _, c := range b {
		if c == 0 {
			break
		}
		sb.WriteByte(byte(c))
	}
	return sb.String()
}
