package blobstore

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"testing"
	"time"
)

func sumOf(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

func TestStore_PutOpenVerifyCorrupt(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 1<<20)
	rand.Read(data)
	want := sumOf(data)
	if _, _, err := s.Put(bytes.NewReader(data), sumOf([]byte("other"))); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Put with wrong hash: %v, want ErrHashMismatch", err)
	}
	if _, ok := s.Has(want); ok {
		t.Fatal("blob visible after a failed Put")
	}
	sum, size, err := s.Put(bytes.NewReader(data), want)
	if err != nil || sum != want || size != int64(len(data)) {
		t.Fatalf("Put = %s %d %v", sum, size, err)
	}
	f, _, err := s.Open(want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, data) {
		t.Fatal("read back different bytes")
	}
	// Flip a byte in place: the changed mtime makes Open hash again.
	data[10] ^= 0xFF
	time.Sleep(10 * time.Millisecond) // mtime granularity
	if err := os.WriteFile(s.Path(want), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Open(want); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of corrupted blob: %v, want ErrCorrupt", err)
	}
	if _, ok := s.Has(want); ok {
		t.Fatal("corrupt blob still present")
	}
	if _, _, err := s.Open("nothex"); !errors.Is(err, ErrBadSum) {
		t.Fatalf("Open(bad) = %v", err)
	}
}

func TestStore_PartialResume(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := make([]byte, 300<<10)
	rand.Read(data)
	sum := sumOf(data)
	p, err := s.Partial(sum)
	if err != nil {
		t.Fatal(err)
	}
	p.Write(data[:100<<10])
	p.Close()
	if _, ok := s.Has(sum); ok {
		t.Fatal("partial blob visible")
	}
	p, err = s.Partial(sum)
	if err != nil {
		t.Fatal(err)
	}
	if p.Offset() != 100<<10 {
		t.Fatalf("resume offset %d", p.Offset())
	}
	p.Write(data[p.Offset():])
	if err := p.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(sum); err != nil {
		t.Fatal(err)
	}
	// A bad partial is discarded on Commit.
	p, _ = s.Partial(sumOf([]byte("x")))
	p.Write([]byte("y"))
	if err := p.Commit(); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Commit of wrong bytes: %v", err)
	}
}

func TestStore_EvictLRU(t *testing.T) {
	s, _ := Open(t.TempDir())
	var sums []string
	for i := range 3 {
		b := bytes.Repeat([]byte{byte(i)}, 1000)
		sum, _, err := s.Put(bytes.NewReader(b), "")
		if err != nil {
			t.Fatal(err)
		}
		sums = append(sums, sum)
		time.Sleep(5 * time.Millisecond)
	}
	f, _, _ := s.Open(sums[0]) // most recently used now
	f.Close()
	removed, err := s.Evict(1000, func(sum string) bool { return sum == sums[1] })
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 || removed[0] != sums[2] || removed[1] != sums[0] {
		t.Fatalf("evicted %v; want %s then %s (sums[1] protected)", removed, sums[2][:8], sums[0][:8])
	}
}
