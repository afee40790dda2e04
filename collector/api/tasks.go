package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Paths of the distribution calls.
const (
	PathTasks = "/v1/tasks"
	PathBlobs = "/v1/blobs/"
)

// TaskPackage is what an agent needs to know of a task's package.
type TaskPackage struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Version  string `json:"version"`
	Type     string `json:"type"` // install or file
	Command  string `json:"command,omitempty"`
	Dest     string `json:"dest,omitempty"`
	Mode     string `json:"mode,omitempty"` // octal permission bits of a placed file; empty = 0644
	FileName string `json:"file_name"`
	SHA256   string `json:"sha256"`
	Size     int64  `json:"size"`
}

// Task is one pending task for the polling device. Attempt grows when an
// administrator retries the device, so an agent runs a task again once per
// attempt.
type Task struct {
	ID      string      `json:"id"`
	Attempt int         `json:"attempt"`
	At      time.Time   `json:"at,omitzero"`
	Package TaskPackage `json:"package"`
}

// TaskList answers GET /v1/tasks. Version is the relay's catalog version:
// pass it back as since to wait for the next change.
type TaskList struct {
	Version uint64 `json:"version"`
	Tasks   []Task `json:"tasks"`
}

// TaskBackend is the optional Backend capability behind GET /v1/tasks.
type TaskBackend interface {
	// Tasks returns the device's pending tasks. When the catalog version is
	// not above since it waits up to wait for a change first.
	Tasks(ctx context.Context, deviceID string, since uint64, wait time.Duration) (TaskList, error)
}

// MaxTaskWait caps a long poll.
const MaxTaskWait = 60 * time.Second

func (h *handler) tasks(w http.ResponseWriter, r *http.Request) {
	tb, ok := h.b.(TaskBackend)
	if !ok {
		writeError(w, http.StatusNotFound, Error{Code: CodeNotFound, Message: "no tasks on this server"})
		return
	}
	device, err := h.authenticate(r)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	q := r.URL.Query()
	since, err := strconv.ParseUint(q.Get("since"), 10, 64)
	if err != nil && q.Get("since") != "" {
		h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "since must be a catalog version"), nil)
		return
	}
	wait := time.Duration(0)
	if s := q.Get("wait"); s != "" {
		secs, err := strconv.Atoi(s)
		if err != nil || secs < 0 {
			h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "wait must be seconds"), nil)
			return
		}
		wait = time.Duration(min(secs, int(MaxTaskWait/time.Second))) * time.Second // cap first: secs*1e9 can overflow
	}
	list, err := tb.Tasks(r.Context(), device, since, wait)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	if list.Tasks == nil {
		list.Tasks = []Task{}
	}
	writeJSON(w, http.StatusOK, list)
}

// ---- blob serving ----

// Blob errors a BlobSource returns.
var (
	// ErrBlobNotFound: no package of the catalog has this hash (404).
	ErrBlobNotFound = errors.New("api: no such blob")
	// ErrBlobPending: the relay is fetching the blob; try later or elsewhere (503).
	ErrBlobPending = errors.New("api: blob not cached yet")
)

// BlobSource opens verified blobs by SHA-256. The relay cache implements it.
type BlobSource interface {
	OpenBlob(ctx context.Context, sha256 string) (io.ReadSeekCloser, int64, error)
}

// BlobConfig configures NewBlobHandler.
type BlobConfig struct {
	// RateBytes caps the bytes per second sent to all clients together (0 = no cap).
	RateBytes int64
	// MaxDownloads caps concurrent downloads; beyond it a client gets 503 + Retry-After.
	MaxDownloads int
	// RetryAfter is sent with 503 (default 5s).
	RetryAfter time.Duration
	// Authenticate, when set, must accept the request (agents' device token on
	// HTTPS); the plain-HTTP listener leaves it nil: the hash protects the bytes.
	Authenticate func(r *http.Request) error
}

type blobHandler struct {
	src  BlobSource
	cfg  BlobConfig
	lim  *Limiter
	slot chan struct{}
}

// NewBlobHandler serves GET/HEAD /v1/blobs/{sha256} with http.ServeContent:
// Range, ETag (the hash) and If-None-Match. Without a rate cap the response
// writer's ReadFrom is used, so plain HTTP gets sendfile.
func NewBlobHandler(src BlobSource, cfg BlobConfig) http.Handler {
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5 * time.Second
	}
	h := &blobHandler{src: src, cfg: cfg}
	if cfg.RateBytes > 0 {
		h.lim = NewLimiter(cfg.RateBytes)
	}
	if cfg.MaxDownloads > 0 {
		h.slot = make(chan struct{}, cfg.MaxDownloads)
	}
	return h
}

func validSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func (h *blobHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, Error{Code: CodeMethodNotAllowed, Message: "use GET"})
		return
	}
	sum, ok := strings.CutPrefix(r.URL.Path, PathBlobs)
	if !ok || !validSum(sum) {
		writeError(w, http.StatusBadRequest, Error{Code: CodeInvalidRequest, Message: "a blob is named by its SHA-256: 64 lowercase hex characters"})
		return
	}
	if h.cfg.Authenticate != nil {
		if err := h.cfg.Authenticate(r); err != nil {
			writeError(w, http.StatusUnauthorized, Error{Code: CodeUnauthorized, Message: "unknown device or bad token"})
			return
		}
	}
	if h.slot != nil {
		select {
		case h.slot <- struct{}{}:
			defer func() { <-h.slot }()
		default:
			w.Header().Set(HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(h.cfg.RetryAfter)))
			writeError(w, http.StatusServiceUnavailable, Error{Code: CodeBackpressure, Message: "too many downloads at this relay node"})
			return
		}
	}
	f, _, err := h.src.OpenBlob(r.Context(), sum)
	switch {
	case errors.Is(err, ErrBlobNotFound):
		writeError(w, http.StatusNotFound, Error{Code: CodeNotFound, Message: "no package has blob " + sum})
		return
	case errors.Is(err, ErrBlobPending):
		w.Header().Set(HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(h.cfg.RetryAfter)))
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "blob being fetched; retry or use another relay node"})
		return
	case err != nil:
		w.Header().Set(HeaderRetryAfter, "1")
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: err.Error()})
		return
	}
	defer f.Close()
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if zeroSuffixRange(r.Header.Get("Range")) {
		// net/http answers bytes=-0 with 206 and an invalid Content-Range
		// (golang/go#81262); a server may ignore Range, so send it all.
		r.Header.Del("Range")
	}
	var out http.ResponseWriter = w
	if h.lim != nil {
		out = &limitedWriter{ResponseWriter: w, ctx: r.Context(), lim: h.lim}
	}
	http.ServeContent(out, r, "", time.Time{}, f)
}

// zeroSuffixRange reports whether a Range header asks for a suffix of zero
// bytes ("bytes=-0"), which selects nothing and is unsatisfiable.
func zeroSuffixRange(h string) bool {
	specs, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return false
	}
	for spec := range strings.SplitSeq(specs, ",") { // as net/http's parseRange reads it
		start, end, ok := strings.Cut(spec, "-")
		end = textproto.TrimString(end)
		if ok && textproto.TrimString(start) == "" && end != "" && end[0] != '-' {
			if v, err := strconv.ParseInt(end, 10, 64); err == nil && v == 0 {
				return true
			}
		}
	}
	return false
}

// limitedWriter paces writes through a shared Limiter. It hides ReadFrom
// (no sendfile) because every chunk must wait for its tokens.
type limitedWriter struct {
	http.ResponseWriter
	ctx context.Context
	lim *Limiter
}

func (l *limitedWriter) Write(p []byte) (int, error) {
	n := 0
	for len(p) > 0 {
		c := min(len(p), 32<<10)
		if err := l.lim.Wait(l.ctx, c); err != nil {
			return n, err
		}
		m, err := l.ResponseWriter.Write(p[:c])
		n += m
		if err != nil {
			return n, err
		}
		p = p[c:]
	}
	return n, nil
}

// Limiter is a token bucket shared by many writers: rate bytes per second,
// burst of a tenth of a second (at least 64 KiB).
type Limiter struct {
	rate  float64
	burst float64

	mu     sync.Mutex // guards tokens and last
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of rate bytes per second.
func NewLimiter(rate int64) *Limiter {
	b := max(float64(rate)/10, 64<<10)
	return &Limiter{rate: float64(rate), burst: b, tokens: 0, last: time.Now()}
}

// Wait blocks until n bytes may be sent.
func (l *Limiter) Wait(ctx context.Context, n int) error {
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	deficit := -l.tokens
	l.mu.Unlock()
	if deficit <= 0 {
		return nil
	}
	t := time.NewTimer(time.Duration(deficit / l.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// ---- client side ----

// Tasks polls the device's pending tasks, waiting up to wait for a catalog
// version above since.
func (c *Client) Tasks(ctx context.Context, deviceID, token string, since uint64, wait time.Duration) (TaskList, error) {
	var resp TaskList
	path := PathTasks + "?since=" + strconv.FormatUint(since, 10) + "&wait=" + strconv.Itoa(int(wait/time.Second))
	err := c.do(ctx, http.MethodGet, path, deviceID, token, nil, &resp)
	return resp, err
}

// DownloadStats says how a download went.
type DownloadStats struct {
	Requests int   // HTTP requests made
	Resumed  int   // requests that continued from an offset > 0
	Bytes    int64 // bytes received
}

// Download writes the blob's bytes from offset to the end into w, in order,
// failing over between relays and resuming each time from what w already got
// (HTTP Range). 503 answers are waited out (Retry-After, capped at 5s) after a
// full round of relays. It gives up when ctx is done or after maxRounds rounds
// without progress. w receives a byte at most once; hash it to verify.
func (c *Client) Download(ctx context.Context, deviceID, token, sha256 string, offset, size int64, w io.Writer) (DownloadStats, error) {
	var st DownloadStats
	hc := &http.Client{Transport: c.hc.Transport} // no overall timeout: a capped download may be long
	c.mu.Lock()
	idx := c.cur
	c.mu.Unlock()
	const maxRounds = 20
	var lastErr error
	stalled := 0
	for offset < size || size < 0 {
		progress := false
		var wait time.Duration
		for i := 0; i < len(c.relays) && (offset < size || size < 0); i++ {
			base := c.relays[(idx+i)%len(c.relays)]
			n, ra, err := c.downloadOnce(ctx, hc, base, deviceID, token, sha256, offset, w, &st)
			offset += n
			if n > 0 {
				progress = true
			}
			if err == nil {
				c.mu.Lock()
				c.cur = (idx + i) % len(c.relays)
				c.mu.Unlock()
				return st, nil
			}
			if ctx.Err() != nil {
				return st, ctx.Err()
			}
			var he *HTTPError
			if errors.As(err, &he) && he.StatusCode < 500 && he.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				return st, err
			}
			lastErr = err
			wait = max(wait, ra)
		}
		idx++
		if progress {
			stalled = 0
			continue
		}
		stalled++
		if stalled >= maxRounds {
			return st, fmt.Errorf("api: download %s: no relay made progress in %d rounds: %w", sha256, maxRounds, lastErr)
		}
		wait = min(max(wait, 100*time.Millisecond), 5*time.Second)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return st, ctx.Err()
		case <-t.C:
		}
	}
	return st, nil
}

// downloadOnce makes one ranged request and copies what arrives.
func (c *Client) downloadOnce(ctx context.Context, hc *http.Client, base, device, token, sum string, offset int64, w io.Writer, st *DownloadStats) (int64, time.Duration, error) {
	u := base + PathBlobs + url.PathEscape(sum)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	if device != "" {
		req.Header.Set(HeaderDevice, device)
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if offset > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(offset, 10)+"-")
		req.Header.Set("If-Range", `"`+sum+`"`)
		st.Resumed++
	}
	st.Requests++
	resp, err := hc.Do(req)
	if err != nil {
		return 0, 0, fmt.Errorf("api: GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	want := http.StatusOK
	if offset > 0 {
		want = http.StatusPartialContent
	}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		err := decodeError(u, resp, b)
		var he *HTTPError
		ra := time.Duration(0)
		if errors.As(err, &he) {
			ra = he.RetryAfter
		}
		return 0, ra, err
	}
	n, err := io.Copy(w, resp.Body)
	st.Bytes += n
	if err != nil {
		return n, 0, fmt.Errorf("api: download from %s broke at %d: %w", base, offset+n, err)
	}
	return n, 0, nil
}
