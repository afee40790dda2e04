package audit

import (
	"context"
	"net"
	"net/http"
	"strings"

	"github.com/edgesync/edgesync/internal/httpx"
)

// Handler serves GET of the trail as JSON, newest first. list reads up to
// limit entries; limit says how many the request asks for.
func Handler(list func(limit int) ([]Entry, error), limit func(*http.Request) int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		entries, err := list(limit(r))
		if err != nil {
			httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
			return
		}
		httpx.WriteJSON(w, http.StatusOK, entries)
	}
}

// Audited wraps an admin handler (outside its token check) and records every
// change, every GET sensitive says is worth it (data handed out, costly
// profiles) and every refused (401, 403) request, rate-limited by the Log.
// The entry names the caller SetWho named, else the token's hash prefix.
func Audited(record func(e Entry, denied bool), sensitive func(path string) bool, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		box := &whoBox{}
		r = r.WithContext(context.WithValue(r.Context(), whoKey{}, box))
		next.ServeHTTP(rec, r)
		denied := rec.status == http.StatusUnauthorized || rec.status == http.StatusForbidden
		if r.Method == http.MethodGet && !denied && !sensitive(r.URL.Path) {
			return
		}
		who := box.who
		if who == "" {
			who = TokenWho(r)
		}
		record(Entry{Who: who, Action: r.Method + " " + r.URL.Path, From: RemoteHost(r), Result: ResultOf(rec.status)}, denied)
	})
}

type whoKey struct{}

// whoBox carries the caller's name from the handler back to Audited.
type whoBox struct{ who string }

// SetWho names the caller of a request inside Audited (an account, not the
// token's hash). Outside Audited it does nothing.
func SetWho(r *http.Request, who string) {
	if b, ok := r.Context().Value(whoKey{}).(*whoBox); ok {
		b.who = who
	}
}

// TokenWho names the caller of an admin API request by its token's hash
// prefix (never the token).
func TokenWho(r *http.Request) string {
	tok := httpx.BearerToken(r)
	if tok == "" {
		return "anonymous"
	}
	return "token:" + httpx.HashToken(tok)[:12]
}

// RemoteHost is the request's peer address without the port.
func RemoteHost(r *http.Request) string {
	if h, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		return h
	}
	return r.RemoteAddr
}

// ResultOf is an entry's result for an HTTP status: "ok" below 300 (or no
// status written), else "refused: " and the status text.
func ResultOf(status int) string {
	if status == 0 || status < 300 {
		return "ok"
	}
	return "refused: " + strings.ToLower(http.StatusText(status))
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (pprof profiles
// set write deadlines).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
