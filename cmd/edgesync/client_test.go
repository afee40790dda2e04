package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// adminServer is an HTTPS server on 127.0.0.1 that answers the routes in
// answers (METHOD PATH → status and body) and records what it was sent.
func adminServer(t *testing.T, answers map[string]struct {
	status int
	body   string
}) (url, caFile string, got *[]string) {
	t.Helper()
	var seen []string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, `{"code":"unauthorized","message":"bad token"}`, http.StatusUnauthorized)
			return
		}
		seen = append(seen, r.Method+" "+r.URL.RequestURI())
		a, ok := answers[r.Method+" "+r.URL.Path]
		if !ok {
			http.Error(w, `{"code":"not_found","message":"no such route"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		w.Write([]byte(a.body))
	}))
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.crt")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(caFile, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return srv.URL, caFile, &seen
}

// The client commands built from apiCommand send the request their
// arguments and flags say, print for a person or as JSON, and turn a
// refusal into an error that names the route, the status, the message and
// the code.
func TestAPICommand(t *testing.T) {
	task := `{"id":"t1","package":"data@1","site":"s1","state":"running","total":2,"completed":1,"statuses":[]}`
	url, ca, seen := adminServer(t, map[string]struct {
		status int
		body   string
	}{
		"GET /api/v1/tasks/t1":        {200, task},
		"POST /api/v1/tasks/t1/stop":  {200, `{"stop":2}`},
		"DELETE /api/v1/tasks/t2":     {409, `{"code":"conflict","message":"task t2 is in progress"}`},
		"POST /api/v1/cluster/remove": {500, `{"code":7,"error":"not the leader"}`},
		"POST /api/v1/events/5/ack":   {200, `{"acked":5}`},
	})
	t.Setenv("EDGESYNC_SERVER", url)
	t.Setenv("EDGESYNC_CA", ca)
	t.Setenv("EDGESYNC_TOKEN", "tok")

	for _, tc := range []struct {
		args    []string
		code    int
		want    []string // in the output
		request string   // what the server saw last
	}{
		{[]string{"task", "show", "t1"}, 0, []string{"Task t1: package data@1 to site s1, running", "Progress: 1/2"}, "GET /api/v1/tasks/t1"},
		{[]string{"task", "show", "t1", "--json"}, 0, []string{`"id": "t1"`}, "GET /api/v1/tasks/t1"},
		{[]string{"task", "stop", "t1", "--device", strings.Repeat("ab", 16)}, 0, []string{"task t1: 2 device(s) stopped"}, "POST /api/v1/tasks/t1/stop?device=" + strings.Repeat("ab", 16)},
		{[]string{"task", "remove", "t2"}, 1, []string{"DELETE /api/v1/tasks/t2: 409 Conflict: task t2 is in progress (conflict)"}, "DELETE /api/v1/tasks/t2"},
		{[]string{"cluster", "remove", "n3"}, 1, []string{"500 Internal Server Error: not the leader (7)"}, "POST /api/v1/cluster/remove"},
		{[]string{"event", "ack", "5"}, 0, []string{"event 5 acknowledged"}, "POST /api/v1/events/5/ack"},
		{[]string{"event", "ack", "five"}, 2, []string{"want one event ID"}, ""},
		{[]string{"device", "show", "nothex"}, 2, []string{"want a device ID"}, ""},
		{[]string{"package", "list", "extra"}, 2, []string{"takes no arguments"}, ""},
		{[]string{"package", "show", "a@1", "--token", "wrong"}, 1, []string{"401 Unauthorized: bad token (unauthorized)"}, ""},
	} {
		*seen = nil
		code, out := runApp(t, tc.args...)
		last := ""
		if len(*seen) > 0 {
			last = (*seen)[len(*seen)-1]
		}
		if code != tc.code || last != tc.request {
			t.Errorf("edgesync %s: exit %d, request %q; want exit %d, request %q\n%s", strings.Join(tc.args, " "), code, last, tc.code, tc.request, out)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("edgesync %s: output %q lacks %q", strings.Join(tc.args, " "), out, w)
			}
		}
	}

	// --json prints the server's answer as JSON that decodes again.
	_, out := runApp(t, "task", "show", "--json", "t1")
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil || v["id"] != "t1" {
		t.Errorf("task show --json: %v, %q", err, out)
	}

	// Without --ca the server's certificate is not trusted, and the error says what to pass.
	t.Setenv("EDGESYNC_CA", "")
	if code, out := runApp(t, "task", "show", "t1"); code != 1 || !strings.Contains(out, "pass --ca") {
		t.Errorf("untrusted server: exit %d, %q", code, out)
	}
}
