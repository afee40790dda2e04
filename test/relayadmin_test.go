package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

// startSmallNet starts a 1-node central and a site of size relays.
func startSmallNet(t *testing.T, site string, size int, edit func(*relay.Config)) *localnet.Net {
	t.Helper()
	n, err := localnet.New(t.TempDir(), localnet.Options{Logger: testLogger(t), FastRaft: true, Relay: edit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c, err := n.AddCentral("central-1")
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		if !c.Node.Raft().IsLeader() {
			return fmt.Errorf("central not leader")
		}
		return nil
	})
	if _, err := n.AddSite(site, size); err != nil {
		t.Fatal(err)
	}
	waitSite(t, n, site, size)
	return n
}

// call sends an admin API request with token (none when empty).
func call(t *testing.T, hc *http.Client, method, u, token string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, u, err, b)
		}
	}
	return resp.StatusCode
}

func who(token string) string { return "token:" + httpx.HashToken(token)[:12] }

// waitAudit polls GET /api/v1/audit at base until an entry matches.
func waitAudit(t *testing.T, hc *http.Client, base, token, what string, match func(central.AuditEntry) bool) central.AuditEntry {
	t.Helper()
	var found central.AuditEntry
	checkFor(t, 10*time.Second, func() error {
		var entries []central.AuditEntry // what `edgesync audit list` decodes, at central and at a relay
		if code := call(t, hc, "GET", base+"/api/v1/audit?limit=100", token, &entries); code != http.StatusOK {
			return fmt.Errorf("GET /api/v1/audit: %d", code)
		}
		for _, e := range entries {
			if match(e) {
				found = e
				return nil
			}
		}
		return fmt.Errorf("no audit entry for %s among %d: %+v", what, len(entries), entries)
	})
	if found.Time.IsZero() || found.Node == "" || found.From == "" {
		t.Fatalf("audit entry for %s lacks when, where or which node: %+v", what, found)
	}
	return found
}

// TestAudit: an admin action at central and at a relay is recorded with who,
// what and result in the cluster's Raft state, and so is a refused request.
func TestAudit(t *testing.T) {
	n := startSmallNet(t, "branch-a", 1, nil)
	hc := insecureClient(t, n)
	defer hc.CloseIdleConnections()
	cURL, cTok := n.Centrals[0].Node.URL(), n.AdminToken()
	r := n.Sites["branch-a"][0]
	rURL, rTok := r.URL(), r.Node.AdminToken()

	// Central: acknowledge its service-started event.
	var evs []central.EventView
	checkFor(t, 10*time.Second, func() error {
		if code := call(t, hc, "GET", cURL+"/api/v1/events", cTok, &evs); code != http.StatusOK || len(evs) == 0 {
			return fmt.Errorf("central events: %d, %d events", code, len(evs))
		}
		return nil
	})
	ack := fmt.Sprintf("POST /api/v1/events/%d/ack", evs[0].ID)
	if code := call(t, hc, "POST", cURL+fmt.Sprintf("/api/v1/events/%d/ack", evs[0].ID), cTok, nil); code != http.StatusOK {
		t.Fatalf("%s: %d", ack, code)
	}
	waitAudit(t, hc, cURL, cTok, "central ack", func(e central.AuditEntry) bool {
		return e.Action == ack && e.Who == who(cTok) && e.Result == "ok"
	})

	// Relay: verify the package cache; a read (GET /api/v1/devices) is not recorded.
	if code := call(t, hc, "POST", rURL+"/api/v1/cache/verify", rTok, nil); code != http.StatusOK {
		t.Fatalf("relay cache verify: %d", code)
	}
	if code := call(t, hc, "GET", rURL+"/api/v1/devices", rTok, nil); code != http.StatusOK {
		t.Fatalf("relay devices: %d", code)
	}
	e := waitAudit(t, hc, rURL, rTok, "relay cache verify", func(e central.AuditEntry) bool {
		return e.Action == "POST /api/v1/cache/verify" && e.Who == who(rTok) && e.Result == "ok"
	})
	if e.Node != r.ID() || e.From != "127.0.0.1" {
		t.Fatalf("relay audit entry: node %q from %q, want %s from 127.0.0.1", e.Node, e.From, r.ID())
	}

	// Refused requests: a wrong token at both, none at the relay.
	for _, base := range []string{cURL, rURL} {
		if code := call(t, hc, "GET", base+"/api/v1/devices", "guessed-token", nil); code != http.StatusUnauthorized {
			t.Fatalf("%s devices with a wrong token: %d, want 401", base, code)
		}
	}
	if code := call(t, hc, "GET", rURL+"/api/v1/cluster", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("relay cluster without a token: %d, want 401", code)
	}
	for base, tok := range map[string]string{cURL: cTok, rURL: rTok} {
		waitAudit(t, hc, base, tok, "refused GET at "+base, func(e central.AuditEntry) bool {
			return e.Action == "GET /api/v1/devices" && e.Who == who("guessed-token") && strings.HasPrefix(e.Result, "refused")
		})
	}
	waitAudit(t, hc, rURL, rTok, "anonymous refused", func(e central.AuditEntry) bool {
		return e.Action == "GET /api/v1/cluster" && e.Who == "anonymous" && strings.HasPrefix(e.Result, "refused")
	})
	var entries []central.AuditEntry
	call(t, hc, "GET", rURL+"/api/v1/audit", rTok, &entries)
	for _, e := range entries {
		if e.Action == "GET /api/v1/devices" && e.Result == "ok" {
			t.Fatalf("a plain read was audited: %+v", e)
		}
	}
	// Without a token the trail itself is refused.
	if code := call(t, hc, "GET", rURL+"/api/v1/audit", "", nil); code != http.StatusUnauthorized {
		t.Fatalf("relay audit without a token: %d, want 401", code)
	}

	// `edgesync audit list --server RELAY` reads the relay's trail.
	if testing.Short() {
		return
	}
	cli := &cliRunner{t: t, bin: edgesyncBinary(t), env: []string{"EDGESYNC_SERVER=" + rURL, "EDGESYNC_TOKEN=" + rTok, "EDGESYNC_CA=" + n.CAFile()}}
	out := cli.ok(ctxTimeout(t, 30*time.Second), "audit", "list")
	if !strings.Contains(out, "POST /api/v1/cache/verify") || !strings.Contains(out, who("guessed-token")) || !strings.Contains(out, r.ID()) {
		t.Fatalf("edgesync audit list --server RELAY:\n%s", out)
	}
}

func getPage(t *testing.T, hc *http.Client, u, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRelayStatusPageAndUplinkDown: with central down, the relay's status
// page (401 without a token) shows the outbox growing and escapes a hostile
// host name; the leader raises UplinkDown past the threshold and UplinkUp
// once central is back; /metrics has outbox, uplink, Raft, Badger and Go
// runtime series.
func TestRelayStatusPageAndUplinkDown(t *testing.T) {
	n := startSmallNet(t, "branch-s", 1, func(c *relay.Config) { c.UplinkDownAfter = time.Second })
	r := n.Sites["branch-s"][0]
	hc := insecureClient(t, n)
	defer hc.CloseIdleConnections()
	checkFor(t, 10*time.Second, func() error {
		if st := r.Node.Uplink().Status(); !st.Connected {
			return fmt.Errorf("uplink not connected")
		}
		return nil
	})
	if err := n.Centrals[0].Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	evil := seedDevice(t, n, "branch-s", inventory(`<img src=x onerror="alert(1)">`, "SER-1", "aa:bb:cc:00:00:01", "10.9.0.1", "6.1"))

	base := r.URL() + "/status"
	if code, body := getPage(t, hc, base, ""); code != http.StatusUnauthorized || !strings.Contains(body, `id="token"`) {
		t.Fatalf("status page without a token: %d, want 401 and the sign-in form", code)
	}
	if code, _ := getPage(t, hc, base, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("status page with a wrong token: %d, want 401", code)
	}
	code, page := getPage(t, hc, base, r.Node.AdminToken())
	if code != http.StatusOK {
		t.Fatalf("status page: %d", code)
	}
	if strings.Contains(page, `<img src=x`) || !strings.Contains(page, `&lt;img src=x onerror=&#34;alert(1)&#34;&gt;`) {
		t.Fatalf("status page does not escape a host name:\n%s", page)
	}
	for _, want := range []string{`id="outbox-depth">1<`, evil, `id="uplink-state">down<`, `id="leader">` + r.ID()} {
		if !strings.Contains(page, want) {
			t.Fatalf("status page lacks %q:\n%s", want, page)
		}
	}

	// Browser sign-in: a session cookie scoped to /status.
	resp, err := hc.PostForm(r.URL()+"/status/login", url.Values{"token": {r.Node.AdminToken()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("status sign in: %s", resp.Status)
	}
	if code, _ := getPage(t, hc, base, ""); code != http.StatusOK {
		t.Fatalf("status page with a session: %d", code)
	}

	checkFor(t, 15*time.Second, func() error { return hasEvent(r.Node, event.UplinkDown) })
	t.Logf("UplinkDown raised %s after central stopped (threshold 1s)", time.Since(stoppedAt).Round(100*time.Millisecond))

	_, metrics := getPage(t, hc, r.URL()+"/metrics", "")
	for _, want := range []string{"edgesync_relay_outbox_records 1", "edgesync_relay_outbox_oldest_unacked_age_seconds", "edgesync_uplink_sent_bytes_total",
		"edgesync_uplink_batches_sent_total", "edgesync_raft_applied_index", `edgesync_raft_state{state="Leader"} 1`, "edgesync_badger_state_bytes",
		"go_goroutines", "process_resident_memory_bytes", "edgesync_audit_entries_recorded_total"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("relay /metrics lacks %q", want)
		}
	}

	if err := n.Centrals[0].Start(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 30*time.Second, func() error { return hasEvent(r.Node, event.UplinkUp) })
	checkFor(t, 10*time.Second, func() error {
		if d := r.Node.Status().Outbox.Depth; d != 0 {
			return fmt.Errorf("outbox depth %d", d)
		}
		return nil
	})
	_, page = getPage(t, hc, base, r.Node.AdminToken())
	if !strings.Contains(page, `id="outbox-depth">0<`) || !strings.Contains(page, `id="uplink-state">connected<`) {
		t.Fatalf("status page after reconnect:\n%s", page)
	}
}
