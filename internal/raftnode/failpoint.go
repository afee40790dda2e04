package raftnode

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Failpoints and storage tuning from the environment, for crash tests that
// run nodes as processes (test/crash_test.go). Nothing here is read unless
// the variables are set.
//
// EDGESYNC_FAILPOINTS is a comma-separated list of failpoint names. A
// listed failpoint, when reached, creates the file EDGESYNC_FAILPOINT_DIR/
// <name> (if that variable is set) and then blocks its goroutine forever, so
// a test can SIGKILL the process with the operation certainly half done
// (etcd's gofail, in miniature). The names:
//
//	snapshot-persist  Persist has written part of the snapshot file
//	log-truncate      DeleteRange has deleted part of the compacted log range
//	snapshot-restore  a snapshot restore has loaded part of the new state DB
const (
	fpSnapshotPersist = "snapshot-persist"
	fpLogTruncate     = "log-truncate"
	fpSnapshotRestore = "snapshot-restore"
)

var enabledFailpoints = parseFailpoints(os.Getenv("EDGESYNC_FAILPOINTS"))

func parseFailpoints(s string) map[string]bool {
	var m map[string]bool
	for _, name := range strings.Split(s, ",") {
		if name = strings.TrimSpace(name); name != "" {
			if m == nil {
				m = map[string]bool{}
			}
			m[name] = true
		}
	}
	return m
}

func failpointEnabled(name string) bool { return enabledFailpoints[name] }

// failpoint blocks forever when name is enabled (see above).
func failpoint(name string) {
	if !enabledFailpoints[name] {
		return
	}
	if dir := os.Getenv("EDGESYNC_FAILPOINT_DIR"); dir != "" {
		_ = os.WriteFile(filepath.Join(dir, name), []byte(strconv.Itoa(os.Getpid())), 0o600)
	}
	for {
		time.Sleep(time.Hour) // held here until the test kills the process
	}
}

// applyEnv overrides raft storage settings from the environment, so a
// process-level test can make snapshots, log truncation and value-log GC
// happen constantly:
//
//	EDGESYNC_RAFT_SNAPSHOT_THRESHOLD  SnapshotThreshold (entries)
//	EDGESYNC_RAFT_SNAPSHOT_INTERVAL   SnapshotInterval (Go duration)
//	EDGESYNC_RAFT_TRAILING_LOGS       TrailingLogs (entries)
//	EDGESYNC_RAFT_GC_INTERVAL         ValueLogGCInterval (Go duration)
func applyEnv(cfg *Config) error {
	for _, u := range []struct {
		env string
		dst *uint64
	}{{"EDGESYNC_RAFT_SNAPSHOT_THRESHOLD", &cfg.SnapshotThreshold}, {"EDGESYNC_RAFT_TRAILING_LOGS", &cfg.TrailingLogs}} {
		if v := os.Getenv(u.env); v != "" {
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return fmt.Errorf("raftnode: %s=%q: %w", u.env, v, err)
			}
			*u.dst = n
		}
	}
	for _, d := range []struct {
		env string
		dst *time.Duration
	}{{"EDGESYNC_RAFT_SNAPSHOT_INTERVAL", &cfg.SnapshotInterval}, {"EDGESYNC_RAFT_GC_INTERVAL", &cfg.ValueLogGCInterval}} {
		if v := os.Getenv(d.env); v != "" {
			t, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("raftnode: %s=%q: %w", d.env, v, err)
			}
			*d.dst = t
		}
	}
	return nil
}
