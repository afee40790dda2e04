package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/sync/uplink"
)

// newDistribution builds the catalog mirror and cache of a node.
func newDistribution(n *Node) (*distribution, error) {
	f, err := uplink.NewFetcher(uplink.Config{
		Site: n.cfg.Site, Node: n.cfg.NodeID, Centrals: n.cfg.Centrals, Transport: n.cfg.UplinkTransport,
		TLS: n.cfg.PKI.ClientTLS(), Logger: n.log,
	})
	if err != nil {
		return nil, err
	}
	d := &distribution{n: n, fetch: f, changed: make(chan struct{})}
	if d.cache, err = newCache(n, f); err != nil {
		return nil, err
	}
	if n.cfg.CatalogInterval <= 0 {
		n.cfg.CatalogInterval = 10 * time.Second
	}
	return d, nil
}

// blobHandler serves /v1/blobs/ with the node's download caps. On HTTPS it
// requires a device token; the plain listener (--blob-addr) does not.
func (d *distribution) blobHandler(authenticate bool) http.Handler {
	cfg := api.BlobConfig{RateBytes: d.n.cfg.DownloadRate, MaxDownloads: d.n.cfg.MaxDownloads, RetryAfter: 5 * time.Second}
	if authenticate {
		b := (*backend)(d.n)
		cfg.Authenticate = func(r *http.Request) error {
			token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				return api.ErrUnauthorized
			}
			return b.Authenticate(r.Context(), r.Header.Get(api.HeaderDevice), token)
		}
	}
	return d.handler(cfg)
}

// handler shares one limiter and one download cap between both listeners.
func (d *distribution) handler(cfg api.BlobConfig) http.Handler {
	d.hmu.Lock()
	defer d.hmu.Unlock()
	if d.shared == nil {
		d.shared = api.NewBlobHandler(d.cache, api.BlobConfig{RateBytes: cfg.RateBytes, MaxDownloads: cfg.MaxDownloads, RetryAfter: cfg.RetryAfter})
	}
	shared := d.shared
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Authenticate != nil {
			if err := cfg.Authenticate(r); err != nil {
				httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "unknown device or bad token")
				return
			}
		}
		// A stopping node cuts its downloads at once (the agent resumes at
		// another node) instead of holding shutdown for a long transfer.
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		stop := context.AfterFunc(d.cache.base, cancel)
		defer stop()
		shared.ServeHTTP(w, r.WithContext(ctx))
	})
}

// run pulls the catalog (leader), prefetches (every node) and serves the
// plain-HTTP blob listener when configured, until ctx is done.
func (d *distribution) run(ctx context.Context) {
	defer d.fetch.Close()
	defer d.cache.cancel()
	var wg sync.WaitGroup
	wg.Go(func() { d.catalogLoop(ctx) })
	wg.Go(func() { d.cache.prefetchLoop(ctx) })
	if d.n.cfg.BlobAddr != "" {
		wg.Go(func() { d.serveBlobs(ctx) })
	}
	<-ctx.Done()
	d.cache.cancel()
	wg.Wait()
}

func (d *distribution) serveBlobs(ctx context.Context) {
	ln, err := net.Listen("tcp", d.n.cfg.BlobAddr)
	if err != nil {
		d.n.log.Error("Blob listener not started", "addr", d.n.cfg.BlobAddr, "err", err)
		return
	}
	mux := http.NewServeMux()
	mux.Handle(api.PathBlobs, d.blobHandler(false))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(d.n.log.Handler(), slog.LevelDebug)}
	d.n.log.Info("Plain-HTTP blob listener started", "addr", ln.Addr().String())
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		d.n.log.Error("Blob listener failed", "err", err)
	}
}

// ---- admin API: cache list|verify|evict ----

func (n *Node) handleCache(w http.ResponseWriter, r *http.Request) {
	st, err := n.Cache()
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, st)
}

func (n *Node) handleCacheVerify(w http.ResponseWriter, r *http.Request) {
	bad, err := n.VerifyCache()
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"node": n.cfg.NodeID, "corrupt": bad})
}

// handleCacheEvict evicts down to ?target_size=BYTES (default 0: every blob
// no active task needs).
func (n *Node) handleCacheEvict(w http.ResponseWriter, r *http.Request) {
	var target int64
	if s := r.URL.Query().Get("target_size"); s != "" {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil || v < 0 {
			httpx.WriteError(w, http.StatusBadRequest, "bad_request", fmt.Sprintf("target_size %q: want a number of bytes >= 0", s))
			return
		}
		target = v
	}
	res, err := n.EvictCache(target)
	if err != nil {
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
		return
	}
	httpx.WriteJSON(w, http.StatusOK, res)
}
