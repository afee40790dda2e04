// Package kv holds the small typed reads and writes the relay and central
// state machines share on a Badger transaction. A missing key reads as the
// zero value, as every state key starts out absent.
package kv
