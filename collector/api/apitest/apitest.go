package apitest

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
)

// Backend is an in-memory api.Backend. Its zero value is not usable; use
// NewBackend.
type Backend struct {
	Site        string
	SecretHash  string
	ConfigValue api.Config

	mu sync.Mutex // protects the fields below
	// tokens maps device ID to device token.
	tokens map[string]string
	// recs maps device ID to seq to stored record.
	recs map[string]map[uint64]record.Record
	// reportErr, when set, is returned by Report (backpressure, outage).
	reportErr error
	// reportCalls counts Report calls.
	reportCalls int
}

// NewBackend returns a Backend for the site of tok.
func NewBackend(tok api.JoinToken) *Backend {
	return &Backend{
		Site:       tok.Site,
		SecretHash: tok.SecretHash(),
		ConfigValue: api.Config{
			InventoryIntervalSeconds: 3600, SecurityIntervalSeconds: 600, PollIntervalSeconds: 60,
		},
		tokens: make(map[string]string),
		recs:   make(map[string]map[uint64]record.Record),
	}
}

// SetReportError makes Report fail with err (nil restores normal service).
func (b *Backend) SetReportError(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reportErr = err
}

// ReportCalls returns how many times Report was called.
func (b *Backend) ReportCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.reportCalls
}

// Seqs returns the sorted seqs stored for device.
func (b *Backend) Seqs(device string) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []uint64
	for s := range b.recs[device] {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Records returns the stored records of device in seq order.
func (b *Backend) Records(device string) []record.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []record.Record
	for _, r := range b.recs[device] {
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y record.Record) int { return cmp.Compare(x.Seq, y.Seq) })
	return out
}

// Devices returns the enrolled device IDs.
func (b *Backend) Devices() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for d := range b.tokens {
		out = append(out, d)
	}
	slices.Sort(out)
	return out
}

// Enroll implements api.Backend.
func (b *Backend) Enroll(_ context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	tok, err := api.ParseJoinToken(req.JoinToken)
	if err != nil || tok.Site != b.Site || !tok.Matches(b.SecretHash) {
		return api.EnrollResponse{}, api.ErrInvalidJoinToken
	}
	id := req.DeviceID
	if id == "" {
		id = record.NewDeviceID()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	t := record.NewDeviceID() + record.NewDeviceID()
	b.tokens[id] = t
	return api.EnrollResponse{DeviceID: id, DeviceToken: t, SiteID: b.Site}, nil
}

// Authenticate implements api.Backend.
func (b *Backend) Authenticate(_ context.Context, deviceID, token string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if t, ok := b.tokens[deviceID]; !ok || t != token {
		return api.ErrUnauthorized
	}
	return nil
}

// Report implements api.Backend: all or nothing, duplicates with the same
// hash are counted, with a different hash a *api.ConflictError.
func (b *Backend) Report(_ context.Context, deviceID string, recs []record.Record) (api.ReportResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reportCalls++
	if b.reportErr != nil {
		return api.ReportResponse{}, b.reportErr
	}
	m := b.recs[deviceID]
	if m == nil {
		m = make(map[uint64]record.Record)
		b.recs[deviceID] = m
	}
	var resp api.ReportResponse
	for i := range recs {
		if old, ok := m[recs[i].Seq]; ok && record.Hash(&old) != record.Hash(&recs[i]) {
			return api.ReportResponse{}, &api.ConflictError{Seq: recs[i].Seq}
		}
	}
	for _, r := range recs {
		if _, ok := m[r.Seq]; ok {
			resp.Duplicate++
			continue
		}
		r.ReceivedAt = time.Now()
		r.Channel = record.ChannelOnline
		r.SiteID = b.Site
		m[r.Seq] = r
		resp.Accepted++
	}
	for s := range m {
		resp.AckedSeq = max(resp.AckedSeq, s)
	}
	return resp, nil
}

// Config implements api.Backend.
func (b *Backend) Config(context.Context, string) (api.Config, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.ConfigValue, nil
}

// PKI is a test CA and a relay certificate for 127.0.0.1 and localhost,
// served as leaf + CA.
type PKI struct {
	CA          *x509.Certificate
	CAPEM       []byte
	Fingerprint string
	ServerCert  tls.Certificate
}

// NewPKI makes a fresh CA and relay certificate.
func NewPKI() (*PKI, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edgesync test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create CA: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate relay key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("create relay certificate: %w", err)
	}
	return &PKI{
		CA:          ca,
		CAPEM:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		Fingerprint: api.Fingerprint(ca),
		ServerCert:  tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}, nil
}

// ServerTLS returns a server config presenting the relay certificate.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{Certificates: []tls.Certificate{p.ServerCert}, MinVersion: tls.VersionTLS12}
}
