// Package nodemetrics registers the metrics every node exposes on /metrics
// beyond its own: Go runtime and process, Raft state and apply lag, and the
// on-disk size of the Badger stores.
package nodemetrics
