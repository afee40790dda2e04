package blobstore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzStore: a blob name from the network (a relay's BlobRequest, an
// agent's /v1/blobs/ path) and bytes from a stream: any name that is not a
// SHA-256 is refused with ErrBadSum by every call, bytes are published only
// under their own hash, a refused Put or Commit leaves nothing behind, and
// no file is ever made outside the store's blobs/ and tmp/.
func FuzzStore(f *testing.F) {
	data := []byte("package bytes")
	h := sha256.Sum256(data)
	good := hex.EncodeToString(h[:])
	for _, s := range []struct {
		sum  string
		data []byte
	}{
		{good, data},
		{good, []byte("other bytes")},
		{strings.ToUpper(good), data},
		{"../../" + good[6:], data},
		{good[:2] + "/../x" + good[7:], data},
		{"", data},
		{"ab", nil},
	} {
		f.Add(s.sum, s.data)
	}
	f.Fuzz(func(t *testing.T, sum string, data []byte) {
		dir := t.TempDir()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(data)
		hashed := hex.EncodeToString(h[:])
		if !ValidSum(sum) {
			if _, ok := s.Has(sum); ok {
				t.Fatal("Has accepted a bad name")
			}
			_, _, errOpen := s.Open(sum)
			_, errPart := s.Partial(sum)
			errs := []error{errOpen, s.Verify(sum), s.Remove(sum), errPart}
			if sum != "" { // Put with no expected hash stores under the real one
				_, _, errPut := s.Put(bytes.NewReader(data), sum)
				errs = append(errs, errPut)
			}
			for _, err := range errs {
				if !errors.Is(err, ErrBadSum) {
					t.Fatalf("name %q: %v, want ErrBadSum", sum, err)
				}
			}
		} else {
			_, _, err := s.Put(bytes.NewReader(data), sum)
			if (err == nil) != (sum == hashed) {
				t.Fatalf("Put under %s of bytes hashing to %s: %v", sum, hashed, err)
			}
			p, err := s.Partial(sum)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = p.Write(data)
			if err := p.Commit(); (err == nil) != (sum == hashed) {
				t.Fatalf("Commit under %s of bytes hashing to %s: %v", sum, hashed, err)
			}
			p.Close()
			list, err := s.List()
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range list {
				if b.SHA256 != hashed {
					t.Fatalf("published %s, bytes hash to %s", b.SHA256, hashed)
				}
			}
		}
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(dir, p)
			if d != nil && !d.IsDir() {
				if strings.HasPrefix(rel, "tmp") {
					t.Fatalf("left %s behind", rel)
				}
				if !strings.HasPrefix(rel, filepath.Join("blobs", hashed[:2], hashed)) {
					t.Fatalf("file %s outside the store layout", rel)
				}
			}
			return nil
		})
	})
}
