// Package localnet runs a whole deployment (a central cluster and relay
// sites) inside one process on 127.0.0.1, with real Raft, Badger, QUIC and
// HTTPS. `edgesync demo` and the system tests in test/ are built on it.
package localnet
