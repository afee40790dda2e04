package audit

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/edgesync/edgesync/internal/cmdenc"
)

var cmdDecode = cmdenc.NewReader

func TestAudited(t *testing.T) {
	sensitive := func(p string) bool { return strings.HasPrefix(p, "/debug/") }
	tests := []struct {
		name       string
		method     string
		path       string
		token      string
		status     int // 0: the handler writes a body only
		wantRecord bool
		wantDenied bool
		wantResult string
		wantWho    string
	}{
		{"plain read", "GET", "/api/v1/things", "tok", 0, false, false, "", ""},
		{"sensitive read", "GET", "/debug/pprof/", "tok", 0, true, false, "ok", "token:"},
		{"change", "POST", "/api/v1/things", "tok", http.StatusCreated, true, false, "ok", "token:"},
		{"refused read", "GET", "/api/v1/things", "", http.StatusUnauthorized, true, true, "refused: unauthorized", "anonymous"},
		{"failed change", "DELETE", "/api/v1/things/1", "tok", http.StatusConflict, true, false, "refused: conflict", "token:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []Entry
			var denied bool
			h := Audited(func(e Entry, d bool) { got = append(got, e); denied = d }, sensitive,
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tt.status != 0 {
						w.WriteHeader(tt.status)
					}
					w.Write([]byte("x"))
				}))
			r := httptest.NewRequest(tt.method, tt.path, nil)
			r.RemoteAddr = "10.0.0.9:4711"
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			if len(got) != map[bool]int{false: 0, true: 1}[tt.wantRecord] {
				t.Fatalf("recorded %+v", got)
			}
			if !tt.wantRecord {
				return
			}
			e := got[0]
			if denied != tt.wantDenied || e.Result != tt.wantResult || !strings.HasPrefix(e.Who, tt.wantWho) ||
				e.From != "10.0.0.9" || e.Action != tt.method+" "+tt.path {
				t.Fatalf("recorded %+v denied %v", e, denied)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	tests := []struct {
		name     string
		list     func(int) ([]Entry, error)
		wantCode int
		wantBody string
	}{
		{"entries", func(n int) ([]Entry, error) { return []Entry{{ID: uint64(n)}}, nil }, http.StatusOK, `"id": 5`},
		{"empty", func(int) ([]Entry, error) { return []Entry{}, nil }, http.StatusOK, `[]`},
		{"error", func(int) ([]Entry, error) { return nil, errors.New("disk") }, http.StatusInternalServerError, `internal`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Handler(tt.list, func(*http.Request) int { return 5 })(w, httptest.NewRequest("GET", "/api/v1/audit", nil))
			if w.Code != tt.wantCode || !strings.Contains(w.Body.String(), tt.wantBody) {
				t.Fatalf("%d %s; want %d containing %s", w.Code, w.Body, tt.wantCode, tt.wantBody)
			}
			if w.Code == http.StatusOK && !json.Valid(w.Body.Bytes()) {
				t.Fatalf("not JSON: %s", w.Body)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	for status, want := range map[int]string{0: "ok", 200: "ok", 204: "ok", 401: "refused: unauthorized", 500: "refused: internal server error"} {
		if got := ResultOf(status); got != want {
			t.Errorf("ResultOf(%d) = %q, want %q", status, got, want)
		}
	}
}
