package offline_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/offline/offlinetest"
)

// FuzzOpen: the sealed-record decoder never panics, and whatever it accepts
// is self-consistent. Corpus: testdata/fuzz/FuzzOpen.
func FuzzOpen(f *testing.F) {
	k, _ := testKit(f)
	f.Add(sealOne(f, k, time.Unix(1700000000, 0)))
	f.Add([]byte(`{"format":"edgesync-sealed/1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := offline.Open(data, offline.OpenOptions{Now: time.Unix(1800000000, 0)})
		if err != nil {
			if offline.ReasonOf(err) == "" {
				t.Fatalf("error without a reason code: %v", err)
			}
			return
		}
		if o.Record != nil && (o.Record.DeviceID != o.Sealed.DeviceID || !o.Record.CollectedAt.Equal(o.Sealed.CollectedAt)) {
			t.Fatalf("accepted a record that disagrees with its header")
		}
	})
}

// FuzzOpenMedium: the archive reader never panics and never writes outside
// its staging directory, whatever the zip. Corpus: testdata/fuzz/FuzzOpenMedium.
func FuzzOpenMedium(f *testing.F) {
	k, kj := testKit(f)
	seedDir := f.TempDir()
	good := offlinetest.File{Name: "EDGESYNC/Data/0123456789abcdef0123456789abcdef/a.esr", Data: sealOne(f, k, time.Unix(1700000000, 0))}
	for i, files := range [][]offlinetest.File{
		{{Name: "EDGESYNC/kit.json", Data: kj}, good},
		{{Name: "../evil.esr", Data: []byte("x")}, {Name: "EDGESYNC/Data/../../x", Data: []byte("y")}},
	} {
		p := filepath.Join(seedDir, "seed.zip")
		if err := offlinetest.WriteZip(p, files); err != nil {
			f.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		f.Add(b)
		_ = i
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		work := t.TempDir()
		src := filepath.Join(work, "m.zip")
		if err := os.WriteFile(src, data, 0o644); err != nil {
			t.Fatal(err)
		}
		staging := filepath.Join(work, "staging")
		os.Mkdir(staging, 0o700)
		m, err := offline.OpenMedium(src, staging, offline.Limits{MaxEntries: 100, MaxTotalBytes: 8 << 20})
		if err == nil {
			for _, e := range m.Records {
				if _, err := m.Read(e); err != nil {
					t.Fatalf("read %s: %v", e.Name, err)
				}
			}
			m.Close()
		}
		ents, _ := os.ReadDir(work)
		for _, e := range ents {
			if e.Name() != "m.zip" && e.Name() != "staging" {
				t.Fatalf("%s written outside staging", e.Name())
			}
		}
		if left, _ := os.ReadDir(staging); len(left) != 0 {
			t.Fatalf("staging not cleaned: %v", left)
		}
		if strings.Contains(src, "..") {
			t.Fatal("unreachable")
		}
	})
}

// FuzzParseKit: kit.json parsing never panics, every refusal is ErrKit,
// and with the trusted key it accepts only the kit that key signed (however
// the JSON around it is re-indented).
func FuzzParseKit(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	trusted := priv.Public().(ed25519.PublicKey)
	orig := &offline.Kit{ID: "kit-fuzz", Generation: 3, CreatedAt: time.Unix(1700000000, 0).UTC(), AgeRecipient: "age1x"}
	kj, err := offline.SignKit(priv, orig)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(kj)
	var compact bytes.Buffer
	_ = json.Compact(&compact, kj)
	f.Add(compact.Bytes())
	_, other := testKit(f)
	f.Add(other) // signed by another central
	f.Add(bytes.Replace(kj, []byte(`kit-fuzz`), []byte(`kit-fuzy`), 1))
	f.Add([]byte(`{"format":"edgesync-kit/1","kit":{},"sig":""}`))
	f.Add([]byte(`{"format":"x"}`))
	f.Add([]byte(`{}{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, key := range []ed25519.PublicKey{nil, trusted} {
			k, err := offline.ParseKit(data, key)
			if err != nil {
				if !errors.Is(err, offline.ErrKit) {
					t.Fatalf("refusal %v is not ErrKit", err)
				}
				continue
			}
			if k.ID == "" || len(k.CentralKey) != ed25519.PublicKeySize {
				t.Fatalf("accepted kit %+v", k)
			}
			if key != nil && (k.ID != orig.ID || k.Generation != orig.Generation || !k.CreatedAt.Equal(orig.CreatedAt) ||
				k.AgeRecipient != orig.AgeRecipient || !bytes.Equal(k.CentralKey, trusted)) {
				t.Fatalf("trusted key accepted a kit it did not sign: %+v", k)
			}
		}
	})
}

// FuzzParseProvenance: a forwarded record's bundle id parses to a complete
// provenance or an error, and what parses prints back to the same value.
func FuzzParseProvenance(f *testing.F) {
	p := offline.Provenance{KitID: "kit-1", KitGen: 4, DeviceKey: make([]byte, 32), Payload: [32]byte{1, 2}}
	f.Add(p.String())
	f.Add("kit-1")
	f.Add("esr1;kit=;gen=1")
	f.Add("esr1;kit=a=b;gen=x;key=AAAA;sha=zz;kit=c")
	f.Add(strings.Replace(p.String(), "gen=4", "gen=18446744073709551616", 1))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := offline.ParseProvenance(s)
		if err != nil {
			return
		}
		if got.KitID == "" || len(got.DeviceKey) != ed25519.PublicKeySize || got.Payload == [32]byte{} {
			t.Fatalf("accepted incomplete %+v", got)
		}
		again, err := offline.ParseProvenance(got.String())
		if err != nil || again.KitID != got.KitID || again.KitGen != got.KitGen || !bytes.Equal(again.DeviceKey, got.DeviceKey) || again.Payload != got.Payload {
			t.Fatalf("round trip %+v -> %q -> %+v, %v", got, got.String(), again, err)
		}
	})
}

// FuzzImportRequest: an import request body (as central and relays decode
// it) goes through ParseKit and CheckRecords without panicking; there is one
// result per record, in order, and a record is either opened (its result
// names its device) or rejected with a reason, never both nor neither.
func FuzzImportRequest(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	trusted := priv.Public().(ed25519.PublicKey)
	k := &offline.Kit{ID: "kit-fuzz", Generation: 2, CreatedAt: time.Unix(1700000000, 0).UTC()}
	kj, err := offline.SignKit(priv, k)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1700003600, 0).UTC()
	good := sealOne(f, k, now.Add(-time.Minute))
	dev := "0123456789abcdef0123456789abcdef"
	hostile, err := offlinetest.HostileSet(k, offlinetest.File{Name: "EDGESYNC/Data/" + dev + "/a.esr", Data: good})
	if err != nil {
		f.Fatal(err)
	}
	items := []offline.ImportItem{{Name: "a.esr", Data: good}}
	for _, h := range hostile {
		if len(h.File.Data) < 1<<20 { // not the 64 MiB bomb
			items = append(items, offline.ImportItem{Name: h.File.Name, Data: h.File.Data})
		}
	}
	for _, req := range []offline.ImportRequest{
		{Kit: kj, Records: items[:1]},
		{Kit: kj, Records: items, Strict: true},
		{Kit: kj, DryRun: true},
		{Kit: json.RawMessage(`{}`), Records: items[:1]},
	} {
		b, _ := json.Marshal(req)
		f.Add(b)
	}
	f.Add([]byte(`{"kit":null,"records":[{"name":"x","data":"AAAA"}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req offline.ImportRequest
		if json.Unmarshal(body, &req) != nil || len(req.Records) > offline.MaxRequestRecords {
			return
		}
		kit, err := offline.ParseKit(req.Kit, trusted)
		if err != nil {
			return
		}
		opened, results := offline.CheckRecords(&req, kit, nil, now, record.DefaultLimits())
		if len(opened) != len(req.Records) || len(results) != len(req.Records) {
			t.Fatalf("%d records, %d opened, %d results", len(req.Records), len(opened), len(results))
		}
		for i, r := range results {
			if r.Name != req.Records[i].Name {
				t.Fatalf("result %d names %q, record is %q", i, r.Name, req.Records[i].Name)
			}
			switch o := opened[i]; {
			case o == nil && (r.Outcome != offline.OutcomeRejected || r.Reason == ""):
				t.Fatalf("record %d neither opened nor rejected: %+v", i, r)
			case o != nil && (r.Outcome != "" || o.Sealed.DeviceID != r.DeviceID || o.Sealed.KitID != kit.ID):
				t.Fatalf("record %d opened with result %+v (sealed for kit %q)", i, r, o.Sealed.KitID)
			}
		}
	})
}

// TestWriteFuzzCorpus regenerates the checked-in seed corpus:
// EDGESYNC_WRITE_CORPUS=1 go test -run TestWriteFuzzCorpus ./offline/
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("EDGESYNC_WRITE_CORPUS") == "" {
		t.Skip("set EDGESYNC_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	k, kj := testKit(t)
	write := func(target, name string, data []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		os.MkdirAll(dir, 0o755)
		body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rec := sealOne(t, k, time.Unix(1700000000, 0))
	write("FuzzOpen", "seed-good", rec)
	zips := map[string][]offlinetest.File{
		"seed-good-medium": {{Name: "EDGESYNC/kit.json", Data: kj}, {Name: "EDGESYNC/Data/0123456789abcdef0123456789abcdef/a.esr", Data: rec}},
		"seed-zip-slip":    {{Name: "../evil.esr", Data: rec}, {Name: "EDGESYNC/Data/../../x.esr", Data: rec}, {Name: "/abs.esr", Data: rec}, {Name: `Data\x.esr`, Data: rec}},
		"seed-dup-link":    {{Name: "kit.json", Data: kj}, {Name: "kit.json", Data: kj}, {Name: "Data/0123456789abcdef0123456789abcdef/l.esr", Mode: os.ModeSymlink, Link: "/etc/passwd"}},
	}
	for name, files := range zips {
		p := filepath.Join(t.TempDir(), "m.zip")
		if err := offlinetest.WriteZip(p, files); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		write("FuzzOpenMedium", name, b)
	}
}
