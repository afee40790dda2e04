// Package wire defines the relay↔central link protocol: frame layout, message types, the zstd batch
// encoding, stable numeric error codes and the QUIC application error codes used to close
// connections.
//
// A frame is [type u8][flags u8][len u32 BE][payload]. Every message except Batch is JSON; a Batch
// is binary (see EncodeBatch). Nothing outside sync/ should depend on these types directly; uplink
// and ingest convert at the edge.
package wire
