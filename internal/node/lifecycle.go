package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesync/edgesync/internal/raftnode"
)

// startMode is what Run does to put the node in its cluster.
type startMode int

const (
	startRestart   startMode = iota // raft state on disk: just run
	startBootstrap                  // found a new cluster
	startJoin                       // ask a member to add us
)

// peerCheckTimeout bounds Run's one look at the --join member of a node
// that restarts with raft state: a member that is down must not stop the
// restart (the whole group may be coming back at once).
const peerCheckTimeout = 10 * time.Second

// checkIdentity refuses a config that names another node, role or site
// than the data dir was created with.
func (n *Node) checkIdentity(id Identity) error {
	if id.NodeID != n.cfg.NodeID || id.Role != n.cfg.Role || id.Site != n.cfg.Site {
		want := Identity{NodeID: n.cfg.NodeID, Role: n.cfg.Role, Site: n.cfg.Site}
		return fmt.Errorf("%w: data directory %s belongs to %s, not to node %s, role %s%s: give the flags it was created with or another data directory",
			ErrDataDirMismatch, n.cfg.DataDir, id, want.NodeID, want.Role, siteSuffix(want.Site))
	}
	return nil
}

func siteSuffix(site string) string {
	if site == "" {
		return ""
	}
	return ", site " + site
}

// plan decides how Run puts the node in its cluster, refuses flags that
// contradict the data dir, and writes the data dir's identity where it is
// known now (a bootstrap; a data dir from an older release).
func (n *Node) plan(id Identity, haveID bool) error {
	dir := n.cfg.DataDir
	has, err := n.raft.HasState()
	if err != nil {
		return err
	}
	joined := haveID && id.Created == CreatedJoin
	if n.cfg.Bootstrap && joined {
		return fmt.Errorf("%w: data directory %s belongs to %s: --bootstrap would found another cluster; start it without --bootstrap",
			ErrDataDirMismatch, dir, id)
	}
	fresh := Identity{NodeID: n.cfg.NodeID, Role: n.cfg.Role, Site: n.cfg.Site, CreatedAt: time.Now().UTC()}
	switch {
	case has && !haveID:
		// A data dir from a release without IdentityFile. Its cluster ID
		// stays unknown (guessing one could name a joined node's cluster
		// wrongly); the flags it is started with say how it was created.
		n.id = fresh
		switch {
		case n.cfg.Bootstrap:
			n.id.Created = CreatedBootstrap
		case n.cfg.JoinURL != "":
			n.id.Created = CreatedJoin
		}
		if err := writeIdentity(dir, n.id); err != nil {
			return err
		}
		n.log.Info("Data directory identity recorded", "identity", n.id.String())
		n.start = startRestart
	case has:
		n.id, n.start = id, startRestart
		if id.Created == "" && (n.cfg.Bootstrap || n.cfg.JoinURL != "") {
			// Recorded without flags from an older data dir: the flags
			// given now say how it was created.
			n.id.Created = CreatedJoin
			if n.cfg.Bootstrap {
				n.id.Created = CreatedBootstrap
			}
			if err := writeIdentity(dir, n.id); err != nil {
				return err
			}
		}
	case n.cfg.Bootstrap:
		// Written before raft bootstraps: a crash in between leaves an
		// identity and no state, and --bootstrap then bootstraps again
		// under the same cluster ID.
		n.id = id
		if !haveID {
			n.id = fresh
		}
		n.id.Created = CreatedBootstrap
		if n.id.ClusterID == "" {
			n.id.ClusterID = newClusterID()
		}
		if err := writeIdentity(dir, n.id); err != nil {
			return err
		}
		n.start = startBootstrap
	case n.cfg.JoinURL != "":
		n.id, n.start = id, startJoin // IdentityFile is written when the join succeeds
		if !haveID {
			n.id = fresh
		}
	default:
		msg := fmt.Sprintf("data directory %s holds no cluster state: give --bootstrap or --join", dir)
		if _, err := os.Stat(filepath.Join(dir, raftnode.RejoinMarker)); err == nil {
			msg += " (it was wiped to rejoin its cluster: give --join URL)"
		} else if haveID {
			msg += fmt.Sprintf(" (it was created for %s)", id)
		}
		return fmt.Errorf("%w: %s", ErrNoClusterState, msg)
	}
	n.raft.SetClusterID(n.id.ClusterID)
	n.founder = n.id.Created == CreatedBootstrap
	return nil
}

// join asks the member at JoinURL to add this node and records the data
// dir's identity with the cluster ID the member answered ("" from older
// peers).
func (n *Node) join(ctx context.Context) error {
	if err := n.raft.Join(ctx, n.cfg.JoinURL); err != nil {
		if errors.Is(err, raftnode.ErrWrongCluster) {
			return fmt.Errorf("%w: data directory %s belongs to %s: %w", ErrDataDirMismatch, n.cfg.DataDir, n.id, err)
		}
		return err
	}
	n.id.ClusterID = n.raft.ClusterID()
	n.id.Created = CreatedJoin
	if err := writeIdentity(n.cfg.DataDir, n.id); err != nil {
		return err
	}
	n.log.Info("Data directory identity recorded", "identity", n.id.String())
	return nil
}

// checkJoinURL looks once at the member named by --join of a node that
// restarts with raft state: a member of another cluster is refused. A
// member that cannot be reached, or that knows no cluster ID, is not (the
// restart needs no member). A data dir whose cluster ID is unknown learns
// it from a member that lists this node.
func (n *Node) checkJoinURL(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, peerCheckTimeout)
	defer cancel()
	st, err := n.raft.PeerStatus(cctx, n.cfg.JoinURL)
	if err != nil {
		if ctx.Err() == nil {
			n.log.Warn("Could not check the cluster of --join", "url", n.cfg.JoinURL, "err", err)
		}
		return nil
	}
	own := n.id.ClusterID
	switch {
	case st.ClusterID == "":
		return nil
	case own != "" && st.ClusterID != own:
		return fmt.Errorf("%w: data directory %s belongs to %s, but --join %s is a member of cluster %s: start it without --join, or with a member of its own cluster",
			ErrDataDirMismatch, n.cfg.DataDir, n.id, n.cfg.JoinURL, st.ClusterID)
	case own == "":
		for _, m := range st.Members {
			if m.ID == n.cfg.NodeID {
				n.id.ClusterID = st.ClusterID
				n.raft.SetClusterID(st.ClusterID)
				if err := writeIdentity(n.cfg.DataDir, n.id); err != nil {
					return err
				}
				n.log.Info("Cluster ID learned", "identity", n.id.String())
				return nil
			}
		}
	}
	return nil
}
