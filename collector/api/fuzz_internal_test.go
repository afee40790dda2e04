package api

import (
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// FuzzDecodeError: a relay's error answer, whatever its body and
// Retry-After, becomes an *HTTPError with a typed Err, a code, a bounded
// message and a RetryAfter that is never negative.
func FuzzDecodeError(f *testing.F) {
	for _, s := range []struct {
		status int
		retry  string
		body   string
	}{
		{401, "", `{"code":"unauthorized","message":"unknown device"}`},
		{403, "", `{"code":"invalid_join_token","message":"x"}`},
		{409, "", `{"code":"conflict","message":"x","records":[{"seq":4}]}`},
		{503, "7", `{"code":"backpressure","message":"disk"}`},
		{503, "-1", `{"code":"backpressure"}`},
		{503, "9223372036", `{"code":"backpressure"}`},
		{500, "", "<html>oops</html>"},
		{502, "x", ""},
		{400, "", `{"code":""}`},
	} {
		f.Add(s.status, s.retry, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, retry string, body []byte) {
		resp := &http.Response{StatusCode: status, Header: http.Header{}}
		if retry != "" {
			resp.Header.Set(HeaderRetryAfter, retry)
		}
		err := decodeError("https://relay/v1/x", resp, body)
		var he *HTTPError
		if !errors.As(err, &he) || he.Err == nil || he.Body.Code == "" {
			t.Fatalf("decodeError = %#v", err)
		}
		if he.RetryAfter < 0 {
			t.Fatalf("Retry-After %q gave a negative wait %v", retry, he.RetryAfter)
		}
		if he.Body.Code == "http_"+strconv.Itoa(status) && len(he.Body.Message) > 200 {
			t.Fatalf("fallback message is %d bytes", len(he.Body.Message))
		}
		if bp, ok := errors.AsType[*BackpressureError](err); ok && bp.RetryAfter <= 0 {
			t.Fatalf("backpressure without a wait: %v", bp.RetryAfter)
		}
	})
}

// TestDecodeErrorRetryAfterCap: a huge Retry-After is capped, not wrapped
// negative (found by FuzzDecodeError: "9700000000" gave -2429651h).
func TestDecodeErrorRetryAfterCap(t *testing.T) {
	for _, s := range []string{"86400", "9700000000", "9223372036854775807"} {
		resp := &http.Response{StatusCode: 503, Header: http.Header{HeaderRetryAfter: {s}}}
		var he *HTTPError
		if err := decodeError("u", resp, nil); !errors.As(err, &he) || he.RetryAfter != 24*time.Hour {
			t.Errorf("Retry-After %s: %v", s, he.RetryAfter)
		}
	}
}
