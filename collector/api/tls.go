package api

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// ErrCAPinMismatch means no certificate a relay sent has the pinned
// fingerprint.
var ErrCAPinMismatch = errors.New("api: no certificate in the relay's chain matches the pinned CA fingerprint")

// Fingerprint returns the hex SHA-256 of a certificate's DER, the form join
// tokens carry.
func Fingerprint(c *x509.Certificate) string {
	h := sha256.Sum256(c.Raw)
	return hex.EncodeToString(h[:])
}

// PinnedTLS returns a client TLS config for the first contact with a site:
// the chain the relay sends (leaf + CA) must contain a certificate whose
// fingerprint is fp, and the leaf must verify against that certificate for
// the server name.
func PinnedTLS(fp string) *tls.Config {
	return pinnedTLS(fp, nil)
}

func pinnedTLS(fp string, found func(*x509.Certificate)) *tls.Config {
	fp = NormalizeFingerprint(fp)
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		// The standard verification is replaced by VerifyConnection below,
		// which pins the CA from the join token.
		InsecureSkipVerify: true, //nolint:gosec // verified in VerifyConnection
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return ErrCAPinMismatch
			}
			var ca *x509.Certificate
			for _, c := range cs.PeerCertificates {
				if Fingerprint(c) == fp {
					ca = c
					break
				}
			}
			if ca == nil {
				return ErrCAPinMismatch
			}
			roots := x509.NewCertPool()
			roots.AddCert(ca)
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				if c != ca {
					inter.AddCert(c)
				}
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: roots, Intermediates: inter}); err != nil {
				return fmt.Errorf("verify relay certificate against pinned CA: %w", err)
			}
			if found != nil {
				found(ca)
			}
			return nil
		},
	}
}

// CATLS returns a client TLS config that trusts only the CA certificates in
// caPEM (the one saved after the first, pinned contact).
func CATLS(caPEM []byte) (*tls.Config, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("api: no CA certificate in PEM")
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
}

// FetchPinnedCA connects to the relays in turn with PinnedTLS(fp) and returns
// the pinned CA certificate as PEM, for the agent to keep.
func FetchPinnedCA(ctx context.Context, relays []string, fp string) ([]byte, error) {
	var errs []error
	for _, r := range relays {
		u, err := url.Parse(r)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse relay URL %q: %w", r, err))
			continue
		}
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "443")
		}
		var ca *x509.Certificate
		conf := pinnedTLS(fp, func(c *x509.Certificate) { ca = c })
		conf.ServerName = u.Hostname()
		d := tls.Dialer{Config: conf, NetDialer: &net.Dialer{Timeout: 10 * time.Second}}
		conn, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			errs = append(errs, fmt.Errorf("dial %s: %w", host, err))
			continue
		}
		_ = conn.Close()
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw}), nil
	}
	if len(errs) == 0 {
		return nil, errors.New("api: no relays")
	}
	return nil, errors.Join(errs...)
}
