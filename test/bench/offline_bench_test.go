//go:build !windows

package bench

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/offline/offlinetest"
)

// BenchmarkOfflineImport imports a 10,000-record .tar.zst medium into an
// in-process 1-node central, and in the same run measures verify-only
// (offline verify) next to `zstd -d | tar x` of the same file:
//
//	go test -run '^$' -bench BenchmarkOfflineImport -benchtime 1x ./test/bench/
//
// MB/s are megabytes (10^6) of sealed records on the medium.
func BenchmarkOfflineImport(b *testing.B) {
	records := envInt("BENCH_OFFLINE_RECORDS", 10000)
	work := b.TempDir()
	n, err := localnet.New(filepath.Join(work, "net"), localnet.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FastRaft: true})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	c, err := n.AddCentral("central-1")
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !c.Node.Raft().IsLeader() || c.Node.AdminToken() == "" {
		if time.Now().After(deadline) {
			b.Fatal("central not leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	kj, err := c.Node.CreateKit(context.Background(), central.KitRequest{Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	medium := filepath.Join(work, "medium")
	if err := offlinetest.NewKit(medium, kj); err != nil {
		b.Fatal(err)
	}
	if _, err := offlinetest.Collect(medium, filepath.Join(work, "state"), records/4, 4, 40, time.Now().Add(-48*time.Hour)); err != nil {
		b.Fatal(err)
	}
	files, err := offlinetest.Files(medium)
	if err != nil {
		b.Fatal(err)
	}
	archive := filepath.Join(work, "medium.tar.zst")
	if err := offlinetest.WriteTarZstd(archive, files); err != nil {
		b.Fatal(err)
	}
	var recBytes int64
	for _, f := range files {
		recBytes += int64(len(f.Data))
	}
	st, _ := os.Stat(archive)
	b.Logf("medium: %d records, %.1f MB of records, %.1f MB .tar.zst", records, float64(recBytes)/1e6, float64(st.Size())/1e6)

	pem, _ := os.ReadFile(n.CAFile())
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	mbps := func(d time.Duration) float64 { return float64(recBytes) / 1e6 / d.Seconds() }

	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// zstd -d | tar x of the same file, for scale.
		var tarTime time.Duration
		if _, err := exec.LookPath("zstd"); err == nil {
			out := filepath.Join(work, "untar")
			os.RemoveAll(out)
			os.Mkdir(out, 0o755)
			t0 := time.Now()
			cmd := exec.Command("sh", "-c", `zstd -q -d -c "$1" | tar x -C "$2"`, "sh", archive, out)
			if msg, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("zstd | tar: %v %s", err, msg)
			}
			tarTime = time.Since(t0)
		}
		t0 := time.Now()
		vrep, err := offline.Verify(archive, offline.Limits{})
		if err != nil || vrep.Counts[offline.OutcomeVerified] != records {
			b.Fatalf("verify: %v %v", vrep.Counts, err)
		}
		verifyTime := time.Since(t0)

		t0 = time.Now()
		rep, err := offline.Import(context.Background(), archive, offline.ImportConfig{Server: c.Node.URL(), Token: n.AdminToken(), HTTP: hc, StagingDir: work})
		if err != nil {
			b.Fatal(err)
		}
		importTime := time.Since(t0)
		if i == 0 && rep.Counts[offline.OutcomeImported] != records {
			b.Fatalf("import: %v", rep.Counts)
		}
		b.ReportMetric(float64(records)/importTime.Seconds(), "import_records/s")
		b.ReportMetric(mbps(importTime), "import_MB/s")
		b.ReportMetric(mbps(verifyTime), "verify_MB/s")
		b.ReportMetric(float64(records)/verifyTime.Seconds(), "verify_records/s")
		if tarTime > 0 {
			b.ReportMetric(mbps(tarTime), "zstd|tar_MB/s")
			b.ReportMetric(100*tarTime.Seconds()/verifyTime.Seconds(), "verify_%_of_zstd|tar")
		}
	}
}
