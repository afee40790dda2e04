package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/blobstore"
	"github.com/edgesync/edgesync/sync/wire"
)

// Package cache (DESIGN.md §2 flow 3). Each relay node fills its own
// content-addressed cache from central over its own QUIC (or TCP+TLS)
// connection, with its relay certificate: followers do not depend on the
// leader for bytes. Prefetch: the blobs of the site's active tasks. Pull-
// through: a miss for a package blob starts a fetch and waits a little.
// Concurrent misses share one fetch (singleflight); a broken fetch resumes
// from the bytes already on disk; a blob is hash-verified before it becomes
// visible and again whenever its file changed (blobstore); at the critical
// disk threshold the cache takes no new blobs.

// fetcher is the upstream (uplink.Fetcher).
type fetcher interface {
	Catalog(ctx context.Context, since uint64) (wire.Catalog, error)
	Blob(ctx context.Context, sha256 string, offset int64, w io.Writer) (int64, error)
	Close()
}

// ErrCacheFull means the data disk is past its critical threshold.
var ErrCacheFull = errors.New("relay: cache takes no new blobs: data disk almost full")

// Cache tuning.
const (
	pullThroughWait = 20 * time.Second
	fetchAttempts   = 8
	prefetchEvery   = 30 * time.Second
)

type cache struct {
	n     *Node
	store *blobstore.Store
	up    fetcher
	sf    singleflight.Group
	kick  chan struct{}

	base   context.Context // background fetches end with the node
	cancel context.CancelFunc

	// mu guards fetches and resumes (counters for status and tests).
	mu      sync.Mutex
	fetches int
	resumes int
}

func newCache(n *Node, up fetcher) (*cache, error) {
	st, err := blobstore.Open(filepath.Join(n.cfg.DataDir, "cache"))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &cache{n: n, store: st, up: up, kick: make(chan struct{}, 1), base: ctx, cancel: cancel}, nil
}

func (c *cache) kickPrefetch() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// needed maps the blobs of active tasks to their sizes.
func (c *cache) needed() map[string]int64 {
	v, err := c.n.readCatalog()
	if err != nil {
		return nil
	}
	out := map[string]int64{}
	for _, t := range v.Tasks {
		if p, ok := v.Packages[t.Package]; ok && !t.Stopped {
			out[p.SHA256] = p.Size
		}
	}
	return out
}

// prefetchLoop keeps the blobs of active tasks cached.
func (c *cache) prefetchLoop(ctx context.Context) {
	t := time.NewTicker(prefetchEvery)
	defer t.Stop()
	for {
		for sum, size := range c.needed() {
			if _, ok := c.store.Has(sum); ok {
				continue
			}
			if err := c.ensure(ctx, sum, size); err != nil && ctx.Err() == nil {
				c.n.log.Warn("Prefetch failed", "sha256", sum, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.kick:
		}
	}
}

// ensure fetches a blob once however many callers ask at the same time.
func (c *cache) ensure(ctx context.Context, sum string, size int64) error {
	ch := c.sf.DoChan(sum, func() (any, error) { return nil, c.fetch(c.base, sum, size) })
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch downloads sum, resuming after broken streams, and publishes it.
func (c *cache) fetch(ctx context.Context, sum string, size int64) error {
	if _, ok := c.store.Has(sum); ok {
		return nil
	}
	if c.n.diskState.Load() == 2 {
		return ErrCacheFull
	}
	if max := c.n.cfg.CacheMaxBytes; max > 0 && size > 0 {
		need := c.needed()
		if removed, err := c.store.Evict(max-size, func(s string) bool { _, ok := need[s]; return ok }); err == nil && len(removed) > 0 {
			c.n.log.Info("Cache evicted blobs no active task needs", "count", len(removed))
		}
	}
	p, err := c.store.Partial(sum)
	if err != nil {
		return err
	}
	defer p.Close()
	start := time.Now()
	backoff := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		c.mu.Lock()
		if p.Offset() > 0 {
			c.resumes++
		} else {
			c.fetches++
		}
		c.mu.Unlock()
		_, err = c.up.Blob(ctx, sum, p.Offset(), p)
		if err == nil {
			if err := p.Commit(); err != nil {
				return err
			}
			c.n.log.Info("Blob cached", "sha256", sum, "bytes", p.Offset(), "took", time.Since(start).Round(time.Millisecond))
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, wire.ErrBadRequest) || attempt >= fetchAttempts {
			return fmt.Errorf("fetch blob %s: %w", sum, err)
		}
		c.n.log.Debug("Blob fetch broke, resuming", "sha256", sum, "offset", p.Offset(), "err", err)
		t := time.NewTimer(backoff/2 + rand.N(backoff/2+1))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// OpenBlob implements api.BlobSource: a verified cached blob, or a pull-
// through fetch for a blob a catalog package names.
func (c *cache) OpenBlob(ctx context.Context, sum string) (io.ReadSeekCloser, int64, error) {
	f, size, err := c.store.Open(sum)
	if err == nil {
		return f, size, nil
	}
	if errors.Is(err, blobstore.ErrCorrupt) {
		c.n.log.Error("Cached blob failed its hash check; removed and fetched again", "sha256", sum)
	} else if !errors.Is(err, blobstore.ErrNotFound) {
		return nil, 0, err
	}
	v, err := c.n.readCatalog()
	if err != nil {
		return nil, 0, err
	}
	var known int64 = -1
	for _, p := range v.Packages {
		if p.SHA256 == sum {
			known = p.Size
		}
	}
	if known < 0 {
		return nil, 0, api.ErrBlobNotFound
	}
	wctx, cancel := context.WithTimeout(ctx, pullThroughWait)
	defer cancel()
	if err := c.ensure(wctx, sum, known); err != nil {
		return nil, 0, fmt.Errorf("%w: %v", api.ErrBlobPending, err)
	}
	return c.store.Open(sum)
}

// CacheEntry is one cached blob as `cache list` shows it.
type CacheEntry struct {
	blobstore.Info
	Packages []string `json:"packages,omitempty"`
	Needed   bool     `json:"needed"`
}

// CacheStatus is the cache of one relay node.
type CacheStatus struct {
	Node    string       `json:"node"`
	Bytes   int64        `json:"bytes"`
	Fetches int          `json:"fetches"`
	Resumes int          `json:"resumes"`
	Blobs   []CacheEntry `json:"blobs"`
}

// Cache describes this node's cache.
func (n *Node) Cache() (CacheStatus, error) {
	c := n.dist.cache
	list, err := c.store.List()
	if err != nil {
		return CacheStatus{}, err
	}
	v, _ := n.readCatalog()
	need := c.needed()
	st := CacheStatus{Node: n.cfg.NodeID, Blobs: []CacheEntry{}}
	c.mu.Lock()
	st.Fetches, st.Resumes = c.fetches, c.resumes
	c.mu.Unlock()
	for _, b := range list {
		e := CacheEntry{Info: b}
		_, e.Needed = need[b.SHA256]
		for _, p := range v.Packages {
			if p.SHA256 == b.SHA256 {
				e.Packages = append(e.Packages, p.ID)
			}
		}
		st.Bytes += b.Size
		st.Blobs = append(st.Blobs, e)
	}
	return st, nil
}

// VerifyCache hashes every cached blob; corrupt ones are removed (and the
// prefetcher fetches the needed ones again). It returns the corrupt hashes.
func (n *Node) VerifyCache() ([]string, error) {
	c := n.dist.cache
	list, err := c.store.List()
	if err != nil {
		return nil, err
	}
	bad := []string{}
	for _, b := range list {
		if err := c.store.Verify(b.SHA256); errors.Is(err, blobstore.ErrCorrupt) {
			n.log.Error("Cached blob failed its hash check; removed", "sha256", b.SHA256)
			bad = append(bad, b.SHA256)
		} else if err != nil && !errors.Is(err, blobstore.ErrNotFound) {
			return bad, err
		}
	}
	if len(bad) > 0 {
		c.kickPrefetch()
	}
	return bad, nil
}

// EvictResult is what `cache evict` reports.
type EvictResult struct {
	Node       string   `json:"node"`
	TargetSize int64    `json:"target_size"`
	Evicted    []string `json:"evicted"`
	Freed      int64    `json:"freed_bytes"`
	Bytes      int64    `json:"bytes"` // the cache's size afterwards
	// AtTarget is false when the blobs left, which active tasks need, still
	// exceed the target.
	AtTarget bool `json:"at_target"`
}

// EvictCache removes blobs no active task needs, least recently used first,
// until the cache holds at most target bytes (all of them with target 0).
func (n *Node) EvictCache(target int64) (EvictResult, error) {
	c := n.dist.cache
	res := EvictResult{Node: n.cfg.NodeID, TargetSize: target, Evicted: []string{}}
	before, err := c.store.List()
	if err != nil {
		return res, err
	}
	sizes := map[string]int64{}
	for _, b := range before {
		sizes[b.SHA256] = b.Size
		res.Bytes += b.Size
	}
	need := c.needed()
	removed, err := c.store.Evict(target, func(s string) bool { _, ok := need[s]; return ok })
	for _, s := range removed {
		res.Evicted = append(res.Evicted, s)
		res.Freed += sizes[s]
		res.Bytes -= sizes[s]
	}
	res.AtTarget = res.Bytes <= target
	if len(removed) > 0 {
		n.log.Info("Cache evicted blobs no active task needs", "count", len(removed), "freed", res.Freed, "target", target)
	}
	return res, err
}

// CachePath is where a cached blob's file lives (tests corrupt it).
func (n *Node) CachePath(sum string) string { return n.dist.cache.store.Path(sum) }
