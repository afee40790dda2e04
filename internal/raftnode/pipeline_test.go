package raftnode

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// ProposePipelined keeps the order of its commands in the log, on the leader
// (pipelined) and on a follower (forwarded one by one), and refuses an
// oversized command before anything is proposed.
func TestNode_ProposePipelined(t *testing.T) {
	c := newCluster(t, 3, nil)
	for _, n := range []*testNode{c.leader(), c.follower()} {
		t.Run(n.id, func(t *testing.T) {
			var cmds [][]byte
			for i := range 50 {
				cmds = append(cmds, fmt.Appendf(nil, "set p-%s-%02d %d", n.id, i, i))
			}
			res, err := n.ProposePipelined(testCtx(t, waitTimeout), cmds)
			if err != nil {
				t.Fatal(err)
			}
			if len(res) != len(cmds) {
				t.Fatalf("%d results for %d commands", len(res), len(cmds))
			}
			last := uint64(0)
			for i, r := range res {
				idx, err := strconv.ParseUint(strings.TrimPrefix(string(r), "ok "), 10, 64)
				if err != nil || idx <= last {
					t.Fatalf("result %d = %q after index %d: not in proposal order", i, r, last)
				}
				last = idx
			}
			for _, m := range c.nodes {
				waitKey(t, m, fmt.Sprintf("p-%s-49", n.id), "49")
			}
		})
	}
	_, err := c.leader().ProposePipelined(testCtx(t, waitTimeout), [][]byte{[]byte("set a 1"), make([]byte, MaxCommandSize+1)})
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("oversized command: err = %v, want ErrBadRequest", err)
	}
	if v, _ := getKey(t, c.leader().View, "a"); v != "" {
		t.Errorf("a = %q after a refused pipeline, want unset", v)
	}
}
