package blobstore

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

var (
	// ErrNotFound means the store holds no blob with that hash.
	ErrNotFound = errors.New("blobstore: not found")
	// ErrCorrupt means a stored blob no longer matches its hash; it was removed.
	ErrCorrupt = errors.New("blobstore: blob corrupt")
	// ErrHashMismatch means written bytes do not hash to the expected SHA-256.
	ErrHashMismatch = errors.New("blobstore: hash mismatch")
	// ErrBadSum means a string is not a SHA-256 in lowercase hex.
	ErrBadSum = errors.New("blobstore: not a sha256 hex digest")
)

// ValidSum reports whether s is 64 lowercase hex characters.
func ValidSum(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// stamp is what a file looked like when it was last verified.
type stamp struct {
	size  int64
	mtime int64
}

func stampOf(fi fs.FileInfo) stamp { return stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()} }

// Info describes one stored blob.
type Info struct {
	SHA256   string    `json:"sha256"`
	Size     int64     `json:"size"`
	LastUsed time.Time `json:"last_used"`
}

// Store is a directory of blobs. It is safe for concurrent use; one Partial
// per hash at a time is the caller's job (relay/cache.go uses singleflight).
type Store struct {
	dir string

	// mu guards stamps and used.
	mu     sync.Mutex
	stamps map[string]stamp     // verified blobs and how their file looked then
	used   map[string]time.Time // last Open, for LRU eviction
}

// Open opens (creating) a store in dir.
func Open(dir string) (*Store, error) {
	for _, d := range []string{dir, filepath.Join(dir, "blobs"), filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("blobstore: create %s: %w", d, err)
		}
	}
	return &Store{dir: dir, stamps: map[string]stamp{}, used: map[string]time.Time{}}, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Path is where the blob sum lives (whether or not it exists).
func (s *Store) Path(sum string) string { return filepath.Join(s.dir, "blobs", sum[:2], sum) }

func (s *Store) partPath(sum string) string { return filepath.Join(s.dir, "tmp", sum+".part") }

// Has reports whether the blob exists and its size, without verifying it.
func (s *Store) Has(sum string) (int64, bool) {
	if !ValidSum(sum) {
		return 0, false
	}
	fi, err := os.Stat(s.Path(sum))
	if err != nil {
		return 0, false
	}
	return fi.Size(), true
}

// Open returns the verified blob for reading. A blob not verified since its
// file last changed is hashed first; one that fails is removed (ErrCorrupt).
func (s *Store) Open(sum string) (*os.File, int64, error) {
	if !ValidSum(sum) {
		return nil, 0, ErrBadSum
	}
	f, err := os.Open(s.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, ErrNotFound
	}
	if err != nil {
		return nil, 0, fmt.Errorf("blobstore: open %s: %w", sum, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("blobstore: stat %s: %w", sum, err)
	}
	s.mu.Lock()
	st, ok := s.stamps[sum]
	s.mu.Unlock()
	if !ok || st != stampOf(fi) {
		if err := s.check(f, sum, fi); err != nil {
			f.Close()
			return nil, 0, err
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			f.Close()
			return nil, 0, err
		}
	}
	s.mu.Lock()
	s.used[sum] = time.Now()
	s.mu.Unlock()
	return f, fi.Size(), nil
}

// check hashes f; on a mismatch it removes the blob.
func (s *Store) check(f *os.File, sum string, fi fs.FileInfo) error {
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return fmt.Errorf("blobstore: read %s: %w", sum, err)
	}
	if hex.EncodeToString(h.Sum(nil)) != sum {
		s.forget(sum)
		_ = os.Remove(s.Path(sum))
		return fmt.Errorf("%w: %s", ErrCorrupt, sum)
	}
	s.mu.Lock()
	s.stamps[sum] = stampOf(fi)
	s.mu.Unlock()
	return nil
}

// Verify hashes the blob again whatever its stamp says. A corrupt blob is
// removed and ErrCorrupt returned.
func (s *Store) Verify(sum string) error {
	if !ValidSum(sum) {
		return ErrBadSum
	}
	f, err := os.Open(s.Path(sum))
	if errors.Is(err, fs.ErrNotExist) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	return s.check(f, sum, fi)
}

func (s *Store) forget(sum string) {
	s.mu.Lock()
	delete(s.stamps, sum)
	delete(s.used, sum)
	s.mu.Unlock()
}

// Remove deletes a blob (a missing blob is not an error).
func (s *Store) Remove(sum string) error {
	if !ValidSum(sum) {
		return ErrBadSum
	}
	s.forget(sum)
	if err := os.Remove(s.Path(sum)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blobstore: remove %s: %w", sum, err)
	}
	return nil
}

// List returns every stored blob, sorted by hash.
func (s *Store) List() ([]Info, error) {
	var out []Info
	root := filepath.Join(s.dir, "blobs")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !ValidSum(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		s.mu.Lock()
		used := s.used[d.Name()]
		s.mu.Unlock()
		if used.IsZero() {
			used = fi.ModTime()
		}
		out = append(out, Info{SHA256: d.Name(), Size: fi.Size(), LastUsed: used})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("blobstore: list: %w", err)
	}
	slices.SortFunc(out, func(a, b Info) int { return strings.Compare(a.SHA256, b.SHA256) })
	return out, nil
}

// Size is the total size of stored blobs.
func (s *Store) Size() int64 {
	list, _ := s.List()
	var n int64
	for _, b := range list {
		n += b.Size
	}
	return n
}

// Evict removes least recently used blobs that keep does not protect until
// the store holds at most target bytes. It returns the hashes removed.
func (s *Store) Evict(target int64, keep func(sum string) bool) ([]string, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	var total int64
	for _, b := range list {
		total += b.Size
	}
	slices.SortFunc(list, func(a, b Info) int { return a.LastUsed.Compare(b.LastUsed) })
	var removed []string
	for _, b := range list {
		if total <= target {
			break
		}
		if keep != nil && keep(b.SHA256) {
			continue
		}
		if err := s.Remove(b.SHA256); err != nil {
			return removed, err
		}
		total -= b.Size
		removed = append(removed, b.SHA256)
	}
	return removed, nil
}

// Put stores the bytes of r. With want set, bytes that hash differently are
// discarded (ErrHashMismatch) and nothing becomes visible.
func (s *Store) Put(r io.Reader, want string) (sum string, size int64, err error) {
	if want != "" && !ValidSum(want) {
		return "", 0, ErrBadSum
	}
	f, err := os.CreateTemp(filepath.Join(s.dir, "tmp"), "put-*")
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: create temp: %w", err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	h := sha256.New()
	size, err = io.Copy(io.MultiWriter(f, h), r)
	if err != nil {
		return "", 0, fmt.Errorf("blobstore: write: %w", err)
	}
	sum = hex.EncodeToString(h.Sum(nil))
	if want != "" && sum != want {
		return "", 0, fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, sum, want)
	}
	if err := s.commit(f, sum); err != nil {
		return "", 0, err
	}
	return sum, size, nil
}

// commit fsyncs f, renames it into place and fsyncs the directory. f is closed.
func (s *Store) commit(f *os.File, sum string) error {
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("blobstore: fsync: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("blobstore: close: %w", err)
	}
	dst := s.Path(sum)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("blobstore: create dir: %w", err)
	}
	if err := os.Rename(f.Name(), dst); err != nil {
		return fmt.Errorf("blobstore: rename: %w", err)
	}
	if d, err := os.Open(filepath.Dir(dst)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	s.mu.Lock()
	s.stamps[sum] = stampOf(fi)
	s.used[sum] = time.Now()
	s.mu.Unlock()
	return nil
}

// Partial is a resumable download of one blob. Write appends; Commit verifies
// and publishes; Close without Commit keeps the bytes for a later resume.
type Partial struct {
	s      *Store
	sum    string
	f      *os.File
	h      hash.Hash
	offset int64
}

// Partial opens (or resumes) the download of sum. The bytes already held are
// hashed again so the final check covers them too.
func (s *Store) Partial(sum string) (*Partial, error) {
	if !ValidSum(sum) {
		return nil, ErrBadSum
	}
	f, err := os.OpenFile(s.partPath(sum), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("blobstore: open partial %s: %w", sum, err)
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("blobstore: read partial %s: %w", sum, err)
	}
	return &Partial{s: s, sum: sum, f: f, h: h, offset: n}, nil
}

// Offset is how many bytes are held, where the next fetch starts.
func (p *Partial) Offset() int64 { return p.offset }

// Write appends b.
func (p *Partial) Write(b []byte) (int, error) {
	n, err := p.f.Write(b)
	p.h.Write(b[:n])
	p.offset += int64(n)
	return n, err
}

// Commit checks the hash and publishes the blob. On a mismatch the partial
// file is discarded (ErrHashMismatch): resuming it could never succeed.
func (p *Partial) Commit() error {
	got := hex.EncodeToString(p.h.Sum(nil))
	if got != p.sum {
		p.Discard()
		return fmt.Errorf("%w: got %s, want %s", ErrHashMismatch, got, p.sum)
	}
	f := p.f
	p.f = nil
	return p.s.commit(f, p.sum)
}

// Close keeps the partial bytes for a later resume.
func (p *Partial) Close() error {
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// Discard deletes the partial bytes.
func (p *Partial) Discard() {
	if p.f != nil {
		p.f.Close()
		p.f = nil
	}
	_ = os.Remove(p.s.partPath(p.sum))
}
