package test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/localnet"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/offline/offlinetest"
)

// startCentral starts a 1-node central only.
func startCentral(t *testing.T) (*localnet.Net, *central.Node) {
	t.Helper()
	n, err := localnet.New(t.TempDir(), localnet.Options{Logger: testLogger(t), FastRaft: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	c, err := n.AddCentral("central-1")
	if err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		if !c.Node.Raft().IsLeader() || c.Node.AdminToken() == "" {
			return fmt.Errorf("central not leader")
		}
		return nil
	})
	return n, c.Node
}

func httpClient(t *testing.T, n *localnet.Net) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(n.CAFile())
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Timeout: 60 * time.Second, Transport: tr}
}

// newMedium creates a kit at central and collects devices × per records.
func newMedium(t *testing.T, c *central.Node, req central.KitRequest, devices, per int, start time.Time) (dir string, kit *offline.Kit, ids []string) {
	t.Helper()
	kj, err := c.CreateKit(ctxTimeout(t, 10*time.Second), req)
	if err != nil {
		t.Fatalf("create kit: %v", err)
	}
	if kit, err = offline.ParseKit(kj, nil); err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := offlinetest.NewKit(dir, kj); err != nil {
		t.Fatal(err)
	}
	ids, err = offlinetest.Collect(dir, filepath.Join(t.TempDir(), "state"), devices, per, 10, start)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return dir, kit, ids
}

func TestOffline_HostileMediumImportsGoodRejectsBad(t *testing.T) {
	n, c := startCentral(t)
	hc := httpClient(t, n)
	start := time.Now().Add(-24 * time.Hour).Truncate(time.Second)
	dir, kit, ids := newMedium(t, c, central.KitRequest{Name: "floor-3"}, 250, 4, start)

	files, err := offlinetest.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	var good offlinetest.File
	for _, f := range files {
		if strings.HasSuffix(f.Name, ".esr") {
			good = f
			break
		}
	}
	hostile, err := offlinetest.HostileSet(kit, good)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hostile {
		files = append(files, h.File)
	}
	work := t.TempDir()
	zipPath := filepath.Join(work, "medium.zip")
	if err := offlinetest.WriteZip(zipPath, files); err != nil {
		t.Fatal(err)
	}
	staging := filepath.Join(work, "staging")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := offline.ImportConfig{Server: c.URL(), Token: n.AdminToken(), HTTP: hc, StagingDir: staging}

	// A dry run reports and changes nothing.
	dry := cfg
	dry.DryRun = true
	drep, err := offline.Import(context.Background(), zipPath, dry)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if list, _ := c.Devices("", "", 0, 0); list.Total != 0 {
		t.Fatalf("dry run created %d devices", list.Total)
	}
	if _, err := os.Stat(zipPath + ".results"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dry run wrote results: %v", err)
	}

	rep, err := offline.Import(context.Background(), zipPath, cfg)
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	if got := rep.Counts[offline.OutcomeImported]; got != 1000 {
		t.Errorf("imported %d, want 1000 (counts %v)", got, rep.Counts)
	}
	if got := rep.Counts[offline.OutcomeDuplicate]; got != 1 {
		t.Errorf("duplicates %d, want 1 (the copy under another name)", got)
	}
	if drep.Counts[offline.OutcomeImported] != rep.Counts[offline.OutcomeImported] || drep.Rejected() != rep.Rejected() {
		t.Errorf("dry run said %v, import did %v", drep.Counts, rep.Counts)
	}
	byName := map[string]offline.RecordResult{}
	for _, r := range rep.Records {
		byName[r.Name] = r
	}
	for _, h := range hostile {
		name := h.File.Name
		if h.Reason == offline.ReasonDuplicateName {
			continue // same name as a good record: found below by reason
		}
		if h.Reason == offline.OutcomeDuplicate {
			continue
		}
		r, ok := byName[name]
		if !ok {
			r, ok = byName[strings.TrimPrefix(name, "EDGESYNC/")]
		}
		if !ok {
			t.Errorf("hostile entry %q: no result", name)
			continue
		}
		if r.Outcome != offline.OutcomeRejected || !strings.Contains(h.Reason, r.Reason) || r.Reason == "" {
			t.Errorf("hostile entry %q: %s %s (%s), want rejected %s", name, r.Outcome, r.Reason, r.Detail, h.Reason)
		}
	}
	if rep.Counts[offline.OutcomeRejected] != len(hostile)-1 {
		t.Errorf("rejected %d, want %d", rep.Counts[offline.OutcomeRejected], len(hostile)-1)
	}
	// Nothing escaped the staging directory, and staging is gone.
	for _, p := range []string{filepath.Join(work, "evil.esr"), filepath.Join(work, "outside.esr"), filepath.Join(filepath.Dir(work), "outside.esr")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s was written outside staging", p)
		}
	}
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Errorf("staging not cleaned: %d entries", len(ents))
	}
	// Result files in the product's format.
	ok, err := os.ReadFile(filepath.Join(zipPath+".results", "result_success.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(ok)), "\n")
	if len(lines) != 1001 {
		t.Errorf("result_success.txt has %d lines, want 1001", len(lines))
	}
	if _, err := time.Parse("2006/01/02 15:04:05", lines[0][:19]); err != nil || !strings.HasPrefix(lines[0][20:], "offline-pc-") {
		t.Errorf("result line %q is not `YYYY/MM/DD hh:mm:ss host-name`", lines[0])
	}
	if _, err := os.Stat(filepath.Join(zipPath+".results", "result_failed.txt")); err != nil {
		t.Errorf("result_failed.txt: %v", err)
	}

	// Central holds every device with its newest record current, USB
	// channel, stocktaking set, last-alive untouched.
	list, err := c.Devices("", "", 0, 1000)
	if err != nil || list.Total != len(ids) {
		t.Fatalf("central has %d devices (err %v), want %d", list.Total, err, len(ids))
	}
	d, err := c.Device(ids[7])
	if err != nil {
		t.Fatal(err)
	}
	if d.Channel != "usb" || !d.LastSeen.IsZero() || d.Revisions != 4 || d.Hostname != "offline-pc-0007" {
		t.Errorf("device %+v: want channel usb, no last-seen, 4 revisions", d)
	}
	st, err := c.OfflineDevice(ids[7])
	if err != nil || st.StocktakingAt.IsZero() || st.Imports != 4 {
		t.Errorf("stocktaking %+v, %v", st, err)
	}
	before, _ := json.Marshal(d)

	// The same medium again: nothing changes, and the report says so.
	rep2, err := offline.Import(context.Background(), zipPath, cfg)
	if err != nil {
		t.Fatalf("second import: %v", err)
	}
	if rep2.Counts[offline.OutcomeDuplicate] != 1001 || rep2.Counts[offline.OutcomeImported] != 0 {
		t.Errorf("second import: %v, want 1001 duplicates", rep2.Counts)
	}
	d2, _ := c.Device(ids[7])
	if after, _ := json.Marshal(d2); string(after) != string(before) {
		t.Errorf("second import changed the device:\n%s\n%s", before, after)
	}
}

func TestOffline_OlderAfterNewerKeepsNewerCurrent(t *testing.T) {
	n, c := startCentral(t)
	hc := httpClient(t, n)
	kj, err := c.CreateKit(ctxTimeout(t, 10*time.Second), central.KitRequest{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), "state")
	t0 := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	newer, older := t.TempDir(), t.TempDir()
	for _, m := range []struct {
		dir string
		at  time.Time
	}{{older, t0}, {newer, t0.Add(24 * time.Hour)}} {
		if err := offlinetest.NewKit(m.dir, kj); err != nil {
			t.Fatal(err)
		}
		if _, err := offlinetest.Collect(m.dir, state, 1, 1, 3, m.at); err != nil {
			t.Fatal(err)
		}
	}
	cfg := offline.ImportConfig{Server: c.URL(), Token: n.AdminToken(), HTTP: hc}
	r1, err := offline.Import(context.Background(), newer, cfg)
	if err != nil || r1.Counts[offline.OutcomeImported] != 1 {
		t.Fatalf("newer: %v %v", r1.Counts, err)
	}
	r2, err := offline.Import(context.Background(), older, cfg)
	if err != nil || r2.Counts[offline.OutcomeHistory] != 1 {
		t.Fatalf("older: %v %v", r2.Counts, err)
	}
	if _, err := os.Stat(filepath.Join(older, "EDGESYNC", "results", "result.json")); err != nil {
		t.Errorf("results on the medium: %v", err)
	}
	id := r1.Records[0].DeviceID
	d, err := c.Device(id)
	if err != nil {
		t.Fatal(err)
	}
	if !d.InventoryAt.Equal(t0.Add(24 * time.Hour)) {
		t.Errorf("current inventory at %s, want the newer %s", d.InventoryAt, t0.Add(24*time.Hour))
	}
	h, err := c.History(id)
	if err != nil || len(h) != 2 {
		t.Fatalf("history %v %v", h, err)
	}
	if !h[0].CollectedAt.Equal(t0) || h[0].Current || !h[1].Current {
		t.Errorf("history not in time order with the newer current: %+v", h)
	}
}

func TestOffline_BrokenArchiveLeavesNothing(t *testing.T) {
	work := t.TempDir()
	staging := filepath.Join(work, "staging")
	os.Mkdir(staging, 0o700)
	// A tar.zst bomb: 3 GiB of zeros would take seconds; the ratio cap
	// trips after 16 MiB.
	bomb := filepath.Join(work, "bomb.tar.zst")
	if err := offlinetest.WriteTarZstd(bomb, []offlinetest.File{{Name: "EDGESYNC/edgesync", Data: make([]byte, 64<<20)}}); err != nil {
		t.Fatal(err)
	}
	_, err := offline.OpenMedium(bomb, staging, offline.Limits{})
	if !errors.Is(err, offline.ErrArchive) {
		t.Errorf("bomb: %v, want ErrArchive", err)
	}
	trunc := filepath.Join(work, "trunc.tar.zst")
	if err := offlinetest.WriteTarZstd(trunc, []offlinetest.File{{Name: "EDGESYNC/kit.json", Data: []byte("{}")}, {Name: "EDGESYNC/Data/x", Data: make([]byte, 1<<20)}}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(trunc)
	os.WriteFile(trunc, b[:len(b)/2], 0o644)
	if _, err := offline.OpenMedium(trunc, staging, offline.Limits{}); !errors.Is(err, offline.ErrArchive) {
		t.Errorf("truncated: %v, want ErrArchive", err)
	}
	if ents, _ := os.ReadDir(staging); len(ents) != 0 {
		t.Errorf("a broken archive left %d entries in staging", len(ents))
	}
}

// A medium imported at a relay travels through the outbox to central; a
// copy imported at another node of the site, or at central, is a no-op.
func TestOffline_ImportAtRelayReachesCentralOnce(t *testing.T) {
	const site = "branch-usb"
	n := startNet(t, site, nil)
	c := n.Centrals[0].Node
	hc := httpClient(t, n)
	start := time.Now().Add(-time.Hour).Truncate(time.Second)
	dir, _, ids := newMedium(t, c, central.KitRequest{Name: "site-kit"}, 20, 2, start)
	relayToken := n.Sites[site][0].Node.AdminToken()
	leader := waitSite(t, n, site, 3)

	rep, err := offline.Import(context.Background(), dir, offline.ImportConfig{Server: leader.URL(), Token: relayToken, HTTP: hc})
	if err != nil || rep.Counts[offline.OutcomeImported] != 40 {
		t.Fatalf("import at relay: %v %v", rep, err)
	}
	waitDrained(t, n, site, 30*time.Second)
	checkFor(t, 10*time.Second, func() error {
		list, err := c.Devices("", "", 0, 100)
		if err != nil || list.Total != len(ids) {
			return fmt.Errorf("central has %d devices, want %d (%v)", list.Total, len(ids), err)
		}
		return nil
	})
	d, err := c.Device(ids[3])
	if err != nil || d.Revisions != 2 || d.Channel != "usb" || !d.LastSeen.IsZero() || d.Site != site {
		t.Fatalf("device after relay import: %+v %v", d, err)
	}
	// Another node of the same site: the replicated ledger says duplicate.
	var other *localnet.Relay
	for _, r := range n.Sites[site] {
		if r != leader {
			other = r
		}
	}
	rep2, err := offline.Import(context.Background(), dir, offline.ImportConfig{Server: other.URL(), Token: relayToken, HTTP: hc})
	if err != nil || rep2.Counts[offline.OutcomeDuplicate] != 40 {
		t.Fatalf("second import at another relay node: %v %v", rep2.Counts, err)
	}
	// Central: its ledger knows the records that came through the site.
	rep3, err := offline.Import(context.Background(), dir, offline.ImportConfig{Server: c.URL(), Token: n.AdminToken(), HTTP: hc})
	if err != nil || rep3.Counts[offline.OutcomeDuplicate] != 40 {
		t.Fatalf("import of the same medium at central: %v %v", rep3.Counts, err)
	}
	if d2, _ := c.Device(ids[3]); d2.Records != d.Records || d2.Revisions != 2 {
		t.Errorf("re-import changed the device: %d records, %d revisions", d2.Records, d2.Revisions)
	}
}
