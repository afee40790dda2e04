// Package backup takes, checks and restores backups of a node's replicated
// state. A backup is a Raft snapshot stream in raftnode's format (version 1):
//
//	header (uncompressed): magic "ESRS", version byte, applied index uint64 BE
//	zstd stream of records: uvarint keyLen, key, uvarint valLen, value
//	end of records:         uvarint 0, uvarint record count
//
// so a restore is simply installing the backup as the node's latest
// snapshot: raftnode restores the state DB from it on start, and raft takes
// its index as the start of the log.
package backup
