package uplink

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestTokenBucket_Rate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const rate = 1 << 20 // 1 MiB/s; burst is 256 KiB
		tb := newTokenBucket(rate, time.Now)
		start := time.Now()
		total := 0
		for range 40 {
			if err := tb.wait(context.Background(), 64<<10); err != nil {
				t.Fatal(err)
			}
			total += 64 << 10
		}
		got := time.Since(start)
		want := time.Duration(float64(total-(256<<10)) / rate * float64(time.Second))
		if got < want-time.Millisecond || got > want+time.Millisecond {
			t.Fatalf("sending %d bytes took %s, want %s", total, got, want)
		}
	})
}

func TestTokenBucket_LargeTakeGoesIntoDebt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTokenBucket(100<<10, time.Now) // burst 64 KiB
		start := time.Now()
		_ = tb.wait(context.Background(), 64<<10)  // burst
		_ = tb.wait(context.Background(), 200<<10) // 2s of debt
		if got := time.Since(start); got != 2*time.Second {
			t.Fatalf("took %s, want 2s", got)
		}
	})
}

func TestTokenBucket_UnlimitedAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tb := newTokenBucket(0, time.Now)
		if d := tb.reserve(1 << 30); d != 0 {
			t.Fatalf("unlimited reserve = %s", d)
		}
		tb.setRate(1024)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := tb.wait(ctx, 1<<20); err == nil {
			t.Fatal("wait past ctx deadline returned nil")
		}
	})
}

func TestBackoff_Bounds(t *testing.T) {
	for attempt := range 70 {
		d := backoff(100*time.Millisecond, 10*time.Second, attempt)
		want := min(100*time.Millisecond<<min(attempt, 20), 10*time.Second)
		if d < want/2 || d > want {
			t.Fatalf("backoff(attempt %d) = %s, want in [%s, %s]", attempt, d, want/2, want)
		}
	}
}
