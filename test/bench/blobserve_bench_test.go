//go:build !windows

package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/relay"
)

// BenchmarkBlobServe: MB/s of a relay node serving a cached 100 MB blob to
// 1, 16 and 64 concurrent clients, next to Go's http.FileServer and nginx on
// the same file, in the same run, over plain HTTP (our --blob-addr listener)
// and HTTPS (the agent API, device token; the same certificate for all
// three). nginx is installed with apt-get when missing (root only); when it
// cannot be, its column is skipped with the reason logged. Set
// EDGESYNC_BENCH_NGINX=off to skip it. Each figure is the best of
// EDGESYNC_SERVE_ROUNDS (default 3) interleaved rounds. The relay is in-process (localnet);
// nginx runs as a child process with a generated config on 127.0.0.1.
//
//	go test -run '^$' -bench 'BlobServe' -benchtime 1x -v ./test/bench/
func BenchmarkBlobServe(b *testing.B) {
	rounds := envInt("EDGESYNC_SERVE_ROUNDS", 3)
	rs := newServeRig(b)
	type row struct {
		transport             string
		clients               int
		ours, fs, nginx       float64
		nginxSkipped          bool
		oursPctFS, oursPctNgx float64
	}
	var rows []row
	for _, tr := range []string{"http", "https"} {
		for _, c := range []int{1, 16, 64} {
			b.Run(fmt.Sprintf("%s/clients=%d", tr, c), func(b *testing.B) {
				var r row
				for range b.N {
					// Rounds interleave the servers; each keeps its best
					// round, so load from other processes skews less.
					r = row{transport: tr, clients: c, nginxSkipped: rs.nginxSkip != ""}
					for range rounds {
						r.ours = max(r.ours, rs.fetchAll(b, tr, "ours", c))
						r.fs = max(r.fs, rs.fetchAll(b, tr, "fileserver", c))
						if !r.nginxSkipped {
							r.nginx = max(r.nginx, rs.fetchAll(b, tr, "nginx", c))
						}
					}
				}
				b.ReportMetric(r.ours, "relay_MB/s")
				b.ReportMetric(r.fs, "fileserver_MB/s")
				r.oursPctFS = 100 * r.ours / r.fs
				b.ReportMetric(r.oursPctFS, "%_of_fileserver")
				if !r.nginxSkipped {
					b.ReportMetric(r.nginx, "nginx_MB/s")
					r.oursPctNgx = 100 * r.ours / r.nginx
					b.ReportMetric(r.oursPctNgx, "%_of_nginx")
				}
				rows = append(rows, r)
			})
		}
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "cached 100 MB blob, MiB/s, best of %d rounds, one GET per client, HTTP/1.1, %s\n", rounds, rs.nginxVersion)
	fmt.Fprintf(&sb, "%-9s %7s %10s %12s %10s %9s %9s\n", "transport", "clients", "relay", "FileServer", "nginx", "%FS", "%nginx")
	for _, r := range rows {
		ngx, pct := "skipped", "-"
		if !r.nginxSkipped {
			ngx, pct = fmt.Sprintf("%.0f", r.nginx), fmt.Sprintf("%.0f", r.oursPctNgx)
		}
		fmt.Fprintf(&sb, "%-9s %7d %10.0f %12.0f %10s %9.0f %9s\n", r.transport, r.clients, r.ours, r.fs, ngx, r.oursPctFS, pct)
	}
	if rs.nginxSkip != "" {
		fmt.Fprintf(&sb, "nginx skipped: %s\n", rs.nginxSkip)
	}
	b.Log("\n" + sb.String())
}

// serveRig is a 1-node relay site with a cached blob, a FileServer and
// nginx on the same cache directory.
type serveRig struct {
	sum    string
	dev    agent.SimDevice
	urls   map[string]string // "<transport>/<server>" → base URL, the blob path appended
	client map[string]*http.Client

	nginxSkip    string // why nginx is not measured, "" when it is
	nginxVersion string
}

func newServeRig(b *testing.B) *serveRig {
	b.Helper()
	blobAddr, err := localnet.FreeTCP()
	if err != nil {
		b.Fatal(err)
	}
	n, err := localnet.New(b.TempDir(), localnet.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), FastRaft: true,
		Relay: func(c *relay.Config) { c.BlobAddr = blobAddr; c.CatalogInterval = 200 * time.Millisecond }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	c, err := n.AddCentral("central-1")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.Node.Raft().WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	rl, err := n.AddSite("bench", 1)
	if err != nil {
		b.Fatal(err)
	}
	if err := rl[0].Node.Raft().WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	data := make([]byte, blobSize)
	rand.Read(data)
	p, err := c.Node.AddPackage(ctx, central.Package{Name: "serve", Version: "1", Type: central.PackageFile, Dest: "/tmp", FileName: "b"}, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	sim, err := agent.Simulate(ctx, agent.SimConfig{Relays: n.URLs("bench"), JoinToken: n.JoinToken("bench"), Agents: 1, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil || len(sim.Devices) != 1 {
		b.Fatalf("enroll a device: %v", err)
	}
	rs := &serveRig{sum: p.SHA256, dev: sim.Devices[0], urls: map[string]string{}, client: map[string]*http.Client{}}

	// Warm the cache: a pull-through GET once the catalog names the package.
	plain := &http.Client{}
	for {
		resp, err := plain.Get("http://" + blobAddr + api.PathBlobs + p.SHA256)
		if err == nil {
			nb, _ := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && nb == int64(blobSize) {
				break
			}
		}
		if ctx.Err() != nil {
			b.Fatalf("blob not cached at the relay: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // polling the relay's catalog pull
	}
	cacheFile := rl[0].Node.CachePath(p.SHA256)
	dir := filepath.Dir(cacheFile)

	// The relay's certificate for every HTTPS server; clients trust the CA.
	certFile, keyFile := filepath.Join(n.PKIDir, rl[0].ID()+".crt"), filepath.Join(n.PKIDir, rl[0].ID()+".key")
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		b.Fatal(err)
	}
	caPEM, err := os.ReadFile(n.CAFile())
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, tr := range []string{"http", "https"} {
		t := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 0}
		if tr == "https" {
			t.TLSClientConfig = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		}
		rs.client[tr] = &http.Client{Transport: t}
		b.Cleanup(t.CloseIdleConnections)
	}
	rs.urls["http/ours"] = "http://" + blobAddr + api.PathBlobs + p.SHA256
	rs.urls["https/ours"] = rl[0].URL() + api.PathBlobs + p.SHA256

	fs := http.FileServer(http.Dir(dir))
	hs := httptest.NewServer(fs)
	b.Cleanup(hs.Close)
	tsrv := httptest.NewUnstartedServer(fs)
	tsrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tsrv.StartTLS()
	b.Cleanup(tsrv.Close)
	rs.urls["http/fileserver"] = hs.URL + "/" + p.SHA256
	rs.urls["https/fileserver"] = tsrv.URL + "/" + p.SHA256

	rs.startNginx(b, dir, certFile, keyFile)
	return rs
}

// fetchAll downloads the blob from server over transport with c concurrent
// clients (one GET each) and returns MB/s (MiB/s).
func (rs *serveRig) fetchAll(b *testing.B, transport, server string, c int) float64 {
	b.Helper()
	url := rs.urls[transport+"/"+server]
	hc := rs.client[transport]
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
	)
	start := time.Now()
	for range c {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			if server == "ours" && transport == "https" {
				req.Header.Set(api.HeaderDevice, rs.dev.ID)
				req.Header.Set("Authorization", "Bearer "+rs.dev.Token)
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				b.Errorf("%s %s: %s", server, url, resp.Status)
				return
			}
			nb, _ := io.Copy(io.Discard, resp.Body)
			mu.Lock()
			total += nb
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != int64(c)*int64(blobSize) {
		b.Fatalf("%s over %s: got %d bytes, want %d", server, transport, total, int64(c)*int64(blobSize))
	}
	return float64(total) / (1 << 20) / time.Since(start).Seconds()
}

// startNginx runs nginx (installed when missing) in the foreground as a child
// with a plain and a TLS server on 127.0.0.1 whose root is dir. On failure
// it records why in rs.nginxSkip.
func (rs *serveRig) startNginx(b *testing.B, dir, certFile, keyFile string) {
	b.Helper()
	if os.Getenv("EDGESYNC_BENCH_NGINX") == "off" {
		rs.nginxSkip = "EDGESYNC_BENCH_NGINX=off"
		return
	}
	bin, err := ensureNginx(b)
	if err != nil {
		rs.nginxSkip = err.Error()
		b.Logf("nginx column skipped: %v", err)
		return
	}
	if out, err := exec.Command(bin, "-v").CombinedOutput(); err == nil {
		rs.nginxVersion = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "nginx version: "))
	}
	plainAddr, err1 := localnet.FreeTCP()
	tlsAddr, err2 := localnet.FreeTCP()
	if err := errors.Join(err1, err2); err != nil {
		b.Fatal(err)
	}
	prefix := b.TempDir()
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers must read the relay's 0700 cache directory
	}
	// One worker per core (auto), sendfile on plain HTTP, access log off, as
	// a tuned static file server; TLS 1.3 with the relay's certificate.
	conf := fmt.Sprintf(`daemon off;
master_process on;
worker_processes auto;
%s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 10000;
    default_type application/octet-stream;
    client_body_temp_path %[2]s/client_body;
    proxy_temp_path %[2]s/proxy;
    fastcgi_temp_path %[2]s/fastcgi;
    uwsgi_temp_path %[2]s/uwsgi;
    scgi_temp_path %[2]s/scgi;
    server {
        listen %[3]s;
        root %[5]s;
    }
    server {
        listen %[4]s ssl;
        ssl_certificate %[6]s;
        ssl_certificate_key %[7]s;
        ssl_protocols TLSv1.3;
        root %[5]s;
    }
}
`, user, prefix, plainAddr, tlsAddr, dir, certFile, keyFile)
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		rs.nginxSkip = fmt.Sprintf("start %s: %v", bin, err)
		b.Logf("nginx column skipped: %s", rs.nginxSkip)
		return
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // owned: the cleanup below waits for it
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // fast shutdown of master and workers
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{plainAddr, tlsAddr} {
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				conn.Close()
				break
			}
			select {
			case err := <-exited:
				b.Fatalf("nginx exited: %v\n%s", err, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				b.Fatalf("nginx not listening on %s: %v\n%s", addr, err, stderr.String())
			}
			time.Sleep(20 * time.Millisecond) // polling nginx's listener
		}
	}
	rs.urls["http/nginx"] = "http://" + plainAddr + "/" + rs.sum
	rs.urls["https/nginx"] = "https://" + tlsAddr + "/" + rs.sum
}

// ensureNginx returns nginx's path, installing Debian's package when it is
// missing and we are root.
func ensureNginx(b *testing.B) (string, error) {
	b.Helper()
	find := func() (string, bool) {
		if p, err := exec.LookPath("nginx"); err == nil {
			return p, true
		}
		if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
			return "/usr/sbin/nginx", true
		}
		return "", false
	}
	if p, ok := find(); ok {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("nginx is not installed and the bench is not root to install it (apt-get install -y nginx)")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return "", errors.New("nginx is not installed and there is no apt-get to install it")
	}
	install := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, lastLines(out, 3))
		}
		return nil
	}
	b.Log("nginx not found: apt-get install -y nginx")
	err := install("install", "-y", "-q", "nginx")
	if err != nil {
		b.Logf("%v; apt-get update and trying again", err)
		if err = install("update", "-q"); err == nil {
			err = install("install", "-y", "-q", "nginx")
		}
	}
	if err != nil {
		return "", err
	}
	if p, ok := find(); ok {
		return p, nil
	}
	return "", errors.New("apt-get installed nginx but no nginx binary was found")
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
