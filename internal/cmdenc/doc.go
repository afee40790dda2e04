// Package cmdenc is the compact binary encoding of Raft commands shared by the
// relay and central state machines: a 1-byte type, a 1-byte version and a body of
// uvarints and length-prefixed byte strings.
//
// JSON would cost a full parse of every agent record on every replica; with this
// encoding Apply copies record bytes without looking inside them.
package cmdenc
