package websession

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// CookieName is the session cookie.
const CookieName = "edgesync_session"

// DefaultTTL is how long a session lasts without activity.
const DefaultTTL = 8 * time.Hour

const maxSessions = 1000

// Session is one signed-in browser.
type Session struct {
	ID   string
	CSRF string
	Who  string // audit identity
	// Cred is what the application resolves the session's rights from on
	// every request (an account, a token's hash); opaque here.
	Cred    string
	Expires time.Time
}

// Manager issues and checks sessions.
type Manager struct {
	// CheckToken reports whether an admin token is valid (it reads the hash
	// from replicated state, so every node accepts the same token).
	CheckToken func(token string) bool
	TTL        time.Duration
	// Path is the cookie path ("/" for the console, "/status" for a relay).
	Path string

	mu       sync.Mutex
	sessions map[string]*Session
}

func randomID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// SignIn checks token and, when valid, sets the session cookie.
func (m *Manager) SignIn(w http.ResponseWriter, token string) (*Session, bool) {
	token = strings.TrimSpace(token)
	if token == "" || m.CheckToken == nil || !m.CheckToken(token) {
		return nil, false
	}
	return m.Start(w, "console", ""), true
}

// Start begins a session for a caller the application has authenticated
// (by password, by token) and sets the session cookie.
func (m *Manager) Start(w http.ResponseWriter, who, cred string) *Session {
	ttl := m.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	s := &Session{ID: randomID(), CSRF: randomID(), Who: who, Cred: cred, Expires: time.Now().Add(ttl)}
	m.mu.Lock()
	if m.sessions == nil {
		m.sessions = map[string]*Session{}
	}
	now := time.Now()
	for id, o := range m.sessions {
		if now.After(o.Expires) {
			delete(m.sessions, id)
		}
	}
	if len(m.sessions) >= maxSessions { // drop one (the map order is arbitrary): bounded memory
		for id := range m.sessions {
			delete(m.sessions, id)
			break
		}
	}
	m.sessions[s.ID] = s
	m.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.ID, Path: m.path(), HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: int(ttl.Seconds())})
	return s
}

func (m *Manager) path() string {
	if m.Path == "" {
		return "/"
	}
	return m.Path
}

// SignOut ends the request's session.
func (m *Manager) SignOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(CookieName); err == nil {
		m.mu.Lock()
		delete(m.sessions, c.Value)
		m.mu.Unlock()
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: m.path(), HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// Get returns the request's live session, extending it.
func (m *Manager) Get(r *http.Request) *Session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.sessions[c.Value]
	if s == nil {
		return nil
	}
	if time.Now().After(s.Expires) {
		delete(m.sessions, c.Value)
		return nil
	}
	ttl := m.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	s.Expires = time.Now().Add(ttl)
	cp := *s
	return &cp
}

// CheckCSRF reports whether a POST carries the session's CSRF token (form
// field "csrf" or header X-CSRF-Token) and, when the browser says where it
// comes from, that it is this origin.
func CheckCSRF(s *Session, r *http.Request) bool {
	if s == nil || !SameOrigin(r) {
		return false
	}
	tok := r.Header.Get("X-CSRF-Token")
	if tok == "" {
		tok = r.PostFormValue("csrf")
	}
	return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) == 1
}

// SameOrigin is false when an Origin (or, lacking it, Referer) header names
// another host.
func SameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		o = r.Header.Get("Referer")
	}
	if o == "" || o == "null" && r.Header.Get("Sec-Fetch-Site") == "same-origin" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// SecurityHeaders sets the headers every HTML page gets: a strict CSP (no
// inline script), no framing, no sniffing, no caching.
func SecurityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
}
