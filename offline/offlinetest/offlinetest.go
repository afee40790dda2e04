package offlinetest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/offline"
)

// Inventory is a plausible inventory for host i with about softwareN packages.
func Inventory(i, softwareN int) record.Inventory {
	inv := record.Inventory{
		Hostname: fmt.Sprintf("offline-pc-%04d", i),
		OS:       record.OS{Name: "Ubuntu", Version: "24.04", Kernel: "6.8.0-45-generic", Arch: "amd64"},
		Hardware: record.Hardware{Vendor: "LENOVO", Model: "ThinkCentre M70q", Serial: fmt.Sprintf("PF%06d", i), BIOS: "M3AKT52A",
			CPUModel: "Intel(R) Core(TM) i5-10400T", CPUCores: 6, MemoryBytes: 16 << 30,
			Disks:      []record.Disk{{Name: "nvme0n1", SizeBytes: 512 << 30, Model: "SAMSUNG MZVLB512"}},
			Interfaces: []record.Interface{{Name: "eno1", MAC: fmt.Sprintf("00:1a:2b:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff), Addresses: []string{"10.0.0.1/24"}}}},
		Users: []string{"operator"},
	}
	for s := range softwareN {
		inv.Software = append(inv.Software, record.Software{Name: fmt.Sprintf("package-%03d", s), Version: "1.2.3-1ubuntu1", Publisher: "Ubuntu Developers"})
	}
	return inv
}

// Collect writes records into the medium at kitDir: devices × perDevice
// records, device d's state under stateRoot/d, collected one minute apart
// from start. It returns the device IDs.
func Collect(kitDir, stateRoot string, devices, perDevice, softwareN int, start time.Time) ([]string, error) {
	var ids []string
	for d := range devices {
		state := filepath.Join(stateRoot, fmt.Sprint(d))
		for r := range perDevice {
			at := start.Add(time.Duration(d*perDevice+r) * time.Second)
			_, err := offline.Collect(context.Background(), offline.CollectConfig{KitDir: kitDir, StateDir: state, Silent: true,
				Now:       func() time.Time { return at },
				Inventory: func(context.Context) (record.Inventory, error) { return Inventory(d, softwareN), nil }})
			if err != nil {
				return nil, err
			}
		}
		b, err := os.ReadFile(filepath.Join(state, "device_id"))
		if err != nil {
			return nil, err
		}
		ids = append(ids, strings.TrimSpace(string(b)))
	}
	return ids, nil
}

// NewKit creates a medium at dir with kit.json.
func NewKit(dir string, kitJSON []byte) error {
	root := filepath.Join(dir, offline.RootDir)
	if err := os.MkdirAll(filepath.Join(root, offline.DataDir), 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(root, offline.KitFile), kitJSON, 0o644)
}

// File is one archive entry.
type File struct {
	Name string
	Data []byte
	Mode fs.FileMode // 0 = regular; fs.ModeSymlink, fs.ModeDevice...
	Link string
	// Stored keeps a zip entry uncompressed.
	Stored bool
}

// Files lists the medium at dir as archive entries under EDGESYNC/.
func Files(dir string) ([]File, error) {
	var out []File
	root := filepath.Join(dir, offline.RootDir)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, File{Name: filepath.ToSlash(rel), Data: b})
		return nil
	})
	return out, err
}

// WriteZip writes files as a zip.
func WriteZip(path string, files []File) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, x := range files {
		h := &zip.FileHeader{Name: x.Name, Method: zip.Deflate}
		if x.Stored {
			h.Method = zip.Store
		}
		h.SetMode(0o644 | x.Mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		data := x.Data
		if x.Mode&fs.ModeSymlink != 0 {
			data = []byte(x.Link)
		}
		if _, err := w.Write(data); err != nil {
			return err
		}
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// WriteTarZstd writes files as a .tar.zst.
func WriteTarZstd(path string, files []File) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw, err := zstd.NewWriter(f, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	for _, x := range files {
		h := &tar.Header{Name: x.Name, Mode: 0o644, Size: int64(len(x.Data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1700000000, 0)}
		switch {
		case x.Mode&fs.ModeSymlink != 0:
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, x.Link, 0
		case x.Mode&fs.ModeDevice != 0:
			h.Typeflag, h.Size = tar.TypeChar, 0
		case x.Link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeLink, x.Link, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Size > 0 {
			if _, err := tw.Write(x.Data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// Hostile is one crafted bad entry and the reason it must be refused with.
type Hostile struct {
	File   File
	Reason string
}

// HostileSet returns bad entries for a medium whose kit is kit: zip-slip
// variants, a bomb, links, a truncated, a bit-flipped, a wrongly signed, a
// foreign kit's and a future record, and a duplicate name. good is one good
// sealed record of the medium (its name and bytes) to derive from.
func HostileSet(kit *offline.Kit, good File) ([]Hostile, error) {
	dev := strings.Split(good.Name, "/")[2]
	dir := "EDGESYNC/Data/" + dev + "/"
	flip := bytes.Clone(good.Data)
	// Flip a bit inside the body (base64 text): change one character.
	if i := bytes.Index(flip, []byte(`"body":"`)); i > 0 {
		j := i + len(`"body":"`) + 40
		if flip[j] == 'A' {
			flip[j] = 'B'
		} else {
			flip[j] = 'A'
		}
	}
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	_, foreignCentral, _ := ed25519.GenerateKey(rand.Reader)
	foreign := *kit
	foreign.ID = "kit-foreign000000"
	foreign.AgeRecipient = ""
	if _, err := offline.SignKit(foreignCentral, &foreign); err != nil {
		return nil, err
	}
	inv := []byte(`{"hostname":"forged","os":{"name":"Linux"},"hardware":{}}`)
	mk := func(k *offline.Kit, key ed25519.PrivateKey, at time.Time) []byte {
		b, err := offline.Seal(k, key, &record.Record{DeviceID: dev, Kind: record.KindInventory, CollectedAt: at, Schema: record.SchemaVersion, Payload: inv})
		if err != nil {
			panic(err)
		}
		return b
	}
	var sealed offline.Sealed
	if err := json.Unmarshal(good.Data, &sealed); err != nil {
		return nil, err
	}
	sealed.Sig = ed25519.Sign(otherKey, []byte("not the signing input"))
	wrongSig, err := json.Marshal(&sealed)
	if err != nil {
		return nil, err
	}
	bomb := bytes.Repeat([]byte{'0'}, 64<<20)
	return []Hostile{
		{File{Name: "EDGESYNC/Data/../../evil.esr", Data: good.Data}, offline.ReasonUnsafePath},
		{File{Name: "../outside.esr", Data: good.Data}, offline.ReasonUnsafePath},
		{File{Name: "/etc/cron.d/evil", Data: []byte("* * * * * root rm -rf /")}, offline.ReasonUnsafePath},
		{File{Name: "C:/Windows/evil.esr", Data: good.Data}, offline.ReasonUnsafePath},
		{File{Name: `EDGESYNC\Data\` + dev + `\x.esr`, Data: good.Data}, offline.ReasonUnsafePath},
		{File{Name: dir + "link.esr", Mode: fs.ModeSymlink, Link: "/etc/passwd"}, offline.ReasonSymlink},
		{File{Name: dir + "bomb.esr", Data: bomb}, offline.ReasonCompression + "|" + offline.ReasonTooLarge},
		{File{Name: good.Name, Data: good.Data}, offline.ReasonDuplicateName},
		{File{Name: dir + "20200101T000000.000000000Z_trunc.esr", Data: good.Data[:len(good.Data)/2]}, offline.ReasonMalformed},
		{File{Name: dir + "20200101T000000.000000000Z_flip.esr", Data: flip}, offline.ReasonBadHash},
		{File{Name: dir + "20200101T000000.000000000Z_sig.esr", Data: wrongSig}, offline.ReasonBadSignature},
		{File{Name: dir + "20200101T000000.000000000Z_foreign.esr", Data: mk(&foreign, otherKey, time.Now().Add(-time.Hour))}, offline.ReasonKitMismatch},
		{File{Name: dir + "20200101T000000.000000000Z_future.esr", Data: mk(kit, otherKey, time.Now().Add(48*time.Hour))}, record.CodeFutureTime},
		{File{Name: dir + "20200101T000000.000000000Z_copy.esr", Data: good.Data}, offline.OutcomeDuplicate},
	}, nil
}

// ReadAll is io.ReadAll for callers that import this package only.
func ReadAll(r io.Reader) ([]byte, error) { return io.ReadAll(r) }
