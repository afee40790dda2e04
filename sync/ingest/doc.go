// Package ingest is the central side of the relay↔central link: it listens on QUIC (and optionally
// TCP+TLS), authenticates relays by their client certificate, answers Hello with the site's cursor
// and commits uploaded batches through a Registry, acknowledging each batch in order with the
// site's new cursor. See sync/DESIGN.md.
package ingest
