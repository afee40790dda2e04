package raftnode

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/edgesync/edgesync/internal/hostfs"
)

// The rebuild runbook (docs/runbook.md, "Corrupt node data"): a node whose
// data cannot be trusted is removed from its cluster, its raft data is moved
// aside (never deleted), and it is started empty with --join, so the leader
// adds it back and sends it a snapshot (InstallSnapshot) and the log after.
//
// The member is removed first, while the rest of the cluster still has a
// quorum, so the removal commits on every remaining member: afterwards
// every committed entry is on a majority that excludes the wiped node. A
// node that came back empty under its old membership instead could vote
// with amnesia and help elect a leader that lacks committed entries.

// RejoinMarker is the file Wipe leaves in the data dir. While it is there,
// Bootstrap refuses (an empty node started with --bootstrap would found a
// second cluster of the same name); a successful Join removes it.
const RejoinMarker = "rejoin-pending"

// ErrRejoinPending is returned by Bootstrap on a wiped data dir.
var ErrRejoinPending = errors.New("raftnode: data dir was wiped to rejoin its cluster: start the node with --join URL, not --bootstrap")

// ErrInUse is returned by Wipe while a process has the data dir open.
var ErrInUse = errors.New("raftnode: data dir is in use: stop the node first")

// WipeResult says what Wipe moved.
type WipeResult struct {
	MovedTo string   `json:"moved_to"` // "" when there was nothing to move
	Moved   []string `json:"moved"`    // names moved, relative to the data dir
}

// raftEntries lists the names in a data dir that hold raft and state data.
func raftEntries(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		name := e.Name()
		if name == "raft" || name == "snapshots" || strings.HasPrefix(name, stateCurrentPtr) ||
			(e.IsDir() && strings.HasPrefix(name, stateDirPrefix)) {
			out = append(out, name)
		}
	}
	return out, nil
}

// checkNotRunning fails with ErrInUse when a Badger DB under dir is locked
// by a running process (Badger flocks the DB directory).
func checkNotRunning(dir string, names []string) error {
	for _, name := range names {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() || name == "snapshots" {
			continue
		}
		busy, err := hostfs.DirInUse(p)
		if err != nil {
			return err
		}
		if busy {
			return fmt.Errorf("%w (%s is locked)", ErrInUse, p)
		}
	}
	return nil
}

// CheckStopped fails with ErrInUse while a process has the raft or state
// DB under dir open.
func CheckStopped(dir string) error {
	names, err := raftEntries(dir)
	if err != nil {
		return fmt.Errorf("raftnode: %w", err)
	}
	return checkNotRunning(dir, names)
}

// Wipe moves the raft log, state DBs and snapshots of a stopped node's data
// dir into dir/damaged-<UTC time>/ and leaves RejoinMarker. Other files
// (tokens, the blob cache) stay. It fails with ErrInUse while the node
// runs. Wiping an already wiped dir moves nothing and succeeds.
func Wipe(dir string, now time.Time) (WipeResult, error) {
	var res WipeResult
	names, err := raftEntries(dir)
	if err != nil {
		return res, fmt.Errorf("raftnode: wipe %s: %w", dir, err)
	}
	if err := checkNotRunning(dir, names); err != nil {
		return res, err
	}
	if len(names) > 0 {
		dst := filepath.Join(dir, "damaged-"+now.UTC().Format("20060102T150405Z"))
		if err := os.Mkdir(dst, 0o700); err != nil {
			return res, fmt.Errorf("raftnode: wipe: %w", err)
		}
		for _, name := range names {
			if err := os.Rename(filepath.Join(dir, name), filepath.Join(dst, name)); err != nil {
				return res, fmt.Errorf("raftnode: wipe: move %s aside: %w", name, err)
			}
			res.Moved = append(res.Moved, name)
		}
		res.MovedTo = dst
	}
	if err := os.WriteFile(filepath.Join(dir, RejoinMarker), []byte(now.UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return res, fmt.Errorf("raftnode: wipe: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return res, fmt.Errorf("raftnode: wipe: %w", err)
	}
	return res, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RemoveMember asks the member at memberURL (any member's HTTP base URL; a
// follower forwards to the leader) to remove server id from the cluster. tc
// must present a certificate the cluster trusts (the node's own). It
// retries while no leader is known, until ctx is done. Removing a
// non-member succeeds.
func RemoveMember(ctx context.Context, memberURL, id string, tc *tls.Config) error {
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: tc, Proxy: nil}}
	defer hc.CloseIdleConnections()
	url := strings.TrimSuffix(memberURL, "/") + "/raft/v1/remove"
	body := mustJSON(idRequest{ID: id})
	wait := 100 * time.Millisecond
	for {
		err := postRemove(ctx, hc, url, body)
		if err == nil || !retryable(err) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("raftnode: remove %s via %s: %w (%w)", id, memberURL, err, ctx.Err())
		case <-t.C:
		}
		wait = min(wait*2, 2*time.Second)
	}
}

func postRemove(ctx context.Context, hc *http.Client, url string, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("raftnode: request %s: %w", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxJSONBody))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var er errorResponse
	if err := json.Unmarshal(b, &er); err != nil || er.Code == codeOK {
		return fmt.Errorf("raftnode: request %s: HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(b[:min(len(b), 200)])))
	}
	return codeToError(er.Code, er.Error, er.Leader)
}
