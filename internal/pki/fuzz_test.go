package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad: whatever PEM sits in a node's certificate and key files, Load
// never panics, and it accepts only the leaf the CA issued (a chain to the
// CA cannot be forged) with its own key and a valid identity.
func FuzzLoad(f *testing.F) {
	src := f.TempDir()
	if err := Init(src); err != nil {
		f.Fatal(err)
	}
	if _, _, err := Issue(src, IssueRequest{Role: RoleRelay, Name: "relay-1", Site: "s1"}); err != nil {
		f.Fatal(err)
	}
	if _, _, err := Issue(src, IssueRequest{Role: RoleCentral, Name: "central-1"}); err != nil {
		f.Fatal(err)
	}
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	caPEM, relayCrt, relayKey := read(CACertFile), read("relay-1.crt"), read("relay-1.key")
	centralCrt, centralKey := read("central-1.crt"), read("central-1.key")
	issued := [][]byte{relayCrt, centralCrt}
	f.Add(relayCrt, relayKey)
	f.Add(centralCrt, centralKey)
	f.Add(relayCrt, centralKey) // key of another leaf
	f.Add(caPEM, relayKey)      // the CA as a leaf
	f.Add(append(relayCrt, centralCrt...), relayKey)
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, crt, key []byte) {
		dir := t.TempDir()
		for name, b := range map[string][]byte{CACertFile: caPEM, "n.crt": crt, "n.key": key} {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		b, err := Load(dir, "n")
		if err != nil {
			return
		}
		if err := b.Identity.validate(); err != nil {
			t.Fatalf("accepted identity %+v: %v", b.Identity, err)
		}
		ok := false
		for _, p := range issued {
			blk, _ := pem.Decode(p)
			ok = ok || bytes.Equal(blk.Bytes, b.Cert.Leaf.Raw)
		}
		if !ok {
			t.Fatalf("accepted a leaf the CA did not issue: %s", b.Cert.Leaf.Subject)
		}
	})
}

// FuzzParseKey: the CA key reader never panics and returns a signer or an
// error.
func FuzzParseKey(f *testing.F) {
	dir := f.TempDir()
	if err := Init(dir); err != nil {
		f.Fatal(err)
	}
	k, err := os.ReadFile(filepath.Join(dir, CAKeyFile))
	if err != nil {
		f.Fatal(err)
	}
	c, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	f.Add(k)
	f.Add(c)
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nMAA=\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("not pem"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseKey(b)
		if err == nil && (s == nil || s.Public() == nil) {
			t.Fatal("nil signer without an error")
		}
	})
}

// FuzzIdentityFromCert: any parsable certificate yields a valid identity or
// an error (the identity is what authorises a peer after TLS).
func FuzzIdentityFromCert(f *testing.F) {
	dir := f.TempDir()
	if err := Init(dir); err != nil {
		f.Fatal(err)
	}
	for _, req := range []IssueRequest{{Role: RoleRelay, Name: "relay-1", Site: "s1"}, {Role: RoleCentral, Name: "c1"}} {
		p, _, err := Issue(dir, req)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		blk, _ := pem.Decode(b)
		f.Add(blk.Bytes)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	blk, _ := pem.Decode(ca)
	f.Add(blk.Bytes)
	f.Fuzz(func(t *testing.T, der []byte) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return
		}
		id, err := IdentityFromCert(c)
		if err == nil {
			if verr := id.validate(); verr != nil {
				t.Fatalf("identity %+v: %v", id, verr)
			}
		}
	})
}
