package relay

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/uplink"
	"github.com/edgesync/edgesync/sync/wire"
)

// outbox gives the uplink its view of the replicated outbox.
type outbox struct{ n *Node }

var _ uplink.Outbox = (*outbox)(nil)

// maxAckStep bounds how many outbox entries one ack command deletes, so an
// ack after a long outage stays a small log entry.
const maxAckStep = 2000

// Pending returns committed records after site seq `after`, oldest first.
func (o *outbox) Pending(after uint64, maxRecords, maxBytes int) ([]uplink.Item, error) {
	var items []uplink.Item
	err := o.n.raft.View(func(txn *badger.Txn) error {
		opts := badger.DefaultIteratorOptions
		opts.Prefix = prefixOutbox
		opts.PrefetchSize = min(maxRecords, 256)
		it := txn.NewIterator(opts)
		defer it.Close()
		size := 0
		want := after + 1
		for it.Seek(seqKey(prefixOutbox, want)); it.Valid() && len(items) < maxRecords; it.Next() {
			seq := binary.BigEndian.Uint64(it.Item().Key()[len(prefixOutbox):])
			if seq != want {
				break // only a contiguous run
			}
			v, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			if len(v) < 8 {
				continue
			}
			if len(items) > 0 && size+len(v) > maxBytes {
				break
			}
			size += len(v)
			items = append(items, uplink.Item{Seq: seq, Data: v[8:]})
			want++
		}
		return nil
	})
	return items, err
}

// Ack commits central's acknowledgement, in steps, through the site Raft.
func (o *outbox) Ack(ctx context.Context, upto uint64) error {
	for {
		acked := o.Acked()
		if upto <= acked {
			return nil
		}
		step := min(upto, acked+maxAckStep)
		out, err := o.n.raft.Propose(ctx, encodeAck(step))
		if err != nil {
			return err
		}
		if err := resultError(out); err != nil {
			return err
		}
		if o.Acked() < step {
			// Ack clamps to the highest assigned seq: nothing more to trim.
			return nil
		}
	}
}

// Acked is the highest site seq central has committed.
func (o *outbox) Acked() uint64 {
	var v uint64
	o.n.raft.View(func(txn *badger.Txn) (err error) { v, err = kv.GetUint(txn, keyAcked); return err })
	return v
}

// Stats reports depth, bytes and the age of the oldest unacked record.
func (o *outbox) Stats() wire.OutboxStats {
	st, _ := o.n.outboxStats()
	return st
}

func (n *Node) outboxStats() (wire.OutboxStats, error) {
	var st wire.OutboxStats
	err := n.raft.View(func(txn *badger.Txn) error {
		acked, err := kv.GetUint(txn, keyAcked)
		if err != nil {
			return err
		}
		next, err := kv.GetUint(txn, keyNextSeq)
		if err != nil {
			return err
		}
		if next == 0 {
			next = 1
		}
		bytes, err := kv.GetUint(txn, keyObBytes)
		if err != nil {
			return err
		}
		st = wire.OutboxStats{AckedSeq: acked, NextSeq: next, Bytes: bytes}
		if next > acked+1 {
			st.Depth = next - 1 - acked
			item, err := txn.Get(seqKey(prefixOutbox, acked+1))
			if err == nil {
				item.Value(func(v []byte) error {
					if len(v) >= 8 {
						st.OldestUnacked = time.Unix(0, int64(binary.BigEndian.Uint64(v))).UTC()
					}
					return nil
				})
			}
		}
		return nil
	})
	return st, err
}
