// Package audit is the audit trail of admin actions that relay and central
// nodes keep in their Raft state: the Entry type, the two command encodings
// the nodes put in their Raft logs, the Badger helpers that store, bound and
// list the trail, the background Log that proposes entries without making an
// admin request wait, and the HTTP pieces (the list handler and the
// middleware that records changes, sensitive reads and refused requests).
//
// A node keeps only its wiring: its command type numbers and version, its
// key prefix and bound, and its routes. The package imports nothing of ours
// above internal/, so relay and central can share it without importing each
// other.
//
// Encoded commands are Raft log entries: their bytes must not change, or a
// log written by an older node no longer decodes the same. codec_test.go
// pins both encodings with fixed examples.
package audit
