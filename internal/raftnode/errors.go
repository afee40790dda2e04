package raftnode

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors returned by Node methods. Callers compare with errors.Is.
var (
	// ErrNotLeader is returned when an operation needs the leader and this node
	// is not it (and could not forward). The concrete error is usually a
	// *NotLeaderError carrying the leader's HTTP address.
	ErrNotLeader = errors.New("raftnode: not leader")
	// ErrNoLeader is returned when no leader is currently known.
	ErrNoLeader = errors.New("raftnode: no leader")
	// ErrShutdown is returned after Close, or when raft is shutting down.
	ErrShutdown = errors.New("raftnode: shut down")
	// ErrTimeout is returned when raft could not accept the operation in time
	// (for example the apply queue was full). The operation was not applied.
	ErrTimeout = errors.New("raftnode: timed out")
	// ErrLeadershipLost is returned when leadership was lost after a command
	// was appended: the outcome is unknown (it may still commit).
	ErrLeadershipLost = errors.New("raftnode: leadership lost, outcome unknown")
	// ErrBadRequest is returned for malformed or oversized requests.
	ErrBadRequest = errors.New("raftnode: bad request")
	// ErrUnknownMember is returned when a named member is not in the configuration.
	ErrUnknownMember = errors.New("raftnode: unknown member")
	// ErrForbidden is returned by a peer that rejected our client certificate.
	ErrForbidden = errors.New("raftnode: forbidden")
	// ErrBadSnapshot is returned when a snapshot stream is malformed.
	ErrBadSnapshot = errors.New("raftnode: bad snapshot")
	// ErrWrongCluster is returned by a member asked to add a node whose data
	// dir belongs to another cluster (both cluster IDs known and different).
	ErrWrongCluster = errors.New("raftnode: node belongs to another cluster")
)

// errStableNotFound is what StableStore.Get returns for a missing key. The
// text is fixed by hashicorp/raft, which compares err.Error() == "not found"
// (api.go HasExistingState, raft.go requestVote); raft.InmemStore and
// raft-boltdb return the same text. It deliberately has no package prefix.
var errStableNotFound = errors.New("not found")

// NotLeaderError is returned when this node is not the leader. Leader is the
// leader's HTTP base URL when known, "" otherwise.
type NotLeaderError struct {
	Leader string
}

func (e *NotLeaderError) Error() string {
	if e.Leader == "" {
		return ErrNotLeader.Error()
	}
	return fmt.Sprintf("%s (leader %s)", ErrNotLeader.Error(), e.Leader)
}

// Is makes errors.Is(err, ErrNotLeader) true.
func (e *NotLeaderError) Is(target error) bool { return target == ErrNotLeader }

// Wire error codes used by the HTTP handler (STYLE rule 16). Numbers are
// stable: never renumber, only append.
const (
	codeOK             = 0
	codeNotLeader      = 1
	codeNoLeader       = 2
	codeShutdown       = 3
	codeTimeout        = 4
	codeLeadershipLost = 5
	codeBadRequest     = 6
	codeUnknownMember  = 7
	codeForbidden      = 8
	codeWrongCluster   = 9
	codeInternal       = 99
)

var codeErrors = map[int]error{
	codeNotLeader:      ErrNotLeader,
	codeNoLeader:       ErrNoLeader,
	codeShutdown:       ErrShutdown,
	codeTimeout:        ErrTimeout,
	codeLeadershipLost: ErrLeadershipLost,
	codeBadRequest:     ErrBadRequest,
	codeUnknownMember:  ErrUnknownMember,
	codeForbidden:      ErrForbidden,
	codeWrongCluster:   ErrWrongCluster,
}

func errorToCode(err error) int {
	if err == nil {
		return codeOK
	}
	for _, c := range []int{codeNotLeader, codeNoLeader, codeShutdown, codeTimeout, codeLeadershipLost, codeBadRequest, codeUnknownMember, codeForbidden, codeWrongCluster} {
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	return codeInternal
}

// codeToError maps a wire code back to an error. msg is the remote message,
// used only for codeInternal; leader fills NotLeaderError.
func codeToError(code int, msg, leader string) error {
	switch code {
	case codeOK:
		return nil
	case codeNotLeader:
		return &NotLeaderError{Leader: leader}
	}
	if code == codeWrongCluster {
		// The member's message says which clusters differ; keep it.
		return fmt.Errorf("%w: %s", ErrWrongCluster, strings.TrimPrefix(msg, ErrWrongCluster.Error()+": "))
	}
	if err, ok := codeErrors[code]; ok {
		return err
	}
	return fmt.Errorf("raftnode: remote error (code %d): %s", code, msg)
}
