//go:build linux

package procnet

import "syscall"

// procAttr kills a node when the test process dies, so a crashed test
// leaves no nodes behind.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} }
