// Package procnet runs central and relay nodes as separate edgesync
// processes on 127.0.0.1, so tests and benchmarks can SIGKILL a node and
// measure one node's memory. The in-process equivalent is localnet.
package procnet
