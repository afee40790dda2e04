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
// returns the site cursor after the last one.
func (r *registry) Accept(ctx context.Context, site, relayNode string, first uint64, records [][]byte) (uint64, error) {
	n := (*Node)(r)
	cursor := uint64(0)
	start, size := 0, 0
	flush := func(end int) error {
		c := &ingestCommand{Site: site, Relay: relayNode, At: time.Now().UTC(), First: first + uint64(start), Records: records[start:end]}
		out, err := n.raft.Propose(ctx, c.encode())
		if err != nil {
			return err
		}
		if err := resultError(out); err != nil {
			return err
		}
		_, _, rd, err := cmdenc.NewReader(out)
		if err != nil {
			return fmt.Errorf("ingest result: %w", err)
		}
		cursor = rd.Uint()
		if rd.Err() != nil {
			return fmt.Errorf("ingest result: %w", rd.Err())
		}
		n.metrics.ingested.Add(float64(end - start))
		return nil
	}
	for i, rec := range records {
		if i > start && size+len(rec) > maxCommandBytes-1024 {
			if err := flush(i); err != nil {
				return cursor, err
			}
			start, size = i, 0
		}
		size += len(rec) + 4
	}
	if start < len(records) || len(records) == 0 {
		if err := flush(len(records)); err != nil {
			return cursor, err
		}
	}
	return cursor, nil
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
