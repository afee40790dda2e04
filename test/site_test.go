package test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

func follower(t *testing.T, n *localnet.Net, site string) *localnet.Relay {
	t.Helper()
	for _, r := range n.Sites[site] {
		if r.Running() && !r.Node.Raft().IsLeader() {
			return r
		}
	}
	t.Fatal("no follower")
	return nil
}

func pinnedClient(t *testing.T, n *localnet.Net, site string, urls ...string) *api.Client {
	t.Helper()
	jt, err := api.ParseJoinToken(n.JoinToken(site))
	if err != nil {
		t.Fatal(err)
	}
	return api.NewClient(urls, api.PinnedTLS(jt.CAFingerprint))
}

func inventoryRecord(dev string, seq uint64, host string) record.Record {
	payload, _ := json.Marshal(record.Inventory{Hostname: host, OS: record.OS{Name: "Debian GNU/Linux"}})
	return record.Record{DeviceID: dev, Seq: seq, Kind: record.KindInventory, CollectedAt: time.Now().UTC().Add(-time.Minute), Schema: record.SchemaVersion, Payload: payload}
}

// TestFollowerAcceptsReportsAndServesConfig: an agent that only knows a
// follower enrolls, reports (forwarded to the leader) and reads config.
func TestFollowerAcceptsReportsAndServesConfig(t *testing.T) {
	const site = "follow"
	n := startNet(t, site, nil)
	f := follower(t, n, site)
	cl := pinnedClient(t, n, site, f.URL())
	defer cl.CloseIdleConnections()
	ctx := ctxTimeout(t, time.Minute)

	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), Hostname: "pc-follow"})
	if err != nil {
		t.Fatalf("enroll via follower: %v", err)
	}
	resp, err := cl.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{inventoryRecord(enr.DeviceID, 1, "pc-follow"), inventoryRecord(enr.DeviceID, 2, "pc-follow")})
	if err != nil {
		t.Fatalf("report via follower: %v", err)
	}
	if resp.AckedSeq != 2 || resp.Accepted != 2 {
		t.Fatalf("report = %+v, want acked 2, accepted 2", resp)
	}
	cfg, err := cl.Config(ctx, enr.DeviceID, enr.DeviceToken)
	if err != nil {
		t.Fatalf("config via follower: %v", err)
	}
	if len(cfg.Relays) != 3 || cfg.PollIntervalSeconds <= 0 {
		t.Fatalf("config = %+v, want 3 relays and a poll interval", cfg)
	}
	// Retrying the same batch (a lost 200) is acknowledged without a second copy.
	resp, err = cl.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{inventoryRecord(enr.DeviceID, 1, "pc-follow")})
	if err == nil {
		t.Logf("retry answer %+v", resp)
	}
	waitDrained(t, n, site, time.Minute)
	d, err := n.Centrals[0].Node.Device(enr.DeviceID)
	if err != nil {
		t.Fatalf("device at central: %v", err)
	}
	if d.Hostname != "pc-follow" || d.Site != site || d.Channel != "online" {
		t.Fatalf("device at central = %+v", d)
	}
}

// TestSiteRestartKeepsOutboxAndCursor: with central down, a site commits
// reports, is stopped whole and started again from its data dirs; the
// outbox and the acked cursor survive, and the uplink resumes from them.
func TestSiteRestartKeepsOutboxAndCursor(t *testing.T) {
	const site = "restart"
	n := startNet(t, site, nil)
	c := n.Centrals[0]
	ctx := ctxTimeout(t, 3*time.Minute)

	first, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Agents: 10, Reports: 20, RecordBytes: 256, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, site, time.Minute)
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	second, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Agents: 10, Reports: 30, RecordBytes: 256, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	before := waitSite(t, n, site, 3).Node.Status().Outbox
	if before.Depth != 300 || before.AckedSeq != 200 {
		t.Fatalf("outbox before restart = %+v, want depth 300 acked 200", before)
	}
	for _, r := range n.Sites[site] {
		if err := r.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range n.Sites[site] {
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
	}
	after := waitSite(t, n, site, 3).Node.Status().Outbox
	if after.Depth != before.Depth || after.AckedSeq != before.AckedSeq || after.NextSeq != before.NextSeq {
		t.Fatalf("outbox after restart = %+v, before %+v", after, before)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, site, time.Minute)
	acked := map[string]uint64{}
	sent := map[string]uint64{}
	for _, res := range []agent.SimResult{first, second} {
		for d, s := range res.AckedByDevice {
			acked[d], sent[d] = s, s
		}
	}
	checkExactlyOnce(t, c.Node, acked, sent)
	sites, _ := c.Node.Sites()
	for _, s := range sites {
		if s.ID == site && s.Records != 500 {
			t.Fatalf("central applied %d site records, want 500 (none twice)", s.Records)
		}
	}
}

// rawClient posts arbitrary bytes to a relay.
type rawClient struct {
	hc   *http.Client
	base string
}

func (rc *rawClient) do(t *testing.T, method, path, dev, tok string, body []byte, hdr map[string]string) (int, api.Error, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, rc.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if dev != "" {
		req.Header.Set("X-Edgesync-Device", dev)
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := rc.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e api.Error
	json.Unmarshal(b, &e)
	return resp.StatusCode, e, resp.Header
}

// TestBadInputChangesNothing: every kind of bad report gets a clear 4xx with
// a reason, and the site outbox does not move.
func TestBadInputChangesNothing(t *testing.T) {
	const site = "hostile"
	n := startNet(t, site, nil)
	l := n.SiteLeader(site)
	jt, _ := api.ParseJoinToken(n.JoinToken(site))
	rc := &rawClient{hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: api.PinnedTLS(jt.CAFingerprint)}}, base: l.URL()}
	cl := pinnedClient(t, n, site, l.URL())
	defer cl.CloseIdleConnections()
	ctx := ctxTimeout(t, time.Minute)
	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), Hostname: "pc-1"})
	if err != nil {
		t.Fatal(err)
	}
	dev, tok := enr.DeviceID, enr.DeviceToken
	if _, err := cl.Report(ctx, dev, tok, []record.Record{inventoryRecord(dev, 1, "pc-1")}); err != nil {
		t.Fatal(err)
	}
	good := func(seq uint64, mutate func(*record.Record)) []byte {
		r := inventoryRecord(dev, seq, "pc-1")
		if mutate != nil {
			mutate(&r)
		}
		b, _ := json.Marshal(api.ReportRequest{Records: []record.Record{r}})
		return b
	}
	baseline := l.Node.Status().Outbox

	big := strings.Repeat("x", 300<<10)
	tests := []struct {
		name     string
		dev, tok string
		body     []byte
		hdr      map[string]string
		want     int
	}{
		{"malformed json", dev, tok, []byte(`{"records": [`), nil, http.StatusBadRequest},
		{"unknown envelope field", dev, tok, []byte(`{"records": [], "extra": 1}`), nil, http.StatusBadRequest},
		{"unknown payload field", dev, tok, good(2, func(r *record.Record) {
			r.Payload = json.RawMessage(`{"hostname":"a","os":{"name":"x"},"hardware":{},"bogus":1}`)
		}), nil, http.StatusBadRequest},
		{"oversized record", dev, tok, good(2, func(r *record.Record) {
			r.Payload = json.RawMessage(`{"hostname":"` + big + `","os":{"name":"x"},"hardware":{}}`)
		}), nil, http.StatusRequestEntityTooLarge},
		{"control characters", dev, tok, good(2, func(r *record.Record) {
			r.Payload = json.RawMessage(`{"hostname":"pc\u0007","os":{"name":"x"},"hardware":{}}`)
		}), nil, http.StatusBadRequest},
		{"invalid utf-8", dev, tok, append(good(2, nil)[:20:20], 0xff, 0xfe, '"', '}'), nil, http.StatusBadRequest},
		{"bad device token", dev, "not-the-token", good(2, nil), nil, http.StatusUnauthorized},
		{"no credentials", "", "", good(2, nil), nil, http.StatusUnauthorized},
		{"other device's records", dev, tok, good(2, func(r *record.Record) { r.DeviceID = strings.Repeat("ab", 16) }), nil, http.StatusBadRequest},
		{"seq replayed with different content", dev, tok, good(1, func(r *record.Record) {
			r.Payload = json.RawMessage(`{"hostname":"changed","os":{"name":"x"},"hardware":{}}`)
		}), nil, http.StatusConflict},
		{"future collected_at", dev, tok, good(2, func(r *record.Record) { r.CollectedAt = time.Now().Add(24 * time.Hour) }), nil, http.StatusBadRequest},
		{"bad zstd body", dev, tok, []byte("not zstd"), map[string]string{"Content-Encoding": "zstd"}, http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, e, _ := rc.do(t, "POST", "/v1/reports", tt.dev, tt.tok, tt.body, tt.hdr)
			if code != tt.want {
				t.Fatalf("status = %d (%+v), want %d", code, e, tt.want)
			}
			if e.Code == "" || e.Message == "" {
				t.Fatalf("error body %+v lacks a code and a reason", e)
			}
			t.Logf("%d %s: %s", code, e.Code, e.Message)
		})
	}
	if code, e, _ := rc.do(t, "POST", "/v1/enroll", "", "", []byte(`{"join_token":"esj1.hostile.bad.bad","hostname":"x"}`), nil); code != http.StatusForbidden && code != http.StatusBadRequest {
		t.Fatalf("enroll with a bad join token = %d %+v, want 403", code, e)
	}
	after := l.Node.Status().Outbox
	if after.NextSeq != baseline.NextSeq {
		t.Fatalf("bad input changed the outbox: next seq %d → %d", baseline.NextSeq, after.NextSeq)
	}
}

// TestBackpressure: past the outbox quota, or below the critical disk
// threshold, reports get 503 + Retry-After and an event is raised; an agent
// keeps its spool and delivers it once the relay accepts data again.
func TestBackpressure(t *testing.T) {
	const site = "pressure"
	n := startNet(t, site, func(c *relay.Config) { c.OutboxQuotaBytes = 64 << 10 })
	c := n.Centrals[0]
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx := ctxTimeout(t, 3*time.Minute)
	// Fill the outbox past its quota while central is away.
	fillCtx, fillCancel := context.WithTimeout(ctx, 10*time.Second)
	_, err := agent.Simulate(fillCtx, agent.SimConfig{Relays: n.URLs(site), JoinToken: n.JoinToken(site), Agents: 5, Reports: 40, RecordBytes: 1024, BatchSize: 5,
		Logger: testLogger(t)})
	fillCancel()
	if err == nil {
		t.Fatal("simulate past the outbox quota succeeded; want refusals")
	}
	l := waitSite(t, n, site, 3)
	cl := pinnedClient(t, n, site, l.URL())
	defer cl.CloseIdleConnections()
	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), Hostname: "pc-bp"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{inventoryRecord(enr.DeviceID, 1, "pc-bp")})
	var bp *api.BackpressureError
	if !errors.As(err, &bp) || bp.RetryAfter <= 0 {
		t.Fatalf("report past quota = %v, want 503 with Retry-After", err)
	}
	checkFor(t, 20*time.Second, func() error { return hasEvent(l.Node, event.BackpressureOn) })

	// A real agent keeps its records in its spool while refused...
	state := t.TempDir()
	a, err := agent.New(agent.Config{Relays: n.URLs(site), JoinToken: n.JoinToken(site), StateDir: state, Once: true, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	onceCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = a.Run(onceCtx)
	cancel()
	if err == nil {
		t.Fatal("agent run --once succeeded while the relay refuses data")
	}
	if k := a.Pending(); k == 0 {
		t.Fatal("spool empty after refusal; want the records kept")
	}
	// ...and delivers them once central drains the outbox.
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitDrained(t, n, site, time.Minute)
	checkFor(t, time.Minute, func() error {
		var err error
		a, err = agent.New(agent.Config{Relays: n.URLs(site), JoinToken: n.JoinToken(site), StateDir: state, Once: true, Logger: testLogger(t)})
		if err != nil {
			return err
		}
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return a.Run(rctx)
	})
	if k := a.Pending(); k != 0 {
		t.Fatalf("spool after delivery holds %d records; want empty", k)
	}
	checkFor(t, 20*time.Second, func() error { return hasEvent(l.Node, event.BackpressureOff) })
}

// TestLowDiskRefuses: below the critical free-space threshold the relay
// refuses reports with 503 and raises event 1095.
func TestLowDiskRefuses(t *testing.T) {
	const site = "lowdisk"
	n := startNet(t, site, func(c *relay.Config) { c.DiskWarnBytes, c.DiskCriticalBytes = 1<<62, 1<<62 })
	l := n.SiteLeader(site)
	cl := pinnedClient(t, n, site, l.URL())
	defer cl.CloseIdleConnections()
	ctx := ctxTimeout(t, time.Minute)
	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), Hostname: "pc-disk"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = cl.Report(ctx, enr.DeviceID, enr.DeviceToken, []record.Record{inventoryRecord(enr.DeviceID, 1, "pc-disk")})
	var bp *api.BackpressureError
	if !errors.As(err, &bp) {
		t.Fatalf("report on a full disk = %v, want 503 + Retry-After", err)
	}
	checkFor(t, 20*time.Second, func() error { return hasEvent(l.Node, event.DiskCritical) })
}

func hasEvent(n *relay.Node, number int) error {
	evs, err := n.Events(1000)
	if err != nil {
		return err
	}
	for _, e := range evs {
		if e.Number == number {
			return nil
		}
	}
	return fmt.Errorf("event %d not raised (have %d events)", number, len(evs))
}

var _ = tls.VersionTLS13

// TestClusterTransferAndRemove drives membership through the admin API the
// `cluster transfer` and `cluster remove` commands use.
func TestClusterTransferAndRemove(t *testing.T) {
	const site = "members"
	n := startNet(t, site, nil)
	jt, _ := api.ParseJoinToken(n.JoinToken(site))
	hc := &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{TLSClientConfig: api.PinnedTLS(jt.CAFingerprint)}}
	token := n.Sites[site][0].Node.AdminToken()
	post := func(base, path, id string) int {
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(`{"id":"`+id+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	f := follower(t, n, site)
	// Sent to the follower itself: forwarded to the leader.
	if code := post(f.URL(), "/api/v1/cluster/transfer", f.ID()); code != http.StatusOK {
		t.Fatalf("transfer = %d", code)
	}
	checkFor(t, 20*time.Second, func() error {
		if l := n.SiteLeader(site); l == nil || l.ID() != f.ID() {
			return fmt.Errorf("leader is not %s yet", f.ID())
		}
		return nil
	})
	var victim *localnet.Relay
	for _, r := range n.Sites[site] {
		if r.ID() != f.ID() {
			victim = r
		}
	}
	if code := post(f.URL(), "/api/v1/cluster/remove", victim.ID()); code != http.StatusOK {
		t.Fatalf("remove = %d", code)
	}
	checkFor(t, 20*time.Second, func() error {
		if got := len(f.Node.Raft().Members()); got != 2 {
			return fmt.Errorf("%d members", got)
		}
		return nil
	})
	if code := post(f.URL(), "/api/v1/cluster/remove", ""); code != http.StatusBadRequest {
		t.Fatalf("remove without id = %d, want 400", code)
	}
	req, _ := http.NewRequest("POST", f.URL()+"/api/v1/cluster/remove", strings.NewReader(`{"id":"x"}`))
	if resp, err := hc.Do(req); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("remove without token = %v %v, want 401", resp, err)
	}
}
