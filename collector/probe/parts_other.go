//go:build !windows

package probe

func partsFor(Options) []part { return linuxParts }
