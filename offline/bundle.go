package offline

import (
	"archive/tar"
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/hostfs"
)

// Limits caps what reading a medium may cost. Zero fields mean the default.
type Limits struct {
	MaxEntries    int    // archive entries of any kind
	MaxFileBytes  int64  // one extracted file (kit.json or .esr)
	MaxTotalBytes int64  // decompressed bytes read from an archive
	MaxRatio      int64  // decompressed / compressed, per zip entry and per .tar.zst
	ZstdMaxMemory uint64 // zstd decoder memory and window cap
}

// DefaultLimits fit a USB stick of many thousands of records and the
// edgesync binary.
func DefaultLimits() Limits {
	return Limits{MaxEntries: 200000, MaxFileBytes: MaxSealedBytes, MaxTotalBytes: 4 << 30, MaxRatio: 1000, ZstdMaxMemory: 64 << 20}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = d.MaxFileBytes
	}
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = d.MaxTotalBytes
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	if l.ZstdMaxMemory == 0 {
		l.ZstdMaxMemory = d.ZstdMaxMemory
	}
	return l
}

// Entry is one sealed record file of a medium.
type Entry struct {
	Name string // slash-separated, relative to the medium root: Data/<device>/<file>.esr
	path string // on disk (source dir or staging)
	data []byte // in memory (ScanMedium of an archive)
	size int64
}

// Size is the file size in bytes.
func (e Entry) Size() int64 { return e.size }

// EntryReject is a medium entry refused before any record was decoded.
type EntryReject struct {
	Name   string `json:"name"`
	Code   string `json:"reason"`
	Detail string `json:"detail"`
}

// Medium is an opened collection medium. Archives are extracted into a
// private staging directory that Close removes.
type Medium struct {
	Source   string // what the user named
	Archive  bool
	Kit      []byte // kit.json, nil when the medium has none
	Records  []Entry
	Rejected []EntryReject
	Bytes    int64 // bytes of the sealed records
	root     string
	staging  string
}

// ResultsDir is where import writes its result files: results/ on a
// directory medium, <archive>.results/ next to an archive.
func (m *Medium) ResultsDir() string {
	if m.Archive {
		return m.Source + ".results"
	}
	return filepath.Join(m.root, ResultsDir)
}

// Read returns one record file's bytes.
func (m *Medium) Read(e Entry) ([]byte, error) {
	if e.data != nil {
		return e.data, nil
	}
	f, err := os.Open(e.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSealedBytes+1))
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Close removes the staging directory, if any.
func (m *Medium) Close() error {
	if m.staging == "" {
		return nil
	}
	return os.RemoveAll(m.staging)
}

// OpenMedium opens a medium given as a directory (the medium root or its
// EDGESYNC folder), a .zip or a .tar.zst. Archives are extracted into a new
// directory under stagingParent (os.TempDir when empty) and nothing is
// written anywhere else. A broken archive, or one over a global cap, returns
// an error wrapping ErrArchive and leaves nothing behind; a single bad entry
// is listed in Rejected and the others are kept.
func OpenMedium(src, stagingParent string, lim Limits) (*Medium, error) {
	return openMedium(src, stagingParent, lim, false)
}

// MaxInMemoryBytes caps ScanMedium's in-memory copy of an archive's records.
const MaxInMemoryBytes = 512 << 20

// ScanMedium is OpenMedium for readers that only look (offline verify): an
// archive's records are kept in memory (at most MaxInMemoryBytes) and
// nothing is written to disk at all.
func ScanMedium(src string, lim Limits) (*Medium, error) {
	return openMedium(src, "", lim, true)
}

func openMedium(src, stagingParent string, lim Limits, inMemory bool) (*Medium, error) {
	lim = lim.withDefaults()
	st, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("open medium: %w", err)
	}
	m := &Medium{Source: src}
	if st.IsDir() {
		root := src
		if fi, err := os.Stat(filepath.Join(src, RootDir)); err == nil && fi.IsDir() {
			root = filepath.Join(src, RootDir)
		}
		m.root = root
		if err := m.scanDir(lim); err != nil {
			return nil, err
		}
		return m, nil
	}
	lower := strings.ToLower(src)
	var kind string
	switch {
	case strings.HasSuffix(lower, ".zip"):
		kind = "zip"
	case strings.HasSuffix(lower, ".tar.zst"), strings.HasSuffix(lower, ".tzst"):
		kind = "tar.zst"
	default:
		return nil, fmt.Errorf("open medium %s: want a directory, a .zip or a .tar.zst", src)
	}
	x := &extractor{m: m, lim: lim, seen: map[string]bool{}, dirs: map[string]bool{}, mem: inMemory}
	m.Archive = true
	if inMemory {
		m.root = filepath.Dir(src)
		if kind == "zip" {
			err = x.zip(src, st.Size())
		} else {
			err = x.tarZstd(src, st.Size())
		}
		if err != nil {
			return nil, err
		}
		slices.SortFunc(m.Records, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
		m.Rejected = x.rejected
		return m, nil
	}
	staging, err := os.MkdirTemp(stagingParent, "edgesync-import-")
	if err != nil {
		return nil, fmt.Errorf("create staging dir: %w", err)
	}
	m.staging, m.root = staging, staging
	if kind == "zip" {
		err = x.zip(src, st.Size())
	} else {
		err = x.tarZstd(src, st.Size())
	}
	if err != nil {
		os.RemoveAll(staging)
		return nil, err
	}
	if err := m.scanDir(lim); err != nil {
		os.RemoveAll(staging)
		return nil, err
	}
	m.Rejected = append(x.rejected, m.Rejected...)
	return m, nil
}

// scanDir lists kit.json and Data/ of m.root without following links.
func (m *Medium) scanDir(lim Limits) error {
	kp := filepath.Join(m.root, KitFile)
	if fi, err := os.Lstat(kp); err == nil {
		if !fi.Mode().IsRegular() || fi.Size() > maxKitBytes {
			return fmt.Errorf("%w: %s is not a regular file of at most %d bytes", ErrKit, KitFile, maxKitBytes)
		}
		if m.Kit, err = os.ReadFile(kp); err != nil {
			return fmt.Errorf("read kit: %w", err)
		}
	}
	data := filepath.Join(m.root, DataDir)
	if fi, err := os.Lstat(data); err != nil || !fi.IsDir() {
		return nil // no records yet
	}
	n := 0
	err := filepath.WalkDir(data, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(m.root, p)
		name := filepath.ToSlash(rel)
		if d.IsDir() {
			return nil
		}
		if n++; n > lim.MaxEntries {
			return fmt.Errorf("%w: more than %d files under %s", ErrArchive, lim.MaxEntries, DataDir)
		}
		if strings.HasPrefix(d.Name(), ".") {
			return nil // temp files of a collection run, lock files
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			m.Rejected = append(m.Rejected, EntryReject{name, ReasonSymlink, "symbolic link"})
		case !fi.Mode().IsRegular():
			m.Rejected = append(m.Rejected, EntryReject{name, ReasonNotRegular, "not a regular file: " + fi.Mode().Type().String()})
		case hostfs.HardLinked(fi):
			m.Rejected = append(m.Rejected, EntryReject{name, ReasonSymlink, "hard link"})
		case fi.Size() > lim.MaxFileBytes:
			m.Rejected = append(m.Rejected, EntryReject{name, ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", fi.Size(), lim.MaxFileBytes)})
		case !validRecordName(name):
			m.Rejected = append(m.Rejected, EntryReject{name, ReasonBadName, "want Data/<device-id>/<collected_at>_<nonce>.esr"})
		default:
			m.Records = append(m.Records, Entry{Name: name, path: p, size: fi.Size()})
			m.Bytes += fi.Size()
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrArchive) {
		return fmt.Errorf("scan %s: %w", data, err)
	}
	slices.SortFunc(m.Records, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return err
}

// validRecordName checks Data/<device-id>/<name>.esr.
func validRecordName(name string) bool {
	parts := strings.Split(name, "/")
	return len(parts) == 3 && parts[0] == DataDir && record.ValidDeviceID(parts[1]) &&
		strings.HasSuffix(parts[2], SealedExt) && len(parts[2]) > len(SealedExt) && len(parts[2]) <= 128
}

// CleanName maps an archive entry name onto the medium namespace. It
// refuses anything that could leave the staging directory or alias another
// entry: "..", absolute paths, drive letters, backslashes, NUL, empty or
// unclean names. A leading "./" and a top EDGESYNC/ folder are dropped.
func CleanName(name string) (string, error) {
	if name == "" || strings.ContainsAny(name, "\\\x00") {
		return "", reject(ReasonUnsafePath, "name %.80q has a backslash or NUL", name)
	}
	if strings.HasPrefix(name, "/") || (len(name) >= 2 && name[1] == ':') {
		return "", reject(ReasonUnsafePath, "name %.80q is absolute", name)
	}
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", nil // the archive root itself
	}
	if path.Clean(n) != n || !filepath.IsLocal(n) || slices.Contains(strings.Split(n, "/"), "..") {
		return "", reject(ReasonUnsafePath, "name %.80q is not a clean relative path", name)
	}
	if rest, ok := strings.CutPrefix(n, RootDir+"/"); ok {
		n = rest
	} else if n == RootDir {
		return "", nil
	}
	return n, nil
}

type extractor struct {
	m        *Medium
	lim      Limits
	seen     map[string]bool
	dirs     map[string]bool // staging dirs created
	mem      bool            // keep records in memory, write nothing
	entries  int
	total    int64
	rejected []EntryReject
}

func (x *extractor) refuse(name, code, detail string) {
	x.rejected = append(x.rejected, EntryReject{Name: name, Code: code, Detail: detail})
}

// admit decides what to do with one entry: "" skip, else the clean name.
func (x *extractor) admit(raw string, mode fs.FileMode, linkish bool) string {
	name, err := CleanName(raw)
	if err != nil {
		x.refuse(raw, ReasonOf(err), err.Error())
		return ""
	}
	if name == "" || mode.IsDir() {
		return ""
	}
	if x.seen[name] {
		x.refuse(raw, ReasonDuplicateName, "a second entry named "+name)
		return ""
	}
	x.seen[name] = true
	switch {
	case linkish || mode&fs.ModeSymlink != 0:
		x.refuse(raw, ReasonSymlink, "link entries are not extracted")
		return ""
	case !mode.IsRegular():
		x.refuse(raw, ReasonNotRegular, "not a regular file: "+mode.Type().String())
		return ""
	}
	if name == KitFile {
		return name
	}
	if strings.HasPrefix(name, DataDir+"/") {
		if !validRecordName(name) {
			x.refuse(raw, ReasonBadName, "want Data/<device-id>/<collected_at>_<nonce>.esr")
			return ""
		}
		return name
	}
	return "" // the binary, old results: not needed for import
}

// write copies at most MaxFileBytes of r into staging/name.
func (x *extractor) write(raw, name string, r io.Reader) error {
	if x.mem {
		b, err := io.ReadAll(io.LimitReader(r, x.lim.MaxFileBytes+1))
		x.total += int64(len(b))
		if x.total > min(x.lim.MaxTotalBytes, MaxInMemoryBytes) {
			return fmt.Errorf("%w: more than %d bytes to hold in memory", ErrArchive, min(x.lim.MaxTotalBytes, MaxInMemoryBytes))
		}
		switch {
		case err != nil:
			return err
		case int64(len(b)) > x.lim.MaxFileBytes:
			x.refuse(raw, ReasonTooLarge, fmt.Sprintf("over %d bytes", x.lim.MaxFileBytes))
		case name == KitFile:
			x.m.Kit = b
		default:
			x.m.Records = append(x.m.Records, Entry{Name: name, data: b, size: int64(len(b))})
			x.m.Bytes += int64(len(b))
		}
		return nil
	}
	dst := filepath.Join(x.m.staging, filepath.FromSlash(name))
	if d := filepath.Dir(dst); !x.dirs[d] {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("%w: staging: %v", ErrArchive, err)
		}
		x.dirs[d] = true
	}
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("%w: staging: %v", ErrArchive, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, x.lim.MaxFileBytes+1))
	f.Close()
	x.total += n
	if x.total > x.lim.MaxTotalBytes {
		return fmt.Errorf("%w: more than %d decompressed bytes", ErrArchive, x.lim.MaxTotalBytes)
	}
	if err != nil || n > x.lim.MaxFileBytes {
		os.Remove(dst)
		if n > x.lim.MaxFileBytes {
			x.refuse(raw, ReasonTooLarge, fmt.Sprintf("over %d bytes", x.lim.MaxFileBytes))
			return nil
		}
		return err
	}
	return nil
}

func (x *extractor) zip(src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer f.Close()
	zr, err := zip.NewReader(f, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return fmt.Errorf("%w: %s: %v", ErrArchive, src, err)
	}
	if len(zr.File) > x.lim.MaxEntries {
		return fmt.Errorf("%w: %d entries, limit %d", ErrArchive, len(zr.File), x.lim.MaxEntries)
	}
	for _, zf := range zr.File {
		name := x.admit(zf.Name, zf.Mode(), false)
		if name == "" {
			continue
		}
		if zf.CompressedSize64 > 0 && zf.UncompressedSize64/zf.CompressedSize64 > uint64(x.lim.MaxRatio) ||
			zf.CompressedSize64 == 0 && zf.UncompressedSize64 > 0 {
			x.refuse(zf.Name, ReasonCompression, fmt.Sprintf("%d bytes from %d compressed", zf.UncompressedSize64, zf.CompressedSize64))
			continue
		}
		if zf.UncompressedSize64 > uint64(x.lim.MaxFileBytes) {
			x.refuse(zf.Name, ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", zf.UncompressedSize64, x.lim.MaxFileBytes))
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			x.refuse(zf.Name, ReasonMalformed, err.Error())
			continue
		}
		err = x.write(zf.Name, name, rc)
		rc.Close()
		if errors.Is(err, ErrArchive) {
			return err
		}
		if err != nil { // checksum or size mismatch of this entry
			os.Remove(filepath.Join(x.m.staging, filepath.FromSlash(name)))
			x.refuse(zf.Name, ReasonMalformed, err.Error())
		}
	}
	return nil
}

// countingReader counts bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (x *extractor) tarZstd(src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer f.Close()
	compressed := &countingReader{r: f}
	zr, err := zstd.NewReader(compressed, zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(x.lim.ZstdMaxMemory), zstd.WithDecoderMaxWindow(x.lim.ZstdMaxMemory))
	if err != nil {
		return fmt.Errorf("%w: zstd: %v", ErrArchive, err)
	}
	defer zr.Close()
	plain := &countingReader{r: zr}
	check := func() error {
		if plain.n > x.lim.MaxTotalBytes {
			return fmt.Errorf("%w: more than %d decompressed bytes", ErrArchive, x.lim.MaxTotalBytes)
		}
		if plain.n > 16<<20 && plain.n/max(compressed.n, 1) > x.lim.MaxRatio {
			return fmt.Errorf("%w: expands more than %d:1 (a decompression bomb?)", ErrArchive, x.lim.MaxRatio)
		}
		return nil
	}
	tr := tar.NewReader(plain)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && !errors.Is(err, tar.ErrInsecurePath) {
			return fmt.Errorf("%w: %s: %v", ErrArchive, src, err)
		}
		if x.entries++; x.entries > x.lim.MaxEntries {
			return fmt.Errorf("%w: more than %d entries", ErrArchive, x.lim.MaxEntries)
		}
		if err := check(); err != nil {
			return err
		}
		var mode fs.FileMode
		linkish := false
		switch h.Typeflag {
		case tar.TypeReg, tar.TypeRegA:
		case tar.TypeDir:
			mode = fs.ModeDir
		case tar.TypeSymlink, tar.TypeLink:
			linkish = true
		default:
			mode = fs.ModeDevice
		}
		name := x.admit(h.Name, mode, linkish)
		if name == "" {
			continue
		}
		if h.Size > x.lim.MaxFileBytes {
			x.refuse(h.Name, ReasonTooLarge, fmt.Sprintf("%d bytes, limit %d", h.Size, x.lim.MaxFileBytes))
			continue
		}
		if err := x.write(h.Name, name, io.TeeReader(tr, io.Discard)); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrArchive, h.Name, err)
		}
		if err := check(); err != nil {
			return err
		}
	}
	// Drain to the end so a truncated or corrupt stream is an error, not a
	// silently shorter medium.
	if _, err := io.Copy(io.Discard, io.LimitReader(plain, x.lim.MaxTotalBytes)); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrArchive, src, err)
	}
	return check()
}
