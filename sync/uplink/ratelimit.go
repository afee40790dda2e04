package uplink

import (
	"context"
	"sync"
	"time"
)

// tokenBucket limits bytes per second. A take larger than the bucket is allowed and goes into
// debt, so batches bigger than the burst still flow at the configured rate on average.
type tokenBucket struct {
	now func() time.Time

	// mu guards rate, burst, tokens and last.
	mu     sync.Mutex
	rate   float64 // bytes per second; <= 0 means unlimited
	burst  float64
	tokens float64
	last   time.Time
}

func newTokenBucket(rate int64, now func() time.Time) *tokenBucket {
	tb := &tokenBucket{now: now}
	tb.setRate(rate)
	tb.tokens = tb.burst
	return tb
}

// setRate changes the rate; the burst is a quarter second of traffic, at least 64 KiB.
func (tb *tokenBucket) setRate(rate int64) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.rate = float64(rate)
	tb.burst = max(float64(rate)/4, 64<<10)
	tb.tokens = min(tb.tokens, tb.burst)
	tb.last = tb.now()
}

// reserve takes n bytes and returns how long the caller must wait before sending them.
func (tb *tokenBucket) reserve(n int) time.Duration {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.rate <= 0 {
		return 0
	}
	now := tb.now()
	tb.tokens = min(tb.burst, tb.tokens+now.Sub(tb.last).Seconds()*tb.rate)
	tb.last = now
	tb.tokens -= float64(n)
	if tb.tokens >= 0 {
		return 0
	}
	return time.Duration(-tb.tokens / tb.rate * float64(time.Second))
}

// wait takes n bytes, blocking until they may be sent or ctx is done.
func (tb *tokenBucket) wait(ctx context.Context, n int) error {
	d := tb.reserve(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
