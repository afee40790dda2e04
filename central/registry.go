package central

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/ingest"
	"github.com/edgesync/edgesync/sync/wire"
)

// registry implements ingest.Registry on top of the central Raft.
type registry Node

var _ ingest.Registry = (*registry)(nil)

// Cursor is the highest site seq applied, read through the leader so a
// reconnecting relay never resends from a stale point.
func (r *registry) Cursor(ctx context.Context, site string) (uint64, error) {
	n := (*Node)(r)
	var c uint64
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) (err error) {
		c, err = kv.GetUint(txn, key(prefixCursor, site))
		return err
	})
	return c, err
}

// Accept commits a run of records in log entries under the size cap and
// returns the site cursor after the last one. The entries are proposed
// pipelined, so a long run shares Raft appends and fsyncs; each entry applies
// only the records that extend the cursor, so an entry after a failed one
// changes nothing and the relay resends from the cursor.
func (r *registry) Accept(ctx context.Context, site, relayNode string, first uint64, records [][]byte) (uint64, error) {
	n := (*Node)(r)
	at := time.Now().UTC()
	var cmds [][]byte
	var counts []int
	start, size := 0, 0
	cut := func(end int) {
		c := &ingestCommand{Site: site, Relay: relayNode, At: at, First: first + uint64(start), Records: records[start:end]}
		cmds = append(cmds, c.encode())
		counts = append(counts, end-start)
	}
	for i, rec := range records {
		if i > start && size+len(rec) > maxCommandBytes-1024 {
			cut(i)
			start, size = i, 0
		}
		size += len(rec) + 4
	}
	if start < len(records) || len(records) == 0 {
		cut(len(records))
	}
	outs, err := n.raft.ProposePipelined(ctx, cmds)
	cursor := uint64(0)
	for i, out := range outs {
		if rerr := resultError(out); rerr != nil {
			return cursor, rerr
		}
		_, _, rd, derr := cmdenc.NewReader(out)
		if derr != nil {
			return cursor, fmt.Errorf("ingest result: %w", derr)
		}
		cursor = rd.Uint()
		if rd.Err() != nil {
			return cursor, fmt.Errorf("ingest result: %w", rd.Err())
		}
		n.metrics.ingested.Add(float64(counts[i]))
	}
	return cursor, err
}

// Contact records a relay's hello or periodic status.
func (r *registry) Contact(ctx context.Context, site, relayNode string, st wire.OutboxStats) error {
	n := (*Node)(r)
	c := &contactCommand{Site: site, Relay: relayNode, At: time.Now().UTC(), Stats: st}
	out, err := n.raft.Propose(ctx, c.encode())
	if err != nil {
		return err
	}
	return resultError(out)
}
