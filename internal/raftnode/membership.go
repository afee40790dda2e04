package raftnode

import (
	"context"
	"fmt"
	"net/http"

	"github.com/hashicorp/raft"
)

// Membership: removing a member, moving leadership, and reading the
// configuration. Remove and TransferLeadership work on any member: a
// follower forwards them to the leader.

// Remove removes member id from the cluster (forwarded to the leader if
// needed). Removing a non-member is a no-op.
func (n *Node) Remove(ctx context.Context, id string) error {
	return n.retry(ctx, func() error {
		if n.IsLeader() {
			return n.removeLocal(ctx, id)
		}
		_, err := n.forward(ctx, http.MethodPost, "/raft/v1/remove", mustJSON(idRequest{ID: id}), "remove")
		return err
	})
}

func (n *Node) removeLocal(ctx context.Context, id string) error {
	if _, ok := n.configServer(id); !ok {
		return nil
	}
	if err := n.waitFuture(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, 0)); err != nil {
		return err
	}
	if id != n.cfg.NodeID && n.IsLeader() {
		if _, err := n.applyLocal(ctx, encodeMeta(metaCmd{op: opDeleteMeta, id: id})); err != nil {
			n.logger.Warn("Delete member meta failed", "member", id, "error", err)
		}
	}
	n.logger.Info("Member removed", "member", id)
	return nil
}

// TransferLeadership hands leadership to member id, or to the most
// up-to-date follower when id is "". Forwarded to the leader if needed.
func (n *Node) TransferLeadership(ctx context.Context, id string) error {
	return n.retry(ctx, func() error {
		if n.IsLeader() {
			return n.transferLocal(ctx, id)
		}
		_, err := n.forward(ctx, http.MethodPost, "/raft/v1/transfer", mustJSON(idRequest{ID: id}), "transfer")
		return err
	})
}

func (n *Node) transferLocal(ctx context.Context, id string) error {
	if id == "" {
		return n.waitFuture(ctx, n.raft.LeadershipTransfer())
	}
	srv, ok := n.configServer(id)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownMember, id)
	}
	if id == n.cfg.NodeID {
		return nil
	}
	return n.waitFuture(ctx, n.raft.LeadershipTransferToServer(srv.ID, srv.Address))
}

func (n *Node) configuration() ([]raft.Server, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, n.translate(err)
	}
	return f.Configuration().Servers, nil
}

func (n *Node) configServer(id string) (raft.Server, bool) {
	servers, _ := n.configuration()
	for _, s := range servers {
		if string(s.ID) == id {
			return s, true
		}
	}
	return raft.Server{}, false
}

// Members lists the configuration with each member's HTTP address.
func (n *Node) Members() []Member {
	servers, _ := n.configuration()
	meta := n.fsm.memberMeta()
	_, leaderID := n.raft.LeaderWithID()
	out := make([]Member, 0, len(servers))
	for _, s := range servers {
		out = append(out, Member{
			ID: string(s.ID), RaftAddr: string(s.Address), HTTPAddr: meta[string(s.ID)],
			Suffrage: s.Suffrage.String(), Leader: s.ID == leaderID,
		})
	}
	return out
}
