//go:build !windows

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/blobstore"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/sync/uplink"
)

// Blob distribution figures (docs/benchmarks.md):
//
//	go test -run '^$' -bench 'Blob' -benchtime 1x ./test/bench/
//
// BenchmarkBlobServe (blobserve_bench_test.go) compares a relay with
// http.FileServer and nginx. EDGESYNC_CAP_SECONDS sets the bandwidth-cap run length (default 10);
// BENCH_BLOB_MB the blob size in MiB (default 100).

var blobSize = envInt("BENCH_BLOB_MB", 100) << 20

type storeSource struct{ s *blobstore.Store }

func (s storeSource) OpenBlob(_ context.Context, sum string) (io.ReadSeekCloser, int64, error) {
	f, n, err := s.s.Open(sum)
	if err != nil {
		return nil, 0, api.ErrBlobNotFound
	}
	return f, n, nil
}

func newBlob(b *testing.B) (*blobstore.Store, string) {
	b.Helper()
	st, err := blobstore.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, blobSize)
	rand.Read(data)
	sum, _, err := st.Put(bytes.NewReader(data), "")
	if err != nil {
		b.Fatal(err)
	}
	return st, sum
}

// BenchmarkBlobRateCap: 8 clients against a 20 MB/s cap; achieved rate vs set.
func BenchmarkBlobRateCap(b *testing.B) {
	st, sum := newBlob(b)
	const rate = 20 << 20
	secs := 10
	if s, err := strconv.Atoi(os.Getenv("EDGESYNC_CAP_SECONDS")); err == nil && s > 0 {
		secs = s
	}
	srv := httptest.NewServer(api.NewBlobHandler(storeSource{st}, api.BlobConfig{RateBytes: rate}))
	defer srv.Close()
	for range b.N {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var total int64
		start := time.Now()
		for range 8 {
			wg.Go(func() {
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+api.PathBlobs+sum, nil)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						return
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					mu.Lock()
					total += n
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		cancel()
		got := float64(total) / time.Since(start).Seconds()
		b.ReportMetric(got/(1<<20), "MB/s")
		b.ReportMetric(100*(got-rate)/rate, "%_error")
	}
}

// BenchmarkBlobUpstreamQUIC: a relay node's fetch of a 100 MB blob from
// central over the QUIC link (mutual TLS, loopback).
func BenchmarkBlobUpstreamQUIC(b *testing.B) {
	n, err := localnet.New(b.TempDir(), localnet.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FastRaft: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c, err := n.AddCentral("central-1")
	if err != nil {
		b.Fatal(err)
	}
	for !c.Node.Raft().IsLeader() {
		time.Sleep(20 * time.Millisecond)
	}
	data := make([]byte, blobSize)
	rand.Read(data)
	ctx := context.Background()
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "bench", Version: "1", Type: central.PackageFile, Dest: "/tmp", FileName: "b"}, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := pki.Issue(n.PKIDir, pki.IssueRequest{Role: pki.RoleRelay, Name: "bench-r1", Site: "bench", Hosts: []string{"127.0.0.1"}}); err != nil {
		b.Fatal(err)
	}
	bundle, err := pki.Load(n.PKIDir, "bench-r1")
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range []string{"quic", "tcp"} {
		b.Run(tr, func(b *testing.B) {
			f, err := uplink.NewFetcher(uplink.Config{Site: "bench", Node: "bench-r1", Centrals: []string{c.SyncAddr(tr)}, Transport: tr, TLS: bundle.ClientTLS()})
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			var mbs float64
			for range b.N {
				start := time.Now()
				if _, err := f.Blob(ctx, p.SHA256, 0, io.Discard); err != nil {
					b.Fatal(err)
				}
				mbs = float64(blobSize) / (1 << 20) / time.Since(start).Seconds()
			}
			b.ReportMetric(mbs, "MB/s")
		})
	}
}
