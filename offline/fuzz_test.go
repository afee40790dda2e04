package offline_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

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
