package offline_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/hostfs"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/offline/offlinetest"
)

func testKit(t testing.TB) (*offline.Kit, []byte) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k := &offline.Kit{ID: "kit-test", Generation: 2, CreatedAt: time.Unix(1700000000, 0).UTC()}
	b, err := offline.SignKit(priv, k)
	if err != nil {
		t.Fatal(err)
	}
	return k, b
}

func sealOne(t testing.TB, k *offline.Kit, at time.Time) []byte {
	t.Helper()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	b, err := offline.Seal(k, key, &record.Record{DeviceID: record.NewDeviceID(), Kind: record.KindInventory, CollectedAt: at,
		Schema: record.SchemaVersion, Payload: []byte(`{"hostname":"pc","os":{"name":"Linux"},"hardware":{}}`)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCleanName(t *testing.T) {
	tests := []struct {
		in, want string
		bad      bool
	}{
		{"EDGESYNC/Data/a/b.esr", "Data/a/b.esr", false},
		{"./Data/a/b.esr", "Data/a/b.esr", false},
		{"kit.json", "kit.json", false},
		{"EDGESYNC/", "", false},
		{"../x", "", true},
		{"Data/../../x", "", true},
		{"/etc/passwd", "", true},
		{"C:/x.esr", "", true},
		{"c:x", "", true},
		{`Data\a\b.esr`, "", true},
		{"Data//a", "", true},
		{"Data/./a", "", true},
		{"a\x00b", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := offline.CleanName(tt.in)
			if (err != nil) != tt.bad || got != tt.want {
				t.Errorf("CleanName(%q) = %q, %v; want %q, bad=%v", tt.in, got, err, tt.want, tt.bad)
			}
			if err != nil && offline.ReasonOf(err) != offline.ReasonUnsafePath {
				t.Errorf("reason %q", offline.ReasonOf(err))
			}
		})
	}
}

func TestOpen(t *testing.T) {
	k, _ := testKit(t)
	now := time.Now()
	good := sealOne(t, k, now.Add(-time.Hour))
	flipped := bytes.Replace(good, []byte(`"hostname`), []byte(`"hostnamf`), 1) // inside base64 body: no match, so flip the body
	if i := bytes.Index(good, []byte(`"body":"`)); i > 0 {
		flipped = bytes.Clone(good)
		if flipped[i+20] == 'A' {
			flipped[i+20] = 'B'
		} else {
			flipped[i+20] = 'A'
		}
	}
	other := *k
	other.ID = "kit-other"
	tests := []struct {
		name string
		data []byte
		opts offline.OpenOptions
		want string
	}{
		{"good", good, offline.OpenOptions{KitID: k.ID, KitGen: k.Generation, Now: now}, ""},
		{"truncated", good[:len(good)/2], offline.OpenOptions{}, offline.ReasonMalformed},
		{"bit flip", flipped, offline.OpenOptions{}, offline.ReasonBadHash},
		{"trailing data", append(bytes.Clone(good), good...), offline.OpenOptions{}, offline.ReasonMalformed},
		{"other kit", good, offline.OpenOptions{KitID: other.ID, KitGen: 2}, offline.ReasonKitMismatch},
		{"old generation binding", good, offline.OpenOptions{KitID: k.ID, KitGen: 3}, offline.ReasonKitMismatch},
		{"future", sealOne(t, k, now.Add(time.Hour)), offline.OpenOptions{Now: now}, record.CodeFutureTime},
		{"too large", make([]byte, offline.MaxSealedBytes+1), offline.OpenOptions{}, offline.ReasonTooLarge},
		{"empty", nil, offline.OpenOptions{}, offline.ReasonMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := offline.Open(tt.data, tt.opts)
			if got := offline.ReasonOf(err); got != tt.want || (err != nil) != (tt.want != "") {
				t.Fatalf("Open: %v (reason %q), want %q", err, got, tt.want)
			}
			if err == nil && (o.Record == nil || o.Hostname() != "pc" || !offline.IsSyntheticSeq(offline.SyntheticSeq(o.LedgerKey()))) {
				t.Errorf("opened %+v", o)
			}
		})
	}
}

func TestProvenanceRoundTrip(t *testing.T) {
	p := offline.Provenance{KitID: "kit-1", KitGen: 4, DeviceKey: make([]byte, 32), Payload: [32]byte{1, 2}}
	got, err := offline.ParseProvenance(p.String())
	if err != nil || got.KitID != p.KitID || got.KitGen != 4 || got.Payload != p.Payload {
		t.Fatalf("ParseProvenance(%q) = %+v, %v", p.String(), got, err)
	}
	if _, err := offline.ParseProvenance("kit-1"); err == nil {
		t.Error("a plain bundle id parsed as provenance")
	}
}

func TestCollectExitCodes(t *testing.T) {
	_, kj := testKit(t)
	inv := func(context.Context) (record.Inventory, error) { return offlinetest.Inventory(1, 2), nil }
	newMedium := func(t *testing.T, kit []byte) string {
		dir := t.TempDir()
		if err := offlinetest.NewKit(dir, kit); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	code := func(err error) int {
		var ee *offline.ExitError
		if errors.As(err, &ee) {
			return ee.Code
		}
		if err == nil {
			return 0
		}
		return -1
	}
	t.Run("ok, same device ID as the agent, never overwrites", func(t *testing.T) {
		dir, state := newMedium(t, kj), t.TempDir()
		os.WriteFile(filepath.Join(state, "device_id"), []byte("0123456789abcdef0123456789abcdef\n"), 0o644)
		at := time.Now().Add(-time.Minute)
		cfg := offline.CollectConfig{KitDir: dir, StateDir: state, Silent: true, Inventory: inv, Now: func() time.Time { return at }}
		p1, err := offline.Collect(context.Background(), cfg)
		if err != nil || !strings.Contains(p1, "/Data/0123456789abcdef0123456789abcdef/") {
			t.Fatalf("collect: %s %v", p1, err)
		}
		p2, err := offline.Collect(context.Background(), cfg)
		if err != nil || p1 == p2 {
			t.Fatalf("second run at the same instant: %s %v", p2, err)
		}
		rep, err := offline.Verify(dir, offline.Limits{})
		if err != nil || rep.Counts[offline.OutcomeVerified] != 2 {
			t.Fatalf("verify: %+v %v", rep, err)
		}
	})
	t.Run("kit missing", func(t *testing.T) {
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: t.TempDir(), StateDir: t.TempDir(), Silent: true, Inventory: inv})
		if code(err) != offline.ExitKitInvalid {
			t.Fatalf("%v, want %d", err, offline.ExitKitInvalid)
		}
	})
	t.Run("kit tampered", func(t *testing.T) {
		dir := newMedium(t, bytes.Replace(kj, []byte(`"generation": 2`), []byte(`"generation": 9`), 1))
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: t.TempDir(), Silent: true, Inventory: inv})
		if code(err) != offline.ExitKitInvalid {
			t.Fatalf("%v, want %d", err, offline.ExitKitInvalid)
		}
	})
	t.Run("path too long", func(t *testing.T) {
		long := filepath.Join(t.TempDir(), strings.Repeat("d/", offline.MaxKitPath/2))
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: long, StateDir: t.TempDir(), Silent: true, Inventory: inv})
		if code(err) != offline.ExitPathTooLong {
			t.Fatalf("%v, want %d", err, offline.ExitPathTooLong)
		}
	})
	t.Run("another run holds the lock", func(t *testing.T) {
		dir := newMedium(t, kj)
		f, err := os.OpenFile(filepath.Join(dir, "EDGESYNC", ".collect.lock"), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := hostfs.TryLock(f); err != nil {
			t.Fatal(err)
		}
		_, err = offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: t.TempDir(), Silent: true, Inventory: inv})
		if code(err) != offline.ExitBusy {
			t.Fatalf("%v, want %d", err, offline.ExitBusy)
		}
	})
	t.Run("medium not writable", func(t *testing.T) {
		if os.Geteuid() == 0 {
			t.Skip("root writes anywhere")
		}
		dir := newMedium(t, kj)
		os.Chmod(filepath.Join(dir, "EDGESYNC"), 0o500)
		defer os.Chmod(filepath.Join(dir, "EDGESYNC"), 0o755)
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: t.TempDir(), Silent: true, Inventory: inv})
		if code(err) != offline.ExitNotWritable {
			t.Fatalf("%v, want %d", err, offline.ExitNotWritable)
		}
	})
	t.Run("corrupt device key", func(t *testing.T) {
		dir, state := newMedium(t, kj), t.TempDir()
		os.WriteFile(filepath.Join(state, offline.DeviceKeyFile), []byte("zz\n"), 0o600)
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: state, Silent: true, Inventory: inv})
		if code(err) != offline.ExitStateCorrupt {
			t.Fatalf("%v, want %d", err, offline.ExitStateCorrupt)
		}
	})
	t.Run("form answers land in custom fields; EOF cancels", func(t *testing.T) {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		fk := &offline.Kit{ID: "kit-form", Generation: 1, Settings: offline.Settings{FormQuestions: []offline.Question{{Key: "dept", Prompt: "Department", Required: true}}}}
		fb, _ := offline.SignKit(priv, fk)
		dir := newMedium(t, fb)
		_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: t.TempDir(), In: strings.NewReader("\nSales\n"), Inventory: inv})
		if err != nil {
			t.Fatal(err)
		}
		_, err = offline.Collect(context.Background(), offline.CollectConfig{KitDir: dir, StateDir: t.TempDir(), In: strings.NewReader(""), Inventory: inv})
		if code(err) != offline.ExitCanceled {
			t.Fatalf("%v, want %d", err, offline.ExitCanceled)
		}
	})
}

func TestEncryptedRecordOpensOnlyWithIdentity(t *testing.T) {
	// age is exercised end to end at central; here: verify without the
	// identity stops at the signature and keeps the body sealed.
	k, _ := testKit(t)
	id, rcpt := mustAge(t)
	k.AgeRecipient = rcpt
	b := sealOne(t, k, time.Now().Add(-time.Minute))
	o, err := offline.Open(b, offline.OpenOptions{})
	if err != nil || o.Record != nil || !o.Sealed.Encrypted {
		t.Fatalf("verify-only open: %+v %v", o, err)
	}
	if bytes.Contains(b, []byte("hostname")) {
		t.Error("an encrypted record leaks its payload")
	}
	o, err = offline.Open(b, offline.OpenOptions{Identity: id, Now: time.Now()})
	if err != nil || o.Hostname() != "pc" {
		t.Fatalf("open with identity: %v", err)
	}
}
