// Package central is the HQ node: a member of the central Raft cluster that
// takes relay uplinks over QUIC (sync/ingest), applies every site's records
// exactly once by per-site cursor and per-device sequence, keeps each device's
// current inventory and revision history, and serves the admin API.
package central
