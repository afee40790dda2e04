// Package faultnet holds userspace fault-injecting proxies for the chaos
// suite, which runs edgesync nodes as processes on 127.0.0.1 without root, so
// tc/netem and iptables are not available.
//
// UDPProxy sits on the relay -> central QUIC link. It can drop, duplicate,
// delay (with jitter), reorder and blackhole datagrams, in both directions,
// and the faults can be changed while traffic flows. Every distinct client
// address gets its own upstream socket (a session), so replies find their
// way back to the right client.
//
// TCPProxy sits in front of one relay node's Raft listener. Linux routes all
// of 127.0.0.0/8 to loopback, so each relay node listens and dials from its
// own loopback IP (127.0.0.11, 127.0.0.12, ...), and the proxy in front of
// node X knows who is dialling from the source IP. Block cuts and refuses the
// connections of the given peers, which is how the harness partitions the
// Raft cluster: blocking 127.0.0.12 on node 11's proxy and 127.0.0.11 on node
// 12's proxy separates the two in both directions.
//
// Both proxies follow the usual lifecycle: the constructor binds the
// listening socket (so Addr is known before anything dials it), and Run
// serves until its context is done, then closes every socket and returns
// once all of its goroutines have exited. A proxy is run at most once, and
// a proxy that is never run keeps its socket bound.
//
// # Locks
//
// No lock in this package is taken while another is held, so there is no
// lock order to keep. UDPProxy has three independent locks: one for the
// faults and the random source, one for the session table, and one inside
// the delay queue. TCPProxy has one.
package faultnet
