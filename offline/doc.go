// Package offline implements the offline-managed computer workflow of
// DESIGN.md §9: the collection kit central signs, the sealed record format
// `offline collect` writes to a USB medium, a safe reader for media given as
// a directory, a .zip or a .tar.zst, and the importer client that sends
// sealed records to a relay or central and writes the result files.
//
// The package decides nothing about state: relays and central verify every
// sealed record themselves (Open) and apply it through their own Raft state.
// See DESIGN.md in this directory for the choices and why.
package offline
