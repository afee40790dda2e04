package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/api/apitest"
)

// FuzzParseJoinToken: the parser never panics, every refusal wraps
// ErrInvalidJoinToken, and whatever it accepts is well formed and prints
// back to the same string.
func FuzzParseJoinToken(f *testing.F) {
	fp := strings.Repeat("0f", 32)
	tok := api.NewJoinToken("branch-01", fp)
	secret := tok.Secret
	// The valid and invalid cases of TestJoinToken.
	for _, s := range []string{
		tok.String(),
		" " + tok.String() + "\n",
		"",
		"esj2.site." + secret + "." + fp,
		"esj1..." + fp,
		"esj1.si.te." + secret + "." + fp,
		"esj1.site." + secret + "=." + fp,
		"esj1.site." + secret[:40] + "." + fp,
		"esj1.site." + secret + "." + strings.ToUpper(fp),
		"esj1.site." + secret + "." + fp[:62],
		"esj1.site." + secret + "." + strings.Repeat("zz", 32),
		"esj1.sité." + secret + "." + fp,
		"esj1.site." + secret + "." + fp + ".x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := api.ParseJoinToken(s)
		if err != nil {
			if !errors.Is(err, api.ErrInvalidJoinToken) {
				t.Fatalf("error %v does not wrap ErrInvalidJoinToken", err)
			}
			if got != (api.JoinToken{}) {
				t.Fatalf("refused token came back non-empty: %+v", got)
			}
			return
		}
		if !api.ValidSiteID(got.Site) || len(got.CAFingerprint) != 64 || api.NormalizeFingerprint(got.CAFingerprint) != got.CAFingerprint {
			t.Fatalf("accepted a malformed token %+v", got)
		}
		if got.String() != strings.TrimSpace(s) {
			t.Fatalf("round trip: %q -> %q", s, got.String())
		}
		again, err := api.ParseJoinToken(got.String())
		if err != nil || again != got {
			t.Fatalf("reparse: %+v %v", again, err)
		}
	})
}

// FuzzEnrollHandler: POST /v1/enroll never answers 5xx, every refusal has
// an api.Error body, and a refused request enrolls nobody.
func FuzzEnrollHandler(f *testing.F) {
	tok := api.NewJoinToken("site-a", strings.Repeat("ab", 32))
	b := apitest.NewBackend(tok)
	h := api.NewHandler(b, api.HandlerConfig{Now: func() time.Time { return testNow }})
	other := api.NewJoinToken("site-a", tok.CAFingerprint)
	// The cases of TestHandler_Enroll, plus malformed bodies.
	for _, req := range []api.EnrollRequest{
		{JoinToken: tok.String(), DeviceID: "0123456789abcdef0123456789abcdef", Hostname: "pc-2"},
		{JoinToken: other.String(), Hostname: "pc"},
		{JoinToken: "esj1.x", Hostname: "pc"},
		{Hostname: "pc"},
		{JoinToken: tok.String(), DeviceID: "XYZ", Hostname: "pc"},
		{JoinToken: tok.String()},
		{JoinToken: tok.String(), Hostname: "pc\x00"},
	} {
		body, _ := json.Marshal(req)
		f.Add(body, false)
	}
	f.Add([]byte(`{"join_token":"x","hostname":"pc","extra":1}`), false)
	f.Add([]byte(`{"join_token":"x"} {}`), false)
	f.Add([]byte(`[]`), false)
	f.Add([]byte("\xff{}"), false)
	f.Add([]byte("\x28\xb5\x2f\xfd\x00\x58\x00\x00"), true)
	f.Fuzz(func(t *testing.T, body []byte, compressed bool) {
		before := b.Devices()
		req := httptest.NewRequest(http.MethodPost, api.PathEnroll, bytes.NewReader(body))
		if compressed {
			req.Header.Set("Content-Encoding", "zstd")
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code == http.StatusOK {
			var resp api.EnrollResponse
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || resp.DeviceToken == "" || resp.SiteID != "site-a" {
				t.Fatalf("enroll answer %q: %v", w.Body.String(), err)
			}
			return
		}
		var apiErr api.Error
		if err := json.Unmarshal(w.Body.Bytes(), &apiErr); err != nil || apiErr.Code == "" {
			t.Fatalf("error body %q: %v", w.Body.String(), err)
		}
		if after := b.Devices(); !slices.Equal(before, after) {
			t.Fatalf("refused enroll (%d %s) changed the devices: %v -> %v", w.Code, apiErr.Code, before, after)
		}
	})
}

// taskBackend adds api.TaskBackend to apitest.Backend and records what the
// handler passed.
type taskBackend struct {
	*apitest.Backend
	since uint64
	wait  time.Duration
	calls int
}

func (b *taskBackend) Tasks(_ context.Context, _ string, since uint64, wait time.Duration) (api.TaskList, error) {
	b.since, b.wait = since, wait
	b.calls++
	return api.TaskList{Version: 7}, nil
}

// FuzzTasksQuery: the long poll's since and wait parameters are parsed
// strictly (a refusal never reaches the backend) and wait is capped.
func FuzzTasksQuery(f *testing.F) {
	tok := api.NewJoinToken("site-a", strings.Repeat("ab", 32))
	tb := &taskBackend{Backend: apitest.NewBackend(tok)}
	h := api.NewHandler(tb, api.HandlerConfig{Now: func() time.Time { return testNow }})
	resp, _ := tb.Enroll(context.Background(), api.EnrollRequest{JoinToken: tok.String(), Hostname: "pc"})
	for _, q := range []string{"", "since=0&wait=0", "since=12&wait=30", "wait=3600", "since=-1", "since=x", "wait=-5", "wait=1e3",
		"since=18446744073709551615", "since=18446744073709551616", "wait=9223372036854775807", "since=1&since=2", "since=%zz"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, api.PathTasks, nil)
		req.URL.RawQuery = rawQuery
		req.Header.Set(api.HeaderDevice, resp.DeviceID)
		req.Header.Set("Authorization", "Bearer "+resp.DeviceToken)
		calls := tb.calls
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		q := req.URL.Query()
		since, errSince := strconv.ParseUint(q.Get("since"), 10, 64)
		secs, errWait := strconv.Atoi(q.Get("wait"))
		okSince := q.Get("since") == "" || errSince == nil
		okWait := q.Get("wait") == "" || (errWait == nil && secs >= 0)
		if okSince && okWait {
			if w.Code != http.StatusOK || tb.calls != calls+1 {
				t.Fatalf("query %q: status %d, calls %d->%d", rawQuery, w.Code, calls, tb.calls)
			}
			if tb.since != since || tb.wait < 0 || tb.wait > api.MaxTaskWait {
				t.Fatalf("query %q: backend got since=%d wait=%v", rawQuery, tb.since, tb.wait)
			}
			var list api.TaskList
			if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || list.Tasks == nil {
				t.Fatalf("answer %q: %v", w.Body.String(), err)
			}
			return
		}
		if w.Code != http.StatusBadRequest || tb.calls != calls {
			t.Fatalf("query %q: status %d, calls %d->%d, want 400 and no call", rawQuery, w.Code, calls, tb.calls)
		}
	})
}

// memBlobs is a BlobSource of one blob.
type memBlobs struct {
	sum  string
	data []byte
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (m memBlobs) OpenBlob(_ context.Context, sum string) (io.ReadSeekCloser, int64, error) {
	if sum != m.sum {
		return nil, 0, api.ErrBlobNotFound
	}
	return nopCloser{bytes.NewReader(m.data)}, int64(len(m.data)), nil
}

// FuzzBlobRange: whatever the path and Range / If-Range / If-None-Match
// headers, GET /v1/blobs/ answers no 5xx and only ever sends bytes of the
// blob at the offsets it names (200: all of it; 206: the Content-Range
// slice).
func FuzzBlobRange(f *testing.F) {
	data := []byte("0123456789abcdefghijklmnopqrstuvwxyz")
	sum := strings.Repeat("ab", 32)
	h := api.NewBlobHandler(memBlobs{sum: sum, data: data}, api.BlobConfig{MaxDownloads: 4})
	etag := `"` + sum + `"`
	for _, s := range [][4]string{
		{sum, "", "", ""},
		{sum, "bytes=10-", etag, ""},
		{sum, "bytes=0-0", "", ""},
		{sum, "bytes=-5", "", ""},
		{sum, "bytes=5-2", "", ""},
		{sum, "bytes=100-", "", ""},
		{sum, "bytes=0-1,3-4", "", ""},
		{sum, "bytes=10-", `"other"`, ""},
		{sum, "bytes=9223372036854775807-", "", ""},
		{sum, "", "", etag},
		{strings.ToUpper(sum), "", "", ""},
		{"../" + sum, "", "", ""},
		{strings.Repeat("cd", 32), "", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, name, rng, ifRange, ifNoneMatch string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = api.PathBlobs + name
		for k, v := range map[string]string{"Range": rng, "If-Range": ifRange, "If-None-Match": ifNoneMatch} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		body := w.Body.Bytes()
		switch {
		case w.Code >= 500:
			t.Fatalf("status %d: %s", w.Code, body)
		case w.Code == http.StatusOK:
			if name != sum || !bytes.Equal(body, data) {
				t.Fatalf("200 for %q sent %q", name, body)
			}
		case w.Code == http.StatusPartialContent:
			if name != sum {
				t.Fatalf("206 for %q", name)
			}
			if strings.HasPrefix(w.Header().Get("Content-Type"), "multipart/") {
				return // several ranges: the parts are net/http's business
			}
			var start, end, size int
			cr := w.Header().Get("Content-Range")
			if n, err := fmt.Sscanf(cr, "bytes %d-%d/%d", &start, &end, &size); err != nil || n != 3 {
				t.Fatalf("Content-Range %q: %v", cr, err)
			}
			if size != len(data) || start < 0 || end < start || end >= size || !bytes.Equal(body, data[start:end+1]) {
				t.Fatalf("Content-Range %q with body %q", cr, body)
			}
		default:
			if len(body) > 0 && bytes.Contains(body, data[:8]) {
				t.Fatalf("status %d leaked blob bytes: %q", w.Code, body)
			}
		}
	})
}

// TestTasksQueryWait: the long poll's wait is capped before it becomes a
// Duration (found by FuzzTasksQuery: wait=9223372036854775807 overflowed to
// a negative wait).
func TestTasksQueryWait(t *testing.T) {
	tok := api.NewJoinToken("site-a", strings.Repeat("ab", 32))
	tb := &taskBackend{Backend: apitest.NewBackend(tok)}
	h := api.NewHandler(tb, api.HandlerConfig{Now: func() time.Time { return testNow }})
	resp, _ := tb.Enroll(context.Background(), api.EnrollRequest{JoinToken: tok.String(), Hostname: "pc"})
	for q, want := range map[string]time.Duration{
		"wait=30":                  30 * time.Second,
		"wait=3600":                api.MaxTaskWait,
		"wait=9223372036":          api.MaxTaskWait,
		"wait=9223372036854775807": api.MaxTaskWait,
	} {
		req := httptest.NewRequest(http.MethodGet, api.PathTasks+"?"+q, nil)
		req.Header.Set(api.HeaderDevice, resp.DeviceID)
		req.Header.Set("Authorization", "Bearer "+resp.DeviceToken)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || tb.wait != want {
			t.Errorf("%s: status %d, backend wait %v, want %v", q, w.Code, tb.wait, want)
		}
	}
}

// TestBlobZeroSuffixRange: Range: bytes=-0 gets the whole blob with 200
// (found by FuzzBlobRange: net/http sent 206 with "bytes 36-35/36").
func TestBlobZeroSuffixRange(t *testing.T) {
	data := []byte("0123456789")
	sum := strings.Repeat("ab", 32)
	h := api.NewBlobHandler(memBlobs{sum: sum, data: data}, api.BlobConfig{})
	for _, rng := range []string{"bytes=-0", "bytes=-000", "bytes=0-1, -0", "bytes=- 0", "bytes= -+0"} {
		req := httptest.NewRequest(http.MethodGet, api.PathBlobs+sum, nil)
		req.Header.Set("Range", rng)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK || !bytes.Equal(w.Body.Bytes(), data) || w.Header().Get("Content-Range") != "" {
			t.Errorf("%s: %d %q Content-Range %q", rng, w.Code, w.Body.String(), w.Header().Get("Content-Range"))
		}
	}
	req := httptest.NewRequest(http.MethodGet, api.PathBlobs+sum, nil)
	req.Header.Set("Range", "bytes=-3")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusPartialContent || w.Body.String() != "789" {
		t.Errorf("bytes=-3: %d %q", w.Code, w.Body.String())
	}
}
