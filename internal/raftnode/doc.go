// Package raftnode is the hashicorp/raft + Badger plumbing shared by the relay
// site cluster and the central cluster: storage, transport, FSM, snapshots,
// leader forwarding and membership over HTTP(S).
//
// # Storage
//
// Dir/raft is one Badger DB holding the raft log and stable store
// (LogStore). It is opened with SyncWrites=true: raft acknowledges an append
// to the leader, or grants a vote, only after the store returns, so a commit
// or a vote must survive power loss.
//
// Dir/state-<n> is a separate Badger DB with the application state (and the
// applied index and member HTTP addresses under the reserved 0x00 prefix),
// named by Dir/state.current. It uses SyncWrites=false: every state change is
// the deterministic result of a log entry that is already durable in
// Dir/raft. The applied index is written in the same transaction as the
// effects, so after a crash the state DB is a consistent prefix, and raft
// replays the log above it (entries at or below the stored applied index are
// skipped). The only gap would be entries the log no longer has because a
// snapshot compacted them; Snapshot therefore calls Sync on the state DB
// before capturing, so everything a snapshot (and the log truncation that
// follows it) covers is durable. Keeping the DBs separate also means a
// compaction or value-log GC of one does not stall the other.
//
// # Restarts and NoSnapshotRestoreOnStart
//
// raft is configured with NoSnapshotRestoreOnStart=true. The state DB is
// persistent, so restoring the latest snapshot on every start would throw
// away a current DB and rebuild it (slow, and pointless). Instead New reads
// the latest snapshot's header and restores it explicitly only when the
// stored applied index is behind it (the state DB was lost or damaged). raft
// itself then replays only the logs after the snapshot index.
//
// # Snapshots
//
// FSM.Snapshot syncs the state DB and pins a Badger read transaction; Persist
// streams it (header, then zstd-compressed key/value records) to the sink.
// Restore (InstallSnapshot) loads the stream into a fresh DB in a new
// directory, syncs it, switches Dir/state.current atomically, swaps it in
// under the FSM's write lock and removes the old directory once the last
// snapshot or GC user releases it.
//
// # Commands
//
// Every log entry is one type byte plus payload: 0 is raftnode-internal
// (member HTTP addresses), 1 is an application command passed untouched to
// StateMachine.Apply. ApplyBatch applies many entries in one Badger
// transaction and splits it on badger.ErrTxnTooBig (see StateMachine).
//
// # Forwarding and reads
//
// Followers forward Propose, Remove and TransferLeadership to the leader's
// HTTP endpoints (Handler). ConsistentView implements raft's read-index: the
// leader verifies its leadership and returns an applied index covering the
// commit index; the caller waits until its own state has applied that far.
//
// # Locks
//
// fsm.mu (RWMutex) guards the current state DB handle: View, ApplyBatch and
// Snapshot take it for reading, Restore for writing only to swap. Node.lifeMu
// guards the closing flag and is never held while taking fsm.mu. No other
// lock is held across calls into raft.
package raftnode
