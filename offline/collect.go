package offline

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edgesync/edgesync/collector/probe"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/hostfs"
)

// Collector exit codes, numbered after the product's getinv.vbs
// (manual-offline-inventory.md §1.6).
const (
	ExitOK           = 0
	ExitCanceled     = 10001 // the end user cancelled the form
	ExitUsage        = 10011 // bad arguments
	ExitBusy         = 10031 // another collection is running on this medium
	ExitPathTooLong  = 10051 // the medium path is too long
	ExitCollect      = 10101 // inventory could not be collected or sealed
	ExitNotWritable  = 10102 // the medium is not writable
	ExitKitInvalid   = 10105 // kit.json missing, corrupt or tampered
	ExitStateCorrupt = 10106 // the device ID or device key on this machine is corrupt
)

// MaxKitPath caps the kit directory's absolute path so the record path
// (+ /Data/<32>/<name>.esr) stays far below PATH_MAX on every file system.
// On Windows the cap is the product's: the tool folder at most 128
// characters (manual-offline-inventory.md §1.6), so that <kit>\Data fits
// the 133 characters its import accepts and every record path stays under
// MAX_PATH (260) without the long-path opt-in.
const (
	MaxKitPath        = 1024
	MaxKitPathWindows = 128
)

// checkKitPath applies the path rules of the medium: the length limit of
// goos (in characters, not bytes: a Japanese folder name counts one per
// character, as on the product) and no ASCII control characters.
func checkKitPath(root, goos string) error {
	limit, n := MaxKitPath, len(root)
	if goos == "windows" {
		limit, n = MaxKitPathWindows, utf8.RuneCountInString(root)
	}
	if n > limit {
		return exitErr(ExitPathTooLong, "kit path is %d characters, limit %d: copy the EDGESYNC folder nearer the drive root", n, limit)
	}
	for _, r := range root {
		if r < 0x20 || r == 0x7f {
			return exitErr(ExitPathTooLong, "kit path %q holds a control character", root)
		}
	}
	return nil
}

// DeviceKeyFile holds the device's ed25519 seed (hex) next to device_id.
const DeviceKeyFile = "offline_key"

const deviceIDFile = "device_id" // the agent's file (collector/agent)

// ExitError is a collection failure with its exit code.
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string { return fmt.Sprintf("collect (exit %d): %v", e.Code, e.Err) }
func (e *ExitError) Unwrap() error { return e.Err }

func exitErr(code int, format string, args ...any) *ExitError {
	return &ExitError{Code: code, Err: fmt.Errorf(format, args...)}
}

// CollectConfig drives one collection run.
type CollectConfig struct {
	KitDir   string // the medium root or its EDGESYNC folder
	StateDir string // where the device ID and key live (the agent's state dir when an agent is installed)
	NoForm   bool   // do not ask the end-user form questions
	Silent   bool   // no output, no form
	// SkipSoftware skips the installed-software search (the product's /s),
	// whatever the kit's settings say.
	SkipSoftware bool
	In           io.Reader
	Out          io.Writer
	// Now and Inventory are for tests; nil means time.Now and probe.Collect.
	Now       func() time.Time
	Inventory func(ctx context.Context) (record.Inventory, error)
}

// Collect gathers this machine's inventory and writes one sealed record to
// the medium. The error is always an *ExitError.
func Collect(ctx context.Context, cfg CollectConfig) (string, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Out == nil || cfg.Silent {
		cfg.Out = io.Discard
	}
	if cfg.In == nil {
		cfg.In = os.Stdin
	}
	if cfg.KitDir == "" || cfg.StateDir == "" {
		return "", exitErr(ExitUsage, "--kit and --state are required")
	}
	root, err := filepath.Abs(cfg.KitDir)
	if err != nil {
		return "", exitErr(ExitUsage, "kit dir: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, RootDir)); err == nil && fi.IsDir() {
		root = filepath.Join(root, RootDir)
	}
	if err := checkKitPath(root, runtime.GOOS); err != nil {
		return "", err
	}
	kb, err := os.ReadFile(filepath.Join(root, KitFile))
	if err != nil {
		return "", exitErr(ExitKitInvalid, "read kit: %v", err)
	}
	kit, err := ParseKit(kb, nil)
	if err != nil {
		return "", exitErr(ExitKitInvalid, "%v", err)
	}
	unlock, err := lockMedium(root)
	if err != nil {
		return "", err
	}
	defer unlock()

	devID, key, err := loadIdentity(cfg.StateDir)
	if err != nil {
		return "", err
	}
	collect := cfg.Inventory
	if collect == nil {
		collect = func(ctx context.Context) (record.Inventory, error) { return probe.Collect(ctx, probe.Options{}) }
	}
	inv, perr := collect(ctx)
	if inv.Hostname == "" && perr != nil {
		return "", exitErr(ExitCollect, "collect inventory: %v", perr)
	}
	settings := kit.Settings
	settings.SkipSoftware = settings.SkipSoftware || cfg.SkipSoftware
	applySettings(&inv, settings)
	if !cfg.NoForm && !cfg.Silent && len(kit.Settings.FormQuestions) > 0 {
		if err := askForm(cfg.In, cfg.Out, kit.Settings.FormQuestions, &inv); err != nil {
			return "", err
		}
	}
	payload, err := json.Marshal(&inv)
	if err != nil {
		return "", exitErr(ExitCollect, "encode inventory: %v", err)
	}
	at := cfg.Now().UTC()
	rec := &record.Record{DeviceID: devID, Kind: record.KindInventory, CollectedAt: at, Schema: record.SchemaVersion, Payload: payload}
	if err := record.Validate(&record.Record{DeviceID: devID, Seq: 1, Kind: rec.Kind, CollectedAt: at, Schema: rec.Schema, Payload: payload}, at, record.Limits{}); err != nil {
		return "", exitErr(ExitCollect, "inventory does not pass validation: %v", err)
	}
	sealed, err := Seal(kit, key, rec)
	if err != nil {
		return "", exitErr(ExitCollect, "seal: %v", err)
	}
	var nonce [4]byte
	rand.Read(nonce[:])
	dir := filepath.Join(root, DataDir, devID)
	name := at.Format("20060102T150405.000000000Z") + "_" + hex.EncodeToString(nonce[:]) + SealedExt
	path := filepath.Join(dir, name)
	if err := writeNew(dir, path, sealed); err != nil {
		return "", err
	}
	fmt.Fprintf(cfg.Out, "collected %s (%s) into %s\n", inv.Hostname, devID, path)
	return path, nil
}

func applySettings(inv *record.Inventory, s Settings) {
	if s.SkipSoftware {
		inv.Software = nil
	}
	if s.SkipUsers {
		inv.Users = nil
	}
	if s.SkipNetwork {
		inv.Hardware.Interfaces = nil
	}
	for _, f := range s.CustomFields {
		if inv.CustomFields == nil {
			inv.CustomFields = map[string]string{}
		}
		if _, ok := inv.CustomFields[f]; !ok {
			inv.CustomFields[f] = ""
		}
	}
}

func askForm(in io.Reader, out io.Writer, qs []Question, inv *record.Inventory) error {
	sc := bufio.NewScanner(in)
	if inv.CustomFields == nil {
		inv.CustomFields = map[string]string{}
	}
	for _, q := range qs {
		for {
			fmt.Fprintf(out, "%s: ", q.Prompt)
			if !sc.Scan() {
				return exitErr(ExitCanceled, "form cancelled")
			}
			a := strings.TrimSpace(sc.Text())
			if a == "" && q.Required {
				continue
			}
			inv.CustomFields[q.Key] = a
			break
		}
	}
	return nil
}

// lockMedium takes an exclusive flock on EDGESYNC/.collect.lock; the kernel
// drops it if the process dies.
func lockMedium(root string) (func(), error) {
	p := filepath.Join(root, ".collect.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, exitErr(ExitNotWritable, "medium not writable: %v", err)
	}
	if err := hostfs.TryLock(f); err != nil {
		f.Close()
		if errors.Is(err, hostfs.ErrLocked) {
			return nil, exitErr(ExitBusy, "another collection is running on this medium")
		}
		return nil, exitErr(ExitNotWritable, "lock medium: %v", err)
	}
	return func() { hostfs.Unlock(f); f.Close() }, nil
}

// loadIdentity returns the device ID (the agent's when present) and the
// device key, creating what is missing.
func loadIdentity(dir string) (string, ed25519.PrivateKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, exitErr(ExitStateCorrupt, "state dir: %v", err)
	}
	id, err := loadOrCreate(filepath.Join(dir, deviceIDFile), 0o644, func() string { return record.NewDeviceID() })
	if err != nil {
		return "", nil, err
	}
	if !record.ValidDeviceID(id) {
		return "", nil, exitErr(ExitStateCorrupt, "%s holds %q, not a device ID", deviceIDFile, id)
	}
	seed, err := loadOrCreate(filepath.Join(dir, DeviceKeyFile), 0o600, func() string {
		var s [ed25519.SeedSize]byte
		rand.Read(s[:])
		return hex.EncodeToString(s[:])
	})
	if err != nil {
		return "", nil, err
	}
	sb, err := hex.DecodeString(seed)
	if err != nil || len(sb) != ed25519.SeedSize {
		return "", nil, exitErr(ExitStateCorrupt, "%s is not an ed25519 seed", DeviceKeyFile)
	}
	return id, ed25519.NewKeyFromSeed(sb), nil
}

func loadOrCreate(p string, perm fs.FileMode, gen func() string) (string, error) {
	b, err := os.ReadFile(p)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", exitErr(ExitStateCorrupt, "read %s: %v", p, err)
	}
	v := gen()
	if err := writeNew(filepath.Dir(p), p, []byte(v+"\n")); err != nil {
		return "", exitErr(ExitStateCorrupt, "write %s: %v", p, err)
	}
	os.Chmod(p, perm)
	return v, nil
}

// writeNew writes data to path atomically (temp, fsync, link or rename)
// and never replaces an existing file.
func writeNew(dir, path string, data []byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return exitErr(ExitNotWritable, "create %s: %v", dir, err)
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return exitErr(ExitNotWritable, "medium not writable: %v", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return exitErr(ExitNotWritable, "write: %v", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return exitErr(ExitNotWritable, "fsync: %v", err)
	}
	if err := tmp.Close(); err != nil {
		return exitErr(ExitNotWritable, "close: %v", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return exitErr(ExitCollect, "%s exists: never overwritten", path)
		}
		// File systems without hard links (FAT sticks): the nonce makes a
		// clash practically impossible; check, then rename.
		if _, serr := os.Lstat(path); serr == nil {
			return exitErr(ExitCollect, "%s exists: never overwritten", path)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			return exitErr(ExitNotWritable, "rename: %v", err)
		}
	}
	if err := hostfs.SyncDir(dir); err != nil {
		return exitErr(ExitNotWritable, "%v", err)
	}
	return nil
}
