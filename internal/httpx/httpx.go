package httpx

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
)

// Error is the body of every admin API error.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// WriteError answers with a stable error code and a message.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	WriteJSON(w, status, Error{Code: code, Message: msg})
}

// HashToken is the hex SHA-256 under which tokens are stored.
func HashToken(tok string) string {
	if tok == "" {
		return ""
	}
	s := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(s[:])
}

// BearerToken extracts the token of an "Authorization: Bearer" header.
func BearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return ""
	}
	return strings.TrimSpace(h[7:])
}

// RequireToken wraps next so it runs only for requests whose bearer token
// hashes to what wantHash returns. wantHash reads replicated state, so every
// member of a cluster accepts the same token.
func RequireToken(wantHash func() string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := BearerToken(r)
		want := wantHash()
		if tok == "" || want == "" || subtle.ConstantTimeCompare([]byte(HashToken(tok)), []byte(want)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="edgesync"`)
			WriteError(w, http.StatusUnauthorized, "unauthorized", "a valid admin bearer token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}
