package pki

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Bundle is a node's TLS material: its leaf, the CA and the identity in the leaf.
type Bundle struct {
	// Cert chains leaf then CA, so a client that pins the CA fingerprint finds it in the chain.
	Cert     tls.Certificate
	Pool     *x509.CertPool
	CACert   *x509.Certificate
	CAPEM    []byte
	Identity Identity
}

// Load reads dir/ca.crt, dir/<name>.crt and dir/<name>.key, checks that the leaf was issued by the
// CA and carries a valid identity.
func Load(dir, name string) (*Bundle, error) {
	caCert, caPEM, err := readCert(filepath.Join(dir, CACertFile))
	if err != nil {
		return nil, err
	}
	leafPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	chainPEM := append(append([]byte{}, leafPEM...), caPEM...)
	cert, err := tls.X509KeyPair(chainPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load key pair %s: %w", name, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("parse leaf %s: %w", name, err)
		}
		cert.Leaf = leaf
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, fmt.Errorf("verify %s against ca: %w", name, err)
	}
	id, err := IdentityFromCert(leaf)
	if err != nil {
		return nil, err
	}
	return &Bundle{Cert: cert, Pool: pool, CACert: caCert, CAPEM: caPEM, Identity: id}, nil
}

// CAFingerprint is Fingerprint of the CA certificate, the value join tokens carry.
func (b *Bundle) CAFingerprint() string { return Fingerprint(b.CACert) }

// ServerTLS serves with the node's certificate and verifies client certificates when they are
// presented (the admin CLI and agents have none; handlers decide what an anonymous client may do).
func (b *Bundle) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Cert},
		ClientCAs:    b.Pool,
		ClientAuth:   tls.VerifyClientCertIfGiven,
	}
}

// ClientTLS presents the node's certificate and trusts only the CA.
func (b *Bundle) ClientTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Cert},
		RootCAs:      b.Pool,
	}
}

// PeerTLS is for connections between members of one cluster (the Raft transport): usable on both
// ends, and both ends must present a certificate from the CA.
func (b *Bundle) PeerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{b.Cert},
		RootCAs:      b.Pool,
		ClientCAs:    b.Pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
	}
}

// PinnedTLS is a client config for a party that knows only the CA fingerprint (an agent with a join
// token). The server must present a chain containing a certificate with that fingerprint, and its
// leaf must verify against that certificate for the server name.
func PinnedTLS(fingerprint string) *tls.Config {
	want := []byte(normalizeFingerprint(fingerprint))
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Verification is done by VerifyConnection against the pinned CA, not the system roots.
		InsecureSkipVerify: true, //nolint:gosec // replaced by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrFingerprintMismatch
			}
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if subtle.ConstantTimeCompare([]byte(Fingerprint(c)), want) == 1 {
					ca = c
					break
				}
			}
			if ca == nil || !ca.IsCA {
				return ErrFingerprintMismatch
			}
			pool := x509.NewCertPool()
			pool.AddCert(ca)
			leaf := cs.PeerCertificates[0]
			opts := x509.VerifyOptions{
				Roots:     pool,
				DNSName:   cs.ServerName,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
			}
			if _, err := leaf.Verify(opts); err != nil {
				return fmt.Errorf("pki: verify server against pinned ca: %w", err)
			}
			return nil
		},
	}
}

func normalizeFingerprint(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	s = strings.TrimPrefix(s, "sha256:")
	return strings.ReplaceAll(s, ":", "")
}
