// Package node is the lifecycle a relay and a central node share: the data
// directory, the metrics registry, the HTTPS listener with the node's TLS
// identity, Raft over Badger, bootstrapping or joining the group, and a Run
// that owns every goroutine and stops them in order (the HTTP server first,
// then the node's own parts, then Raft, then the listener).
//
// relay and central say only what differs: their state machine, their HTTP
// routes and their long-running parts (uplink, ingest, distribution...).
//
// Restart is just run (lifecycle.go): a data dir with raft state restarts
// in its cluster with neither --bootstrap nor --join. The data dir's
// identity (cluster ID, node, role, site, bootstrapped or joined) is kept in
// IdentityFile; flags or a config that contradict it are refused with
// ErrDataDirMismatch, and an empty data dir without a flag with
// ErrNoClusterState. Run starts no loop of its own for this: the join, or
// the one check of --join on a restart, is a task Run waits for.
package node
