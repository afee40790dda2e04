// Package node is the lifecycle a relay and a central node share: the data
// directory, the metrics registry, the HTTPS listener with the node's TLS
// identity, Raft over Badger, bootstrapping or joining the group, and a Run
// that owns every goroutine and stops them in order (the HTTP server first,
// then the node's own parts, then Raft, then the listener).
//
// relay and central say only what differs: their state machine, their HTTP
// routes and their long-running parts (uplink, ingest, distribution...).
package node
