// Package fuzzx is test support for fuzzing a Raft state machine's Apply
// (relay's and central's FuzzApply): a committed in-memory Badger state
// built from seed commands, a dump of a transaction's view, and the check
// that an entry applies without panicking, writes nothing when Apply
// answers an error and applies the same way twice (no divergence).
// Only tests import it.
package fuzzx
