package node

import "errors"

// Sentinel errors of the node lifecycle. Callers compare with errors.Is; the
// messages name the data dir and what it belongs to.
var (
	// ErrNoClusterState is returned when a node is started with neither
	// --bootstrap nor --join on a data dir with no raft state.
	ErrNoClusterState = errors.New("node: no cluster state")
	// ErrDataDirMismatch is returned when the flags or the config name
	// another cluster, node, role or site than the data dir belongs to. A
	// member of another cluster refusing a join crosses the wire as
	// raftnode.ErrWrongCluster (its code 9) and is wrapped in this.
	ErrDataDirMismatch = errors.New("node: data directory belongs elsewhere")
)
