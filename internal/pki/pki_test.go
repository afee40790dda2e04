package pki

import (
	"crypto/tls"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func mustInit(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := Init(dir); err != nil {
		t.Fatalf("Init() = %v", err)
	}
	return dir
}

func mustIssueLoad(t *testing.T, dir string, req IssueRequest) *Bundle {
	t.Helper()
	if _, _, err := Issue(dir, req); err != nil {
		t.Fatalf("Issue(%+v) = %v", req, err)
	}
	b, err := Load(dir, req.Name)
	if err != nil {
		t.Fatalf("Load(%s) = %v", req.Name, err)
	}
	return b
}

func TestInit_RefusesOverwrite(t *testing.T) {
	dir := mustInit(t)
	if err := Init(dir); !errors.Is(err, ErrExists) {
		t.Fatalf("second Init() = %v, want ErrExists", err)
	}
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("ca.key mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestIssue_RoundTrip(t *testing.T) {
	dir := mustInit(t)
	tests := []struct {
		name string
		req  IssueRequest
		want Identity
	}{
		{"relay", IssueRequest{Role: RoleRelay, Name: "relay-1", Site: "osaka"}, Identity{RoleRelay, "relay-1", "osaka"}},
		{"central", IssueRequest{Role: RoleCentral, Name: "c1", Hosts: []string{"10.0.0.1", "central.example"}}, Identity{RoleCentral, "c1", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustIssueLoad(t, dir, tt.req)
			if b.Identity != tt.want {
				t.Fatalf("Identity = %+v, want %+v", b.Identity, tt.want)
			}
			if len(b.Cert.Certificate) != 2 {
				t.Fatalf("chain length = %d, want 2 (leaf + ca)", len(b.Cert.Certificate))
			}
			if got := Fingerprint(b.CACert); got != b.CAFingerprint() || len(got) != 64 || strings.ToLower(got) != got {
				t.Fatalf("CAFingerprint = %q", got)
			}
			fi, err := os.Stat(filepath.Join(dir, tt.req.Name+".key"))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("key mode = %v, %v; want 0600", fi.Mode().Perm(), err)
			}
			leaf := b.Cert.Leaf
			if tt.req.Hosts == nil && (len(leaf.IPAddresses) != 1 || leaf.DNSNames[0] != "localhost") {
				t.Fatalf("default SANs = %v %v", leaf.IPAddresses, leaf.DNSNames)
			}
		})
	}
}

func TestIssue_Refusals(t *testing.T) {
	dir := mustInit(t)
	if _, _, err := Issue(dir, IssueRequest{Role: RoleRelay, Name: "r1", Site: "s1"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  IssueRequest
		want error
	}{
		{"unknown role", IssueRequest{Role: "admin", Name: "a"}, ErrInvalidRequest},
		{"relay without site", IssueRequest{Role: RoleRelay, Name: "r2"}, ErrInvalidRequest},
		{"central with site", IssueRequest{Role: RoleCentral, Name: "c", Site: "s1"}, ErrInvalidRequest},
		{"bad name", IssueRequest{Role: RoleCentral, Name: "Bad_Name"}, ErrInvalidRequest},
		{"leading dash", IssueRequest{Role: RoleCentral, Name: "-x"}, ErrInvalidRequest},
		{"too long", IssueRequest{Role: RoleCentral, Name: strings.Repeat("a", 64)}, ErrInvalidRequest},
		{"bad site", IssueRequest{Role: RoleRelay, Name: "r3", Site: "../etc"}, ErrInvalidRequest},
		{"reserved ca", IssueRequest{Role: RoleCentral, Name: "ca"}, ErrInvalidRequest},
		{"existing", IssueRequest{Role: RoleRelay, Name: "r1", Site: "s1"}, ErrExists},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Issue(dir, tt.req); !errors.Is(err, tt.want) {
				t.Fatalf("Issue() = %v, want %v", err, tt.want)
			}
		})
	}
	if _, _, err := Issue(t.TempDir(), IssueRequest{Role: RoleCentral, Name: "c"}); err == nil {
		t.Fatal("Issue() without a CA succeeded")
	}
}

func TestLoad_RejectsForeignCA(t *testing.T) {
	dirA, dirB := mustInit(t), mustInit(t)
	if _, _, err := Issue(dirA, IssueRequest{Role: RoleCentral, Name: "c1"}); err != nil {
		t.Fatal(err)
	}
	for _, ext := range []string{".crt", ".key"} {
		b, _ := os.ReadFile(filepath.Join(dirA, "c1"+ext))
		if err := os.WriteFile(filepath.Join(dirB, "c1"+ext), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Load(dirB, "c1"); err == nil {
		t.Fatal("Load() of a leaf from another CA succeeded")
	}
}

// handshake runs one TLS handshake over 127.0.0.1 and returns the client's and server's errors.
func handshake(t *testing.T, server, client *tls.Config) (clientErr, serverErr error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		err = c.(*tls.Conn).Handshake()
		if err == nil {
			// Complete the exchange so TLS 1.3 client-cert failures surface on both sides.
			_, err = c.Write([]byte("ok"))
		}
		done <- err
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), client)
	if err == nil {
		buf := make([]byte, 2)
		_, err = io.ReadFull(c, buf)
		c.Close()
	}
	return err, <-done
}

func TestTLS_Handshakes(t *testing.T) {
	dir, other := mustInit(t), mustInit(t)
	central := mustIssueLoad(t, dir, IssueRequest{Role: RoleCentral, Name: "central-1"})
	relay := mustIssueLoad(t, dir, IssueRequest{Role: RoleRelay, Name: "relay-1", Site: "s1"})
	relay2 := mustIssueLoad(t, dir, IssueRequest{Role: RoleRelay, Name: "relay-2", Site: "s1"})
	foreign := mustIssueLoad(t, other, IssueRequest{Role: RoleRelay, Name: "relay-x", Site: "s1"})

	tests := []struct {
		name    string
		server  *tls.Config
		client  *tls.Config
		wantErr bool
	}{
		{"mtls ok", central.ServerTLS(), relay.ClientTLS(), false},
		{"anonymous client allowed by ServerTLS", central.ServerTLS(), &tls.Config{RootCAs: central.Pool, MinVersion: tls.VersionTLS13}, false},
		{"peer ok", relay.PeerTLS(), relay2.PeerTLS(), false},
		{"peer requires client cert", relay.PeerTLS(), &tls.Config{RootCAs: relay.Pool, MinVersion: tls.VersionTLS13}, true},
		{"client from wrong ca", central.ServerTLS(), foreign.ClientTLS(), true},
		{"server from wrong ca", foreign.ServerTLS(), relay.ClientTLS(), true},
		{"pinned ok", relay.ServerTLS(), PinnedTLS(relay.CAFingerprint()), false},
		{"pinned uppercase with colons", relay.ServerTLS(), PinnedTLS(colonUpper(relay.CAFingerprint())), false},
		{"pinned wrong fingerprint", relay.ServerTLS(), PinnedTLS(foreign.CAFingerprint()), true},
		{"pinned leaf fingerprint is not a ca", relay.ServerTLS(), PinnedTLS(Fingerprint(relay.Cert.Leaf)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cerr, serr := handshake(t, tt.server, tt.client)
			if tt.wantErr && cerr == nil && serr == nil {
				t.Fatal("handshake succeeded, want failure")
			}
			if !tt.wantErr && (cerr != nil || serr != nil) {
				t.Fatalf("handshake: client %v, server %v", cerr, serr)
			}
		})
	}
}

func TestPinnedTLS_ChecksServerName(t *testing.T) {
	dir := mustInit(t)
	relay := mustIssueLoad(t, dir, IssueRequest{Role: RoleRelay, Name: "relay-1", Site: "s1"})
	cfg := PinnedTLS(relay.CAFingerprint())
	cfg.ServerName = "not-this-host.example"
	if cerr, _ := handshake(t, relay.ServerTLS(), cfg); cerr == nil {
		t.Fatal("pinned handshake with a wrong server name succeeded")
	}
}

func TestIdentityFromCert_Rejects(t *testing.T) {
	dir := mustInit(t)
	b := mustIssueLoad(t, dir, IssueRequest{Role: RoleRelay, Name: "r1", Site: "s1"})
	if _, err := IdentityFromCert(b.CACert); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("IdentityFromCert(ca) = %v, want ErrNoIdentity", err)
	}
	if _, err := IdentityFromCert(nil); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("IdentityFromCert(nil) = %v, want ErrNoIdentity", err)
	}
	c := *b.Cert.Leaf
	c.URIs = nil
	if _, err := IdentityFromCert(&c); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("relay without site URI = %v, want ErrNoIdentity", err)
	}
}

func colonUpper(fp string) string {
	var sb strings.Builder
	for i := 0; i < len(fp); i += 2 {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteString(strings.ToUpper(fp[i : i+2]))
	}
	return sb.String()
}
