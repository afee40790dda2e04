// Package promx builds a package's Prometheus metrics the way every
// edgesync package names them (STYLE rule 26): namespace "edgesync", the
// package's subsystem, registered with the node's registry as they are made
// (not at all when the registry is nil, as in unit tests). It sits apart
// from internal/nodemetrics, which pulls in raftnode; sync/* needs neither.
package promx
