// Package test holds black-box system tests: whole deployments on 127.0.0.1
// (localnet) with real Raft, Badger, QUIC and HTTPS, checked against the
// guarantees of DESIGN.md §3.
package test
