package websession

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzSession: whatever Cookie, Origin, Referer, Host and CSRF token a
// request carries, Get finds a session only for its exact cookie value, and
// CheckCSRF passes only with the session's CSRF token from the same origin
// (or no origin at all).
func FuzzSession(f *testing.F) {
	m := &Manager{CheckToken: func(tok string) bool { return tok == "admin" }}
	w := httptest.NewRecorder()
	s, ok := m.SignIn(w, "admin")
	if !ok {
		f.Fatal("sign in")
	}
	good := CookieName + "=" + s.ID
	for _, c := range [][5]string{
		{good, "", "", "console.example", s.CSRF},
		{good, "https://console.example", "", "console.example", s.CSRF},
		{good, "https://evil.example", "", "console.example", s.CSRF},
		{good, "", "https://evil.example/x", "console.example", s.CSRF},
		{good, "null", "", "console.example", s.CSRF},
		{good, "", "", "console.example", s.CSRF[:10]},
		{good, "", "", "console.example", ""},
		{CookieName + "=" + s.ID[:20], "", "", "h", s.CSRF},
		{CookieName + "=", "", "", "h", ""},
		{CookieName + "=\"" + s.ID + "\"", "", "", "h", s.CSRF},
		{"a=b; " + good + "; " + CookieName + "=x", "", "", "h", s.CSRF},
		{good, "http://[::1", "", "h", s.CSRF},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4])
	}
	f.Fuzz(func(t *testing.T, cookie, origin, referer, host, csrf string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(""))
		r.Host = host
		for k, v := range map[string]string{"Cookie": cookie, "Origin": origin, "Referer": referer, "X-CSRF-Token": csrf} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		got := m.Get(r)
		if got != nil {
			c, err := r.Cookie(CookieName)
			if err != nil || c.Value != s.ID || got.ID != s.ID || got.CSRF != s.CSRF {
				t.Fatalf("cookie %q found session %+v", cookie, got)
			}
		}
		if CheckCSRF(got, r) {
			o := origin
			if o == "" {
				o = referer
			}
			u, err := url.Parse(o)
			if got == nil || csrf != s.CSRF || (o != "" && (err != nil || u.Host != host)) {
				t.Fatalf("CSRF check passed: cookie %q origin %q referer %q host %q token %q", cookie, origin, referer, host, csrf)
			}
		}
	})
}
