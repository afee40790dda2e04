package relay

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/cmdenc"
)

// The disk alarm is site-wide, as etcd's NOSPACE alarm is cluster-wide: a
// node whose data disk is critical publishes it through Raft, and every
// node then refuses reports. Refusing only on the full node is not enough:
// the leader would go on replicating reports taken at the other nodes into
// the full node's log until its filesystem is truly full, and Badger, which
// writes through mmap, dies of SIGBUS there and crash-loops on restart (the
// chaos suite found this). Refusing keeps the data in the agents' spools.

// cmdDiskState records one member's disk state (0 ok, 1 warning, 2 critical).
const cmdDiskState commandType = 6

var prefixDiskState = []byte("m/disk/") // m/disk/<node> → state byte

func encodeDiskState(node string, state int32) []byte {
	w := cmdenc.NewWriter(byte(cmdDiskState), commandVersion, len(node)+16)
	w.String(node)
	w.Uint(uint64(state))
	return w.Done()
}

func (f *fsm) applyDiskState(txn *badger.Txn, r *cmdenc.Reader) []byte {
	node, state := r.String(), r.Uint()
	if r.Err() != nil {
		return errorResult(r.Err())
	}
	if node == "" || len(node) > 256 || state > 2 {
		return errorResult(fmt.Errorf("relay: bad disk state %d for node %q", state, node))
	}
	if err := txn.Set(deviceKey(prefixDiskState, node), []byte{byte(state)}); err != nil {
		return storageFailure(err)
	}
	// Refuse at once on every node, not at its next disk check; the monitor
	// recomputes from committed state (and membership) every check anyway.
	if state == 2 {
		f.alarm.critical.Store(node)
	} else if cur, _ := f.alarm.critical.Load().(string); cur == node {
		f.alarm.critical.Store("")
	}
	return nil
}

// diskAlarm is what the monitor last read from the replicated disk states.
type diskAlarm struct {
	critical atomic.Value // string: a current member whose disk is critical, "" none
}

// syncDiskAlarm publishes this node's disk state when the replicated one
// differs, and refreshes which member (if any) is critical. Members removed
// from the site no longer count, so a dead node's alarm cannot stick.
func (n *Node) syncDiskAlarm(ctx context.Context) {
	local := n.diskState.Load()
	states := map[string]byte{}
	err := n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixDiskState
		it := txn.NewIterator(opts)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			node := string(it.Item().Key()[len(prefixDiskState):])
			if err := it.Item().Value(func(v []byte) error {
				if len(v) == 1 {
					states[node] = v[0]
				}
				return nil
			}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		n.log.Warn("Reading the site's disk states failed", "err", err)
		return
	}
	if byte(local) != states[n.cfg.NodeID] {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		out, err := n.raft.Propose(pctx, encodeDiskState(n.cfg.NodeID, local))
		cancel()
		if err == nil && len(out) == 0 {
			states[n.cfg.NodeID] = byte(local)
		} else if ctx.Err() == nil {
			n.log.Warn("Publishing this node's disk state failed; retrying at the next check", "state", local, "err", err)
		}
	}
	critical := ""
	if local == 2 {
		critical = n.cfg.NodeID
	}
	for _, m := range n.raft.Members() {
		if critical == "" && states[m.ID] == 2 {
			critical = m.ID
		}
	}
	n.alarm.critical.Store(critical)
}

// siteDiskCritical names a member whose data disk is critical, or "".
func (n *Node) siteDiskCritical() string {
	s, _ := n.alarm.critical.Load().(string)
	return s
}
