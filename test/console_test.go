package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/localnet"
)

// seedDevice enrolls a device at the site and reports one inventory per
// entry of invs (in order), returning its ID.
func seedDevice(t *testing.T, n *localnet.Net, site string, invs ...record.Inventory) string {
	t.Helper()
	ca, err := os.ReadFile(n.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	tlsConf, err := api.CATLS(ca)
	if err != nil {
		t.Fatal(err)
	}
	cl := api.NewClient(n.URLs(site), tlsConf)
	defer cl.CloseIdleConnections()
	ctx := ctxTimeout(t, 30*time.Second)
	enr, err := cl.Enroll(ctx, api.EnrollRequest{JoinToken: n.JoinToken(site), DeviceID: record.NewDeviceID(), Hostname: invs[0].Hostname, OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]record.Record, len(invs))
	base := time.Now().UTC().Add(-time.Hour)
	for i, inv := range invs {
		b, _ := json.Marshal(inv)
		recs[i] = record.Record{DeviceID: enr.DeviceID, Seq: uint64(i + 1), Kind: record.KindInventory,
			CollectedAt: base.Add(time.Duration(i) * time.Minute), Schema: record.SchemaVersion, Payload: b}
	}
	if _, err := cl.Report(ctx, enr.DeviceID, enr.DeviceToken, recs); err != nil {
		t.Fatal(err)
	}
	return enr.DeviceID
}

func inventory(host, serial, mac, ip, kernel string) record.Inventory {
	return record.Inventory{Hostname: host, OS: record.OS{Name: "Debian GNU/Linux", Version: "12", Kernel: kernel},
		Hardware: record.Hardware{Vendor: "Acme", Model: "T1", Serial: serial,
			Interfaces: []record.Interface{{Name: "eth0", MAC: mac, Addresses: []string{ip + "/24"}}}}}
}

// consoleNet starts a site with three devices (one with HTML in its host
// name) and waits until central holds them.
func consoleNet(t *testing.T) (*localnet.Net, string, string) {
	n := startNet(t, "branch-1", nil)
	web := seedDevice(t, n, "branch-1",
		inventory("web-01", "SER-123", "aa:bb:cc:dd:ee:01", "10.1.2.3", "6.1.0-17-amd64"),
		inventory("web-01", "SER-123", "aa:bb:cc:dd:ee:01", "10.1.2.3", "6.1.0-18-amd64"))
	evil := seedDevice(t, n, "branch-1", inventory(`<script>alert("x")</script>`, "SER-666", "aa:bb:cc:dd:ee:66", "10.1.2.66", "6.1"))
	seedDevice(t, n, "branch-1", inventory("db-01", "SER-200", "aa:bb:cc:dd:ee:02", "10.1.2.4", "6.1"))
	c := n.Centrals[0].Node
	checkFor(t, 30*time.Second, func() error {
		for _, id := range []string{web, evil} {
			d, err := c.Device(id)
			if err != nil {
				return err
			}
			if id == web && d.Revisions < 2 {
				return fmt.Errorf("web-01 has %d revisions", d.Revisions)
			}
		}
		return nil
	})
	return n, web, evil
}

func insecureClient(t *testing.T, n *localnet.Net) *http.Client {
	ca, err := os.ReadFile(n.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 10 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// TestConsoleHTTP checks sign-in, refusal and escaping without a browser.
func TestConsoleHTTP(t *testing.T) {
	n, web, _ := consoleNet(t)
	base := n.Centrals[0].Node.URL()
	hc := insecureClient(t, n)
	defer hc.CloseIdleConnections()

	resp, err := hc.Get(base + "/devices")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/login") {
		t.Fatalf("unauthenticated GET /devices: %s to %q, want a redirect to sign in", resp.Status, resp.Header.Get("Location"))
	}
	for _, tok := range []string{"", "wrong-token"} {
		resp, err = hc.PostForm(base+"/login", url.Values{"token": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("sign in with %q: %s, want 401", tok, resp.Status)
		}
	}
	resp, err = hc.Get(base + "/api/v1/devices")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("API without token: %s, want 401", resp.Status)
	}
	resp, err = hc.PostForm(base+"/login", url.Values{"token": {n.AdminToken()}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in: %s", resp.Status)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "edgesync_session" {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie %+v: want HttpOnly, Secure, SameSite=Strict", cookie)
	}
	get := func(path string) string {
		resp, err := hc.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		return string(b)
	}
	page := get("/devices?q=script")
	if strings.Contains(page, "<script>alert") || !strings.Contains(page, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Fatalf("device list does not escape a host name:\n%s", page)
	}
	if page := get("/devices?q=10.1.2.3"); !strings.Contains(page, web) || strings.Contains(page, "db-01") {
		t.Fatalf("search by IP: want web-01 only")
	}
	// A POST without the CSRF token is refused even with a session.
	resp, err = hc.PostForm(base+"/events/1/ack", url.Values{})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("ack without CSRF token: %s, want 403", resp.Status)
	}
	if csv := get("/devices.csv?q=web-01"); !strings.HasPrefix(csv, "device_id,hostname,") || !strings.Contains(csv, web+",web-01,branch-1,online") {
		t.Fatalf("CSV export:\n%s", csv)
	}
	if ism := get("/devices.csv?q=web-01&encoding=utf-16le"); !strings.HasPrefix(ism, "\xff\xfe\"\x00d\x00e\x00v\x00") || !strings.HasSuffix(ism, "\r\x00\n\x00") {
		t.Fatalf("ISM CSV export (want UTF-16LE with BOM, quoted fields, CRLF): % x", ism[:min(len(ism), 64)])
	}
}

// artifactDir is where browser screenshots go: $EDGESYNC_ARTIFACTS or
// test/artifacts/<test> (gitignored).
func artifactDir(t *testing.T) string {
	root := os.Getenv("EDGESYNC_ARTIFACTS")
	if root == "" {
		root = "artifacts"
	}
	dir, _ := filepath.Abs(filepath.Join(root, t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// findChromium returns Debian's chromium, installing it when possible.
func findChromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "apt-get", "install", "-y", "chromium").CombinedOutput()
		if p, lerr := exec.LookPath("chromium"); lerr == nil {
			return p
		}
		t.Skipf("chromium is not installed and `apt-get install -y chromium` failed (%v): %s", err, out[max(0, len(out)-500):])
	}
	t.Skip("chromium is not installed and cannot be installed here (need root and apt-get): browser tests skipped")
	return ""
}

func browser(t *testing.T) (context.Context, context.CancelFunc) {
	exe := findChromium(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors", true), // the test CA is not in the system store
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1400, 1000),
	}
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	ctx, tcancel := context.WithTimeout(ctx, 60*time.Second)
	return ctx, func() { tcancel(); cancel(); acancel() }
}

func screenshot(dir, name string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		var buf []byte
		if err := chromedp.FullScreenshot(&buf, 100).Do(ctx); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644)
	})
}

// TestConsoleBrowser drives the console in headless Chromium: sign in, see
// the overview with the site, search a device, open it, compare revisions,
// export CSV, acknowledge an event; a wrong token is refused.
func TestConsoleBrowser(t *testing.T) {
	n, web, _ := consoleNet(t)
	dir := artifactDir(t)
	base := n.Centrals[0].Node.URL()
	ctx, cancel := browser(t)
	defer cancel()

	var text string
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("wrong token",
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", "not-the-token", chromedp.ByID),
		chromedp.Click("#signin", chromedp.ByID),
		chromedp.WaitVisible(".error", chromedp.ByQuery),
		chromedp.Text(".error", &text, chromedp.ByQuery),
		screenshot(dir, "01-wrong-token"))
	if !strings.Contains(text, "not valid") {
		t.Fatalf("wrong token: page says %q", text)
	}
	run("sign in",
		chromedp.SendKeys("#token", n.AdminToken(), chromedp.ByID),
		chromedp.Click("#signin", chromedp.ByID),
		chromedp.WaitVisible("#sites", chromedp.ByID),
		chromedp.Text("#sites", &text, chromedp.ByID),
		screenshot(dir, "02-overview"))
	if !strings.Contains(text, "branch-1") {
		t.Fatalf("overview does not show site branch-1: %q", text)
	}
	run("search",
		// The search form is a GET form: load its result URL directly. Typing
		// and submitting raced the old page's rows, which were still visible.
		chromedp.Navigate(base+"/devices?q=aa%3Abb%3Acc%3Add%3Aee%3A01"),
		chromedp.WaitVisible("#q", chromedp.ByID),
		chromedp.WaitVisible(`a.device`, chromedp.ByQuery),
		chromedp.Text("#devices tbody", &text, chromedp.ByQuery),
		screenshot(dir, "03-search"))
	if !strings.Contains(text, "web-01") || strings.Contains(text, "db-01") {
		t.Fatalf("search by MAC: %q", text)
	}
	run("detail",
		chromedp.Click(`a.device`, chromedp.ByQuery),
		chromedp.WaitVisible("#history", chromedp.ByID),
		chromedp.Text("#history", &text, chromedp.ByID),
		screenshot(dir, "04-device"))
	if !strings.Contains(text, "current") || strings.Count(text, "online") != 2 {
		t.Fatalf("history of web-01: %q", text)
	}
	run("diff",
		chromedp.Click("#compare", chromedp.ByID),
		chromedp.WaitVisible("#diff", chromedp.ByID),
		chromedp.Text("#diff", &text, chromedp.ByID),
		screenshot(dir, "05-diff"))
	if !strings.Contains(text, "os.kernel") || !strings.Contains(text, "6.1.0-18-amd64") {
		t.Fatalf("diff of the two revisions: %q", text)
	}
	var csv string
	run("export",
		chromedp.Navigate(base+"/devices?q=web-01"),
		chromedp.WaitVisible("#export", chromedp.ByID),
		chromedp.Evaluate(`fetch(document.getElementById("export").href).then(r => r.text())`, &csv,
			func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !strings.Contains(csv, web+",web-01,branch-1,online") {
		t.Fatalf("CSV export: %q", csv)
	}
	var ism struct {
		BOM  bool   `json:"bom"`
		Text string `json:"text"`
	}
	run("export ISM",
		chromedp.WaitVisible("#export-ism", chromedp.ByID),
		chromedp.Evaluate(`fetch(document.getElementById("export-ism").href).then(r => r.arrayBuffer()).then(b => {
			const u = new Uint8Array(b);
			return {bom: u[0] === 0xFF && u[1] === 0xFE, text: new TextDecoder("utf-16le").decode(u.slice(2))};
		})`, &ism, func(p *cdpruntime.EvaluateParams) *cdpruntime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if !ism.BOM || !strings.HasPrefix(ism.Text, "\"device_id\"\t\"hostname\"\t") || !strings.Contains(ism.Text, "\""+web+"\"\t\"web-01\"\t\"branch-1\"\t\"online\"") || !strings.HasSuffix(ism.Text, "\r\n") {
		t.Fatalf("ISM CSV export (UTF-16LE, BOM %v): %q", ism.BOM, ism.Text)
	}
	run("events",
		chromedp.Navigate(base+"/events"),
		chromedp.WaitVisible("#events form button", chromedp.ByQuery),
		chromedp.Click("#events form button", chromedp.ByQuery),
		chromedp.WaitVisible(`//td[contains(., "acknowledged by console")]`, chromedp.BySearch),
		screenshot(dir, "06-events"))
	evs, err := n.Centrals[0].Node.EventList(central.EventFilter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	acked := 0
	for _, e := range evs {
		if e.Acked {
			acked++
		}
	}
	if acked != 1 {
		t.Fatalf("%d events acknowledged at central, want 1", acked)
	}
	// The relay status page: sign in with the site's admin token.
	rl := n.Sites["branch-1"][0]
	run("relay status",
		chromedp.Navigate(rl.URL()+"/status"),
		chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", rl.Node.AdminToken(), chromedp.ByID),
		chromedp.Click("#signin", chromedp.ByID),
		chromedp.WaitVisible("#outbox-depth", chromedp.ByID),
		chromedp.Text("#devices", &text, chromedp.ByID),
		screenshot(dir, "07-relay-status"))
	if !strings.Contains(text, "web-01") || !strings.Contains(text, `<script>alert("x")</script>`) {
		t.Fatalf("relay status page devices: %q", text)
	}
}
