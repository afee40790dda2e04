package relay

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// batcher is the group commit: reports from many agents that arrive while
// earlier proposals are in flight share one Raft log entry, so the cost of the
// majority fsync is paid once per batch rather than once per agent request.
type batcher struct {
	propose  func(ctx context.Context, cmd []byte) ([]byte, error)
	now      func() time.Time
	queue    chan *pendingReport
	inflight int
	maxBytes int
	observe  func(requests, bytes int)
	stopped  chan struct{} // closed when Run returns
}

type pendingReport struct {
	req  reportRequest
	size int
	done chan pendingResult // buffered, written once
}

type pendingResult struct {
	res reportResult
	err error
}

func newBatcher(propose func(context.Context, []byte) ([]byte, error), observe func(int, int)) *batcher {
	return &batcher{
		propose:  propose,
		now:      time.Now,
		queue:    make(chan *pendingReport, 4096),
		inflight: 4,
		maxBytes: maxCommandBytes,
		observe:  observe,
		stopped:  make(chan struct{}),
	}
}

// Submit queues one request and waits for its commit.
func (b *batcher) Submit(ctx context.Context, req reportRequest) (reportResult, error) {
	p := &pendingReport{req: req, size: requestSize(req), done: make(chan pendingResult, 1)}
	select {
	case b.queue <- p:
	case <-b.stopped:
		return reportResult{}, ErrClosed
	case <-ctx.Done():
		return reportResult{}, ctx.Err()
	}
	select {
	case r := <-p.done:
		return r.res, r.err
	case <-b.stopped:
		return reportResult{}, ErrClosed
	case <-ctx.Done():
		// The proposal may still commit; the agent retries and the retry is
		// recognised as a duplicate.
		return reportResult{}, ctx.Err()
	}
}

// Run proposes batches until ctx is done. A slot is taken before the first
// request of a batch is dequeued, so while every slot is busy requests pile up
// and the next batch is large.
func (b *batcher) Run(ctx context.Context) error {
	defer close(b.stopped)
	slots := make(chan struct{}, b.inflight)
	var wg sync.WaitGroup
	defer wg.Wait()
	var carry *pendingReport // dequeued but did not fit the previous batch
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-ctx.Done():
				return nil
			}
		}
		batch := []*pendingReport{first}
		size := first.size
	gather:
		for size < b.maxBytes {
			select {
			case p := <-b.queue:
				if size+p.size > b.maxBytes {
					carry = p
					break gather
				}
				batch = append(batch, p)
				size += p.size
			default:
				break gather
			}
		}
		wg.Go(func() { b.commit(ctx, batch, slots) })
	}
}

func (b *batcher) commit(ctx context.Context, batch []*pendingReport, slots chan struct{}) {
	defer func() { <-slots }()
	cmd := &reportsCommand{At: b.now().UTC(), Requests: make([]reportRequest, len(batch))}
	for i, p := range batch {
		cmd.Requests[i] = p.req
	}
	enc := cmd.encode()
	if b.observe != nil {
		b.observe(len(batch), len(enc))
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := b.propose(pctx, enc)
	if err == nil {
		err = resultError(out)
	}
	var results []reportResult
	if err == nil {
		results, err = decodeReportResults(out)
		if err == nil && len(results) != len(batch) {
			err = fmt.Errorf("relay: %d results for %d requests", len(results), len(batch))
		}
	}
	for i, p := range batch {
		if err != nil {
			p.done <- pendingResult{err: err}
			continue
		}
		p.done <- pendingResult{res: results[i]}
	}
}
