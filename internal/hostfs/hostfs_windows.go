//go:build windows

package hostfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows"
)

// TryLock takes an exclusive lock on the first byte of f without waiting.
// Windows drops it when the handle closes or the process dies. It returns
// ErrLocked when another process holds it.
func TryLock(f *os.File) error {
	ol := new(windows.Overlapped)
	err := windows.LockFileEx(windows.Handle(f.Fd()),
		windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return ErrLocked
	}
	return err
}

// Unlock releases a lock taken by TryLock.
func Unlock(f *os.File) error {
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, new(windows.Overlapped))
}

// DirInUse reports whether a running process holds Badger's directory lock.
// On Windows Badger keeps dir\LOCK open with no sharing, so opening it for
// writing fails while the DB is open.
func DirInUse(dir string) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR, 0)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case errors.Is(err, windows.ERROR_SHARING_VIOLATION):
		return true, nil
	case err != nil:
		return false, err
	}
	return false, f.Close()
}

// FreeBytes reports the space available to the caller on the volume that
// holds dir.
func FreeBytes(dir string) (uint64, error) {
	p, err := windows.UTF16PtrFromString(dir)
	if err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	var avail, total, free uint64
	if err := windows.GetDiskFreeSpaceEx(p, &avail, &total, &free); err != nil {
		return 0, fmt.Errorf("free space of %s: %w", dir, err)
	}
	return avail, nil
}

// HardLinked reports whether the file has more than one name. Go's
// FileInfo on Windows does not carry the link count, and FAT32/exFAT media
// (what USB sticks use) cannot hold hard links at all.
func HardLinked(fs.FileInfo) bool { return false }

// SyncDir is a no-op on Windows: NTFS and FAT journal or flush directory
// entries with the file, and FlushFileBuffers on a directory handle is
// refused with access denied.
func SyncDir(string) error { return nil }
