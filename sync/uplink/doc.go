// Package uplink is the relay side of the relay↔central link. The relay leader runs one Uplink: it
// dials central (QUIC, or TCP+TLS where UDP is blocked), reconciles its outbox with central's
// cursor, streams batches oldest first under a rate cap with a bounded pipeline, and advances the
// outbox on each in-order Ack. See sync/DESIGN.md.
package uplink
