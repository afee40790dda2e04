//go:build !windows

package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
)

// load is the simulated agents: each device reports small batches of
// inventory records, retrying a batch unchanged (same seqs, same bytes) on
// any error as a real agent's spool does, and remembers what the site
// acknowledged. Within a batch collected_at is shuffled, so seq order is
// not collected_at order and "current = latest collected_at" is tested.
type load struct {
	devices, batch int
	pause          time.Duration

	acked  atomic.Uint64
	sent   atomic.Uint64
	errs   atomic.Uint64
	mu     sync.Mutex
	byDev  map[string]*devLog
	failed error
}

// devLog is one device's acknowledged history.
type devLog struct {
	ackedSeq  uint64
	collected map[uint64]time.Time // every seq ever sent (acked or not)
}

func (l *load) run(ctx context.Context, seed uint64, relays []string, joinToken string) error {
	tok, err := api.ParseJoinToken(joinToken)
	if err != nil {
		return err
	}
	caPEM, err := api.FetchPinnedCA(ctx, relays, tok.CAFingerprint)
	if err != nil {
		return err
	}
	tlsConf, err := api.CATLS(caPEM)
	if err != nil {
		return err
	}
	l.byDev = map[string]*devLog{}
	var wg sync.WaitGroup
	for i := range l.devices {
		ring := append(append([]string{}, relays[i%len(relays):]...), relays[:i%len(relays)]...)
		c := api.NewClient(ring, tlsConf)
		rng := rand.New(rand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			defer c.CloseIdleConnections()
			if err := l.device(ctx, c, rng, joinToken, i); err != nil && ctx.Err() == nil {
				l.mu.Lock()
				l.failed = errors.Join(l.failed, err)
				l.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return l.failed
}

func (l *load) device(ctx context.Context, c *api.Client, rng *rand.Rand, joinToken string, i int) error {
	host := "chaos-" + strconv.Itoa(i)
	var enr api.EnrollResponse
	if err := l.retry(ctx, func() (err error) {
		enr, err = c.Enroll(ctx, api.EnrollRequest{JoinToken: joinToken, DeviceID: record.NewDeviceID(), Hostname: host, OS: "linux", Arch: "amd64"})
		return err
	}); err != nil {
		return fmt.Errorf("%s: enroll: %w", host, err)
	}
	dl := &devLog{collected: map[uint64]time.Time{}}
	l.mu.Lock()
	l.byDev[enr.DeviceID] = dl
	l.mu.Unlock()
	payload, err := json.Marshal(record.Inventory{
		Hostname: host,
		OS:       record.OS{Name: "Debian GNU/Linux", Version: "12", Kernel: "6.1.0-18-amd64", Arch: "x86_64"},
		Hardware: record.Hardware{Vendor: "Chaos", Model: "C-1", CPUModel: "sim", CPUCores: 2, MemoryBytes: 4 << 30},
	})
	if err != nil {
		return err
	}
	base := time.Now().UTC().Truncate(time.Millisecond)
	next := uint64(1)
	for ctx.Err() == nil {
		recs := make([]record.Record, l.batch)
		perm := rng.Perm(l.batch)
		l.mu.Lock()
		for j := range recs {
			seq := next + uint64(j)
			at := base.Add(time.Duration(next+uint64(perm[j])) * time.Millisecond)
			dl.collected[seq] = at
			recs[j] = record.Record{DeviceID: enr.DeviceID, Seq: seq, Kind: record.KindInventory,
				CollectedAt: at, Schema: record.SchemaVersion, Payload: payload}
		}
		l.mu.Unlock()
		var resp api.ReportResponse
		err := l.retry(ctx, func() (err error) {
			l.sent.Add(uint64(len(recs)))
			resp, err = c.Report(ctx, enr.DeviceID, enr.DeviceToken, recs)
			return err
		})
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%s: report seqs %d..: %w", host, next, err)
		}
		last := next + uint64(len(recs)) - 1
		if resp.AckedSeq < last {
			return fmt.Errorf("%s: site acked %d after a batch to %d", host, resp.AckedSeq, last)
		}
		l.acked.Add(uint64(len(recs)))
		l.mu.Lock()
		dl.ackedSeq = last
		l.mu.Unlock()
		next = last + 1
		select {
		case <-ctx.Done():
		case <-time.After(l.pause/2 + rand.N(l.pause)):
		}
	}
	return nil
}

// retry calls fn until it succeeds, ctx ends, or fails with a 4xx other
// than backpressure: a refusal the agent cannot fix by waiting is a finding.
func (l *load) retry(ctx context.Context, fn func() error) error {
	backoff := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		l.errs.Add(1)
		var he *api.HTTPError
		var bp *api.BackpressureError
		wait := backoff
		switch {
		case errors.As(err, &bp):
			wait = min(bp.RetryAfter, 2*time.Second)
		case errors.As(err, &he) && he.StatusCode < 500:
			return err
		default:
			backoff = min(2*backoff, 2*time.Second)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// snapshot returns each device's acked seq and sent collected_at times.
func (l *load) snapshot() map[string]devLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]devLog, len(l.byDev))
	for id, d := range l.byDev {
		out[id] = devLog{ackedSeq: d.ackedSeq, collected: d.collected}
	}
	return out
}
