package raftnode

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// ProposePipelined replicates cmds in this order and returns the Apply result
// of each. On the leader every command is handed to raft before the first
// result is awaited, so the entries share log appends and fsyncs (raft takes
// up to MaxAppendEntries queued entries per append) instead of paying one
// round trip each. Off the leader it falls back to Propose, one at a time.
//
// It stops at the first failed entry and returns the results before it with
// the error. Entries after a failed one may still commit (an enqueue timeout
// can let a later entry in), so callers must make each command safe to apply
// whatever happened to the one before it; central's ingest is (an entry past
// a gap in the site cursor changes nothing).
func (n *Node) ProposePipelined(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	out := make([][]byte, 0, len(cmds))
	for _, c := range cmds {
		if len(c) > MaxCommandSize {
			return nil, fmt.Errorf("%w: command of %d bytes exceeds %d", ErrBadRequest, len(c), MaxCommandSize)
		}
	}
	if len(cmds) == 1 || !n.IsLeader() {
		for _, c := range cmds {
			res, err := n.Propose(ctx, c)
			if err != nil {
				return out, err
			}
			out = append(out, res)
		}
		return out, nil
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		if timeout = time.Until(dl); timeout <= 0 {
			return nil, ctx.Err()
		}
	}
	futures := make([]raft.ApplyFuture, len(cmds))
	for i, c := range cmds {
		futures[i] = n.raft.Apply(frameApp(c), timeout)
	}
	for _, f := range futures {
		if err := n.waitFuture(ctx, f); err != nil {
			return out, err
		}
		res, _ := f.Response().(applyResult)
		out = append(out, res.data)
	}
	return out, nil
}
