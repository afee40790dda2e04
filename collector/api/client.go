package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/edgesync/edgesync/collector/record"
)

// compressAbove is the body size above which the Client zstd-compresses.
const compressAbove = 4 << 10

// maxResponseBytes caps what the Client reads from a relay.
const maxResponseBytes = 1 << 20

// Client talks to the relays of one site, failing over between them.
// It is safe for concurrent use.
type Client struct {
	relays []string
	hc     *http.Client
	enc    *zstd.Encoder

	mu sync.Mutex // protects cur
	// cur is the index of the relay that last answered; calls start there.
	cur int
}

// NewClient returns a client for relays (base URLs such as
// "https://10.0.0.5:8080"). A nil tlsConf uses the system roots.
func NewClient(relays []string, tlsConf *tls.Config) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf.Clone()
	}
	tr.MaxIdleConnsPerHost = 16
	tr.ResponseHeaderTimeout = 60 * time.Second
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	rs := make([]string, 0, len(relays))
	for _, r := range relays {
		rs = append(rs, strings.TrimRight(r, "/"))
	}
	return &Client{relays: rs, hc: &http.Client{Transport: tr, Timeout: 2 * time.Minute}, enc: enc}
}

// Relays returns the relay URLs the client uses.
func (c *Client) Relays() []string { return append([]string(nil), c.relays...) }

// CloseIdleConnections closes idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Enroll enrolls the device with the site.
func (c *Client) Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error) {
	var resp EnrollResponse
	err := c.do(ctx, http.MethodPost, PathEnroll, "", "", req, &resp)
	return resp, err
}

// Report sends a batch of records. Bodies over 4 KiB are zstd-compressed.
func (c *Client) Report(ctx context.Context, deviceID, token string, recs []record.Record) (ReportResponse, error) {
	var resp ReportResponse
	err := c.do(ctx, http.MethodPost, PathReports, deviceID, token, ReportRequest{Records: recs}, &resp)
	return resp, err
}

// Config fetches the agent configuration.
func (c *Client) Config(ctx context.Context, deviceID, token string) (Config, error) {
	var resp Config
	err := c.do(ctx, http.MethodGet, PathConfig, deviceID, token, nil, &resp)
	return resp, err
}

// do tries each relay once, starting with the one that answered last. It
// moves on after a connection error or a 5xx (including 503); a 4xx is
// final. After a full round it returns the last error; a
// *BackpressureError (errors.As) carries the Retry-After to wait.
func (c *Client) do(ctx context.Context, method, path, device, token string, in, out any) error {
	if len(c.relays) == 0 {
		return errors.New("api: no relays configured")
	}
	var body []byte
	compressed := false
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s request: %w", path, err)
		}
		body = b
		if len(b) > compressAbove {
			body, compressed = c.enc.EncodeAll(b, make([]byte, 0, len(b)/3)), true
		}
	}
	c.mu.Lock()
	start := c.cur
	c.mu.Unlock()
	var errs []error
	var backpressure error
	for i := range c.relays {
		idx := (start + i) % len(c.relays)
		err := c.try(ctx, c.relays[idx], method, path, device, token, body, compressed, out)
		if err == nil {
			c.mu.Lock()
			c.cur = idx
			c.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(append(errs, err)...)
		}
		var he *HTTPError
		if errors.As(err, &he) && he.StatusCode < 500 {
			c.mu.Lock()
			c.cur = idx // the relay is up; it simply said no
			c.mu.Unlock()
			return err
		}
		if errors.Is(err, ErrBackpressure) && backpressure == nil {
			backpressure = err
		}
		errs = append(errs, err)
	}
	c.mu.Lock()
	c.cur = (start + 1) % len(c.relays)
	c.mu.Unlock()
	if backpressure != nil {
		// The whole site is under backpressure: say so first, so
		// errors.As finds the Retry-After.
		return errors.Join(append([]error{backpressure}, errs...)...)
	}
	return errors.Join(errs...)
}

func (c *Client) try(ctx context.Context, base, method, path, device, token string, body []byte, compressed bool, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	url := base + path
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("api: new request %s: %w", url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if compressed {
		req.Header.Set(HeaderContentEncoding, "zstd")
	}
	if device != "" {
		req.Header.Set(HeaderDevice, device)
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("api: %s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("api: read %s answer: %w", url, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("api: decode %s answer: %w", url, err)
		}
		return nil
	}
	return decodeError(url, resp, b)
}

// decodeError turns a non-200 answer into an *HTTPError wrapping the typed
// error the code stands for.
func decodeError(url string, resp *http.Response, b []byte) error {
	he := &HTTPError{URL: url, StatusCode: resp.StatusCode}
	if err := json.Unmarshal(b, &he.Body); err != nil || he.Body.Code == "" {
		he.Body = Error{Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b[:min(len(b), 200)]))}
	}
	if s := resp.Header.Get(HeaderRetryAfter); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			he.RetryAfter = time.Duration(min(n, 86400)) * time.Second // cap first: n*1e9 can overflow
		}
	}
	switch {
	case he.Body.Code == CodeUnauthorized || resp.StatusCode == http.StatusUnauthorized:
		he.Err = ErrUnauthorized
	case he.Body.Code == CodeInvalidJoinToken:
		he.Err = ErrInvalidJoinToken
	case he.Body.Code == CodeConflict:
		ce := &ConflictError{}
		if len(he.Body.Records) > 0 {
			ce.Seq = he.Body.Records[0].Seq
		}
		he.Err = ce
	case he.Body.Code == CodeBackpressure:
		ra := he.RetryAfter
		if ra <= 0 {
			ra = time.Second
		}
		he.Err = &BackpressureError{RetryAfter: ra, Reason: he.Body.Message}
	case resp.StatusCode >= 500:
		he.Err = ErrUnavailable
	default:
		he.Err = ErrInvalidRequest
	}
	return he
}
