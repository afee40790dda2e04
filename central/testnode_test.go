package central

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesync/edgesync/internal/pki"
)

// testNode is a real one-node central: Raft, Badger on disk, HTTPS on
// 127.0.0.1.
type testNode struct {
	*Node
	cfg   Config
	stop  func(t *testing.T) // idempotent
	base  string
	token string // the bootstrap admin token
	hc    *http.Client
}

func freeAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startTestNode starts a bootstrap central in dir (a fresh temp dir when
// empty) and waits until it leads and holds the admin token.
func startTestNode(t *testing.T, dir string) *testNode {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	pkiDir := filepath.Join(dir, "pki")
	if _, err := os.Stat(filepath.Join(pkiDir, "ca.crt")); err != nil {
		if err := pki.Init(pkiDir); err != nil {
			t.Fatal(err)
		}
		if _, _, err := pki.Issue(pkiDir, pki.IssueRequest{Role: pki.RoleCentral, Name: "central-1", Hosts: []string{"127.0.0.1"}}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := pki.Load(pkiDir, "central-1")
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.PKI, cfg.Bootstrap = "central-1", filepath.Join(dir, "data"), b, true
	cfg.RaftAddr, cfg.HTTPAddr, cfg.SyncAddr = freeAddr(t, "tcp"), freeAddr(t, "tcp"), freeAddr(t, "udp")
	cfg.Raft.HeartbeatTimeout, cfg.Raft.ElectionTimeout = 500*time.Millisecond, 500*time.Millisecond
	cfg.Raft.LeaderLeaseTimeout, cfg.Raft.CommitTimeout = 250*time.Millisecond, 20*time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	pool := x509.NewCertPool()
	ca, _ := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	pool.AppendCertsFromPEM(ca)
	tn := &testNode{cfg: cfg, hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	tn.start(t)
	t.Cleanup(func() { tn.stop(t) })
	return tn
}

// start opens the node from its config (and data dir) and runs it.
func (tn *testNode) start(t *testing.T) {
	t.Helper()
	n, err := New(tn.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	tn.Node, tn.base, tn.token = n, n.URL(), n.AdminToken()
	tn.stop = func(t *testing.T) {
		if cancel == nil {
			return
		}
		tn.hc.CloseIdleConnections()
		// Raft leaves a proposal queued at shutdown unanswered (BatchApplyCh),
		// which would hold Close: let the audit log finish first.
		waitFor(t, 20*time.Second, "audit log idle", n.view.audit.Idle)
		cancel()
		cancel = nil
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}
	waitFor(t, 20*time.Second, "leader with the admin token stored", func() bool { return n.raft.IsLeader() && n.adminHash() != "" })
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// apiResult is one admin API answer.
type apiResult struct {
	Status int
	Code   string // the error code, if any
	Body   []byte
}

func (r apiResult) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// call sends body (JSON, or raw when []byte) with a bearer token.
func (tn *testNode) call(t *testing.T, tok, method, path string, body any) apiResult {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, tn.base+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := tn.hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e struct {
		Code string `json:"code"`
	}
	json.Unmarshal(b, &e)
	return apiResult{Status: resp.StatusCode, Code: e.Code, Body: b}
}

// must is call that wants status.
func (tn *testNode) must(t *testing.T, status int, tok, method, path string, body any) apiResult {
	t.Helper()
	r := tn.call(t, tok, method, path, body)
	if r.Status != status {
		t.Fatalf("%s %s: %d %s, want %d", method, path, r.Status, r.Body, status)
	}
	return r
}
