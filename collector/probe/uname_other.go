//go:build !linux

package probe

// uname is Linux-only; elsewhere the kernel comes from the files under Root.
func uname() (release, machine string, ok bool) { return "", "", false }
