package raftnode

import (
	"errors"
	"path/filepath"
	"testing"
)

// TestJoin_ClusterID: a joiner learns the cluster ID from the member it asks
// (leader or follower); a joiner whose data dir names another cluster is
// refused at once with ErrWrongCluster, through the wire code, and is not
// added; a member that knows no ID (an older node) refuses nothing.
func TestJoin_ClusterID(t *testing.T) {
	n1 := startNode(t, "n1", filepath.Join(t.TempDir(), "n1"), "", func(c *Config) { c.ClusterID = "cluster-a" })
	if err := n1.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if err := n1.WaitLeader(testCtx(t, waitTimeout)); err != nil {
		t.Fatal(err)
	}
	n2 := startNode(t, "n2", filepath.Join(t.TempDir(), "n2"), "", nil)
	if err := n2.Join(testCtx(t, waitTimeout), n1.url); err != nil {
		t.Fatalf("join via leader: %v", err)
	}
	if got := n2.ClusterID(); got != "cluster-a" {
		t.Fatalf("joiner via the leader learned %q, want cluster-a", got)
	}
	c := &cluster{t: t, nodes: []*testNode{n1, n2}}
	c.waitMembers(2)
	n3 := startNode(t, "n3", filepath.Join(t.TempDir(), "n3"), "", nil)
	if err := n3.Join(testCtx(t, waitTimeout), n2.url); err != nil {
		t.Fatalf("join via follower: %v", err)
	}
	if got := n3.ClusterID(); got != "cluster-a" {
		t.Fatalf("joiner via a follower learned %q, want cluster-a", got)
	}
	c.nodes = append(c.nodes, n3)
	c.waitMembers(3)

	n4 := startNode(t, "n4", filepath.Join(t.TempDir(), "n4"), "", func(c *Config) { c.ClusterID = "cluster-b" })
	for _, via := range []*testNode{n1, n2} {
		err := n4.Join(testCtx(t, waitTimeout), via.url)
		if !errors.Is(err, ErrWrongCluster) {
			t.Fatalf("join of a cluster-b node via %s = %v, want ErrWrongCluster", via.id, err)
		}
		t.Logf("refused: %v", err)
	}
	if _, ok := n1.configServer("n4"); ok {
		t.Fatal("the refused joiner is a member")
	}
	st, err := n4.PeerStatus(testCtx(t, waitTimeout), n2.url)
	if err != nil || st.ClusterID != "cluster-a" || len(st.Members) != 3 {
		t.Fatalf("PeerStatus = %+v, %v", st, err)
	}

	// A member that does not know its cluster (data dir of an older
	// release) adds a joiner that names one, and tells it nothing.
	o1 := startNode(t, "o1", filepath.Join(t.TempDir(), "o1"), "", nil)
	if err := o1.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	if err := o1.WaitLeader(testCtx(t, waitTimeout)); err != nil {
		t.Fatal(err)
	}
	o2 := startNode(t, "o2", filepath.Join(t.TempDir(), "o2"), "", func(c *Config) { c.ClusterID = "cluster-o" })
	if err := o2.Join(testCtx(t, waitTimeout), o1.url); err != nil {
		t.Fatalf("join of a member without a cluster ID: %v", err)
	}
	if got := o2.ClusterID(); got != "cluster-o" {
		t.Fatalf("joiner's cluster ID became %q", got)
	}
}
