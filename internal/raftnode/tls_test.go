package raftnode

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"
)

// testTLS returns a mutual-TLS config whose certificate is valid for
// 127.0.0.1 as both server and client, signed by a fresh CA.
func testTLS(t *testing.T) *tls.Config {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		RootCAs:      pool,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}
}

// startTLSNode serves the handler over HTTPS; client certificates are
// verified when given, so status works without one.
func startTLSNode(t *testing.T, id string, tlsConf *tls.Config) *testNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tn := &testNode{id: id, dir: filepath.Join(t.TempDir(), id), url: "https://" + ln.Addr().String(), sm: &kvSM{}}
	cfg := testConfig(t, id, tn.dir, "127.0.0.1:0", tn.url)
	cfg.TLS = tlsConf
	n, err := New(cfg, tn.sm)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	tn.Node = n
	tn.raftAddr = n.RaftAddr()
	srvTLS := tlsConf.Clone()
	srvTLS.ClientAuth = tls.VerifyClientCertIfGiven
	mux := http.NewServeMux()
	mux.Handle("/raft/", n.Handler())
	tn.srv = &http.Server{Handler: mux, TLSConfig: srvTLS, ReadHeaderTimeout: 5 * time.Second}
	tn.serveWG.Go(func() { _ = tn.srv.ServeTLS(ln, "", "") })
	t.Cleanup(tn.stop)
	return tn
}

func TestNode_MutualTLS(t *testing.T) {
	tlsConf := testTLS(t)
	n1 := startTLSNode(t, "n1", tlsConf)
	if err := n1.Bootstrap(); err != nil {
		t.Fatal(err)
	}
	n2 := startTLSNode(t, "n2", tlsConf)
	if err := n2.Join(testCtx(t, waitTimeout), n1.url); err != nil {
		t.Fatalf("Join over TLS: %v", err)
	}
	c := &cluster{t: t, nodes: []*testNode{n1, n2}}
	c.waitMembers(2)
	mustPropose(t, c.follower(), "set tls 1") // forwarded over HTTPS, replicated over TLS raft
	waitKey(t, n1, "tls", "1")
	waitKey(t, n2, "tls", "1")

	// Without a client certificate only status is served.
	noCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: tlsConf.RootCAs}}}
	defer noCert.CloseIdleConnections()
	for path, want := range map[string]int{"/raft/v1/status": http.StatusOK, "/raft/v1/read-index": http.StatusForbidden} {
		resp, err := noCert.Get(n1.url + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without client cert = %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := noCert.Post(n1.url+"/raft/v1/apply", "application/octet-stream", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST apply without client cert = %d, want 403", resp.StatusCode)
	}
}
