package raftnode

import (
	"fmt"
	"testing"
	"time"
)

// TestDigest_MembersAgree: after the same commands every member hashes to
// the same log range and state; a member that missed a command does not.
func TestDigest_MembersAgree(t *testing.T) {
	c := newCluster(t, 3, nil)
	l := c.leader()
	for i := range 20 {
		mustPropose(t, l, fmt.Sprintf("set k%d v%d", i, i))
	}
	last := l.AppliedIndex()
	var ds []Digest
	checkFor(t, waitTimeout, 10*time.Millisecond, func() error {
		ds = ds[:0]
		for _, n := range c.nodes {
			if n.AppliedIndex() < last {
				return fmt.Errorf("%s applied %d of %d", n.id, n.AppliedIndex(), last)
			}
			d, err := n.Digest(1, last)
			if err != nil {
				return err
			}
			ds = append(ds, d)
		}
		return nil
	})
	for _, d := range ds[1:] {
		if d.LogSHA256 != ds[0].LogSHA256 || d.StateSHA256 != ds[0].StateSHA256 || d.StateKeys != ds[0].StateKeys {
			t.Fatalf("digests differ:\n%+v\n%+v", ds[0], d)
		}
	}
	if ds[0].LogTo != last || ds[0].StateKeys < 20 {
		t.Fatalf("digest covers log to %d (want %d) and %d keys", ds[0].LogTo, last, ds[0].StateKeys)
	}

	f := c.follower()
	f.stop()
	mustPropose(t, l, "set k0 changed")
	d, err := l.Digest(1, last)
	if err != nil {
		t.Fatal(err)
	}
	if d.LogSHA256 != ds[0].LogSHA256 {
		t.Fatal("log digest of an unchanged range changed")
	}
	if d.StateSHA256 == ds[0].StateSHA256 {
		t.Fatal("state digest did not change with the state")
	}
	if _, err := l.Digest(1, 1+maxDigestEntries*2); err != nil {
		t.Fatalf("a range past the last index is clipped, got %v", err)
	}
}
