//go:build linux

package lossyfs

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// mounted mounts a fresh lossyfs over backing, skipping where FUSE cannot.
func mounted(t *testing.T, backing, mnt string) *FS {
	t.Helper()
	f, err := Mount(backing, mnt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func setup(t *testing.T) (backing, mnt string) {
	t.Helper()
	if err := Available(t.TempDir()); err != nil {
		t.Skipf("FUSE unavailable here: %v", err)
	}
	backing, mnt = filepath.Join(t.TempDir(), "b"), filepath.Join(t.TempDir(), "m")
	if err := os.MkdirAll(backing, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	return backing, mnt
}

// TestCutKeepsOnlySynced: what was fsynced (by write, by an O_DSYNC write,
// by msync of a shared mapping) survives a cut, what was not is gone, and
// until the cut every read sees every write.
func TestCutKeepsOnlySynced(t *testing.T) {
	backing, mnt := setup(t)
	f := mounted(t, backing, mnt)

	synced := bytes.Repeat([]byte("S"), 10_000)
	w, err := os.Create(filepath.Join(mnt, "log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(synced); err != nil {
		t.Fatal(err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("unsynced tail")); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "log")); err != nil || !bytes.Equal(got, append(append([]byte{}, synced...), "unsynced tail"...)) {
		t.Fatalf("read before cut: %d bytes, %v", len(got), err)
	}

	d, err := os.OpenFile(filepath.Join(mnt, "dsync"), os.O_CREATE|os.O_RDWR|syscall.O_DSYNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Write([]byte("durable at once")); err != nil {
		t.Fatal(err)
	}

	// A shared mapping: the first page msynced, the second written after.
	m, err := os.Create(filepath.Join(mnt, "mapped"))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Truncate(2 * pageSize); err != nil {
		t.Fatal(err)
	}
	mem, err := syscall.Mmap(int(m.Fd()), 0, 2*pageSize, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	copy(mem, "page one")
	if err := msync(mem); err != nil {
		t.Fatal(err)
	}
	copy(mem[pageSize:], "page two")

	os.WriteFile(filepath.Join(mnt, "never-synced"), []byte("gone"), 0o600)

	f.Cut()
	if _, err := w.Write([]byte("after")); err == nil {
		t.Error("a write after the cut succeeded")
	}
	syscall.Munmap(mem)
	w.Close()
	d.Close()
	m.Close()
	if err := f.Unmount(); err != nil {
		t.Fatal(err)
	}
	if f.Dropped() == 0 {
		t.Error("the cut dropped nothing")
	}

	f = mounted(t, backing, mnt)
	defer f.Unmount()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(mnt, name))
		if err != nil {
			t.Fatalf("%s after the cut: %v", name, err)
		}
		return b
	}
	// Sizes are metadata, applied at once: the unsynced tail is zeros.
	if got := read("log"); !bytes.Equal(got, append(append([]byte{}, synced...), make([]byte, len("unsynced tail"))...)) {
		t.Errorf("log after the cut: %d bytes, want the %d synced and %d zeros", len(got), len(synced), len("unsynced tail"))
	}
	if got := read("dsync"); string(got) != "durable at once" {
		t.Errorf("O_DSYNC file after the cut: %q", got)
	}
	if got := read("mapped"); len(got) != 2*pageSize || string(got[:8]) != "page one" || got[pageSize] != 0 {
		t.Errorf("mapped file after the cut: %d bytes, %q / %q", len(got), got[:8], got[pageSize:pageSize+8])
	}
	if got := read("never-synced"); !bytes.Equal(got, make([]byte, 4)) {
		t.Errorf("never-synced file after the cut: %q, want 4 zeros (created and sized, data never synced)", got)
	}
}

// TestTruncateAndOverwrite: size changes and overwrites inside a page are
// visible at once; an overwrite is durable only after fsync.
func TestTruncateAndOverwrite(t *testing.T) {
	backing, mnt := setup(t)
	f := mounted(t, backing, mnt)
	p := filepath.Join(mnt, "f")
	w, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bytes.Repeat([]byte("x"), 3*pageSize+100))
	w.WriteAt([]byte("yy"), pageSize-1)
	if err := w.Truncate(pageSize + 10); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	if fi.Size() != pageSize+10 {
		t.Fatalf("size after truncate %d", fi.Size())
	}
	w.Sync()
	w.WriteAt([]byte("zz"), 0) // unsynced: lost at the cut
	f.Cut()
	w.Close()
	f.Unmount()
	f = mounted(t, backing, mnt)
	defer f.Unmount()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := append(bytes.Repeat([]byte("x"), pageSize-1), 'y', 'y')
	want = append(want, bytes.Repeat([]byte("x"), 9)...)
	if !bytes.Equal(got, want) {
		t.Errorf("after truncate, overwrite, sync and cut: %d bytes, want %d", len(got), len(want))
	}
}

func msync(b []byte) error {
	_, _, e := syscall.Syscall(syscall.SYS_MSYNC, uintptr(unsafePointer(b)), uintptr(len(b)), syscall.MS_SYNC)
	if e != 0 {
		return e
	}
	return nil
}
