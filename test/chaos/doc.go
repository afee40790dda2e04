// Package chaos is the fault-injection suite (`make chaos`; a 60 s form runs
// in `make test`). It runs a 3-node central and a 3-node relay site as
// separate processes on 127.0.0.1 under simulated agent load, injects a
// seeded random schedule of faults (SIGKILL, SIGSTOP past the leader lease,
// raft partitions through proxies, WAN loss/delay/reorder/duplication/
// blackholes through a UDP proxy, a full disk), heals them, and checks:
// every record acknowledged to an agent is at central exactly once, the
// raft logs of each group agree on their common prefix and their states
// are equal, and every device's current inventory is its latest collected.
//
// CHAOS_SEED picks the schedule (random when unset, always printed),
// CHAOS_DURATION the time under faults (60s when unset), CHAOS_REPORT a
// file for the JSON report. See docs/reliability.md.
//
// TestSoak (`make soak SOAK_DURATION=1h`) runs the same deployment under
// steady load with one gentle fault every SOAK_FAULT_EVERY, samples each
// node every SOAK_INTERVAL (RSS, goroutines, open files, Badger LSM and
// value-log bytes, outbox depth), and fails when a robust slope fitted to
// a figure after warm-up says it grows without bound; SOAK_REPORT and
// SOAK_PLOT name the JSON report and the PNG plot.
package chaos
