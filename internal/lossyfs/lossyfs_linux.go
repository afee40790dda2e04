package lossyfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

const pageSize = 4096

// FS is one mount of a backing directory.
type FS struct {
	backing, mnt string
	srv          *fuse.Server
	dead         atomic.Bool
	mu           sync.Mutex
	nodes        map[*node]struct{} // every node holding unsynced data
	dropped      atomic.Int64       // unsynced bytes discarded by Cut
}

// Mount serves backing at mnt (both must exist). It needs root and /dev/fuse.
func Mount(backing, mnt string) (*FS, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, fmt.Errorf("lossyfs: backing dir: %w", err)
	}
	f := &FS{backing: backing, mnt: mnt, nodes: map[*node]struct{}{}}
	root := &fs.LoopbackRoot{Path: backing, Dev: uint64(st.Dev)}
	root.NewNode = func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
		return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, fs: f}
	}
	root.RootNode = root.NewNode(root, nil, "", &st)
	// Short attribute timeouts: the kernel asks for sizes, which only the
	// overlay knows.
	timeout := 100 * time.Millisecond
	srv, err := fs.Mount(mnt, root.RootNode, &fs.Options{
		EntryTimeout: &timeout, AttrTimeout: &timeout,
		MountOptions: fuse.MountOptions{Debug: os.Getenv("LOSSYFS_DEBUG") != "", DirectMount: true, FsName: "lossyfs", Name: "lossyfs", MaxBackground: 64},
	})
	if err != nil {
		return nil, fmt.Errorf("lossyfs: mount %s: %w", mnt, err)
	}
	f.srv = srv
	return f, nil
}

// Cut is the power going off: the mount is aborted (every later system
// call on it fails, the kernel's dirty pages for it are discarded) and the
// unsynced data is dropped. The caller then SIGKILLs the processes that
// used it and calls Unmount.
func (f *FS) Cut() {
	f.dead.Store(true)
	// MNT_FORCE on a FUSE mount aborts the connection (fuse_umount_begin);
	// the unmount itself may then fail while files are open: Unmount ends it.
	_ = syscall.Unmount(f.mnt, syscall.MNT_FORCE)
	// Lock order is n.mu then f.mu (a write registers its node): take the
	// set under f.mu, then each node alone.
	f.mu.Lock()
	nodes := make([]*node, 0, len(f.nodes))
	for n := range f.nodes {
		nodes = append(nodes, n)
	}
	clear(f.nodes)
	f.mu.Unlock()
	for _, n := range nodes {
		n.mu.Lock()
		f.dropped.Add(int64(len(n.pages)) * pageSize)
		n.reset()
		n.mu.Unlock()
	}
}

// Dropped is how many bytes of unsynced data Cut discarded (whole pages).
func (f *FS) Dropped() int64 { return f.dropped.Load() }

// Unmount detaches the mount and waits for the server to stop.
func (f *FS) Unmount() error {
	err := f.srv.Unmount()
	if err != nil {
		err = syscall.Unmount(f.mnt, syscall.MNT_DETACH)
	}
	if errors.Is(err, syscall.EINVAL) {
		err = nil // not mounted any more: Cut's abort already ended it
	}
	f.srv.Wait()
	if err != nil {
		return fmt.Errorf("lossyfs: unmount %s: %w", f.mnt, err)
	}
	return nil
}

// Available says whether this machine can mount FUSE here, and if not why.
func Available(dir string) error {
	if os.Geteuid() != 0 {
		return errors.New("lossyfs needs root to mount FUSE without fusermount")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		return fmt.Errorf("no /dev/fuse: %w", err)
	}
	b, m := filepath.Join(dir, "probe-b"), filepath.Join(dir, "probe-m")
	if err := errors.Join(os.MkdirAll(b, 0o700), os.MkdirAll(m, 0o700)); err != nil {
		return err
	}
	defer os.RemoveAll(b)
	defer os.RemoveAll(m)
	f, err := Mount(b, m)
	if err != nil {
		return err
	}
	return f.Unmount()
}

// node is a file or directory; for a file it holds the pages written since
// its last fsync and its size as programs see it.
type node struct {
	fs.LoopbackNode
	fs    *FS
	mu    sync.Mutex
	back  *os.File         // the backing file, opened on first use
	pages map[int64][]byte // page number → content, unsynced
	size  int64            // size as seen through the mount, valid when sized
	sized bool
}

func (n *node) path() string {
	return filepath.Join(n.RootData.Path, n.Path(n.RootData.RootNode.EmbeddedInode()))
}

// reset forgets the unsynced state (n.mu held).
func (n *node) reset() {
	n.pages, n.sized = nil, false
	if n.back != nil {
		n.back.Close()
		n.back = nil
	}
}

// load makes the overlay state valid (n.mu held).
func (n *node) load() syscall.Errno {
	if n.back == nil {
		f, err := os.OpenFile(n.path(), os.O_RDWR, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		n.back = f
	}
	if !n.sized {
		fi, err := n.back.Stat()
		if err != nil {
			return fs.ToErrno(err)
		}
		n.size, n.sized = fi.Size(), true
	}
	return 0
}

// page returns page p for writing, read from the backing file if clean.
func (n *node) page(p int64) ([]byte, syscall.Errno) {
	if b, ok := n.pages[p]; ok {
		return b, 0
	}
	b := make([]byte, pageSize)
	if _, err := n.back.ReadAt(b, p*pageSize); err != nil && !errors.Is(err, io.EOF) {
		return nil, fs.ToErrno(err)
	}
	if n.pages == nil {
		n.pages = map[int64][]byte{}
		n.fs.mu.Lock()
		n.fs.nodes[n] = struct{}{}
		n.fs.mu.Unlock()
	}
	n.pages[p] = b
	return b, 0
}

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	if n.fs.dead.Load() {
		return nil, 0, syscall.EIO
	}
	if flags&syscall.O_TRUNC != 0 {
		n.mu.Lock()
		n.pages, n.size, n.sized = nil, 0, true
		n.mu.Unlock()
	}
	fh, ff, errno := n.LoopbackNode.Open(ctx, flags)
	return wrap(fh, flags), ff, errno
}

func (n *node) Create(ctx context.Context, name string, flags, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	if n.fs.dead.Load() {
		return nil, nil, 0, syscall.EIO
	}
	ch, fh, ff, errno := n.LoopbackNode.Create(ctx, name, flags, mode, out)
	return ch, wrap(fh, flags), ff, errno
}

// handle is an open file. It hides the loopback file's passthrough fd, or
// the kernel would read and write the backing file directly, around the
// overlay; sync marks O_SYNC and O_DSYNC, whose writes are durable when
// they return.
type handle struct {
	lf   fs.FileHandle
	sync bool
}

func wrap(fh fs.FileHandle, flags uint32) fs.FileHandle {
	if fh == nil {
		return nil
	}
	return &handle{lf: fh, sync: flags&(syscall.O_SYNC|syscall.O_DSYNC) != 0}
}

// Release closes the backing file's descriptor.
func (h *handle) Release(ctx context.Context) syscall.Errno {
	if r, ok := h.lf.(fs.FileReleaser); ok {
		return r.Release(ctx)
	}
	return 0
}

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	if n.fs.dead.Load() {
		return syscall.EIO
	}
	if h, ok := f.(*handle); ok {
		f = h.lf
	}
	// Sizes reach the backing file at once (resize), so its attributes are
	// the mount's.
	return n.LoopbackNode.Getattr(ctx, f, out)
}

func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if n.fs.dead.Load() {
		return syscall.EIO
	}
	if h, ok := f.(*handle); ok {
		f = h.lf
	}
	if size, ok := in.GetSize(); ok {
		n.mu.Lock()
		errno := n.truncate(int64(size))
		n.mu.Unlock()
		if errno != 0 {
			return errno
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	if errno := n.LoopbackNode.Setattr(ctx, f, in, out); errno != 0 {
		return errno
	}
	return n.Getattr(ctx, f, out)
}

// truncate changes the size; pages past it are dropped.
func (n *node) truncate(size int64) syscall.Errno {
	if errno := n.load(); errno != 0 {
		return errno
	}
	last := (size + pageSize - 1) / pageSize
	for p := range n.pages {
		if p >= last {
			delete(n.pages, p)
		}
	}
	if off := size % pageSize; off != 0 && size < n.size {
		b, errno := n.page(size / pageSize)
		if errno != 0 {
			return errno
		}
		clear(b[off:])
	}
	return n.resize(size)
}

// resize sets the size, in the backing file too: sizes are metadata, and
// the kernel learns them from the backing directory as well (a directory
// listing's attributes), so the two must never disagree (n.mu held).
func (n *node) resize(size int64) syscall.Errno {
	if err := n.back.Truncate(size); err != nil {
		return fs.ToErrno(err)
	}
	n.size = size
	return 0
}

func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if n.fs.dead.Load() {
		return nil, syscall.EIO
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if errno := n.load(); errno != 0 {
		return nil, errno
	}
	if off >= n.size {
		return fuse.ReadResultData(nil), 0
	}
	dest = dest[:min(int64(len(dest)), n.size-off)]
	for done := 0; done < len(dest); {
		at := off + int64(done)
		p, in := at/pageSize, int(at%pageSize)
		chunk := dest[done:min(len(dest), done+pageSize-in)]
		if b, ok := n.pages[p]; ok {
			copy(chunk, b[in:])
		} else {
			m, err := n.back.ReadAt(chunk, at)
			if err != nil && !errors.Is(err, io.EOF) {
				return nil, fs.ToErrno(err)
			}
			clear(chunk[m:]) // past the backing file's end: a hole
		}
		done += len(chunk)
	}
	return fuse.ReadResultData(dest), 0
}

func (n *node) Write(ctx context.Context, f fs.FileHandle, data []byte, off int64) (uint32, syscall.Errno) {
	if n.fs.dead.Load() {
		return 0, syscall.EIO
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if errno := n.load(); errno != 0 {
		return 0, errno
	}
	for done := 0; done < len(data); {
		at := off + int64(done)
		p, in := at/pageSize, int(at%pageSize)
		b, errno := n.page(p)
		if errno != 0 {
			return uint32(done), errno
		}
		done += copy(b[in:], data[done:])
	}
	if end := off + int64(len(data)); end > n.size {
		if errno := n.resize(end); errno != 0 {
			return 0, errno
		}
	}
	if h, ok := f.(*handle); ok && h.sync {
		if errno := n.flush(); errno != 0 {
			return 0, errno
		}
	}
	return uint32(len(data)), 0
}

func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	if n.fs.dead.Load() {
		return syscall.EIO
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.IsDir() {
		if errno := n.load(); errno != 0 {
			return errno
		}
		return n.flush()
	}
	return 0 // metadata is applied at once: a directory has nothing unsynced
}

// flush makes the overlay durable in the backing file (n.mu held).
func (n *node) flush() syscall.Errno {
	for p, b := range n.pages {
		b = b[:max(0, min(int64(pageSize), n.size-p*pageSize))]
		if _, err := n.back.WriteAt(b, p*pageSize); err != nil {
			return fs.ToErrno(err)
		}
	}
	if err := n.back.Truncate(n.size); err != nil {
		return fs.ToErrno(err)
	}
	if err := n.back.Sync(); err != nil {
		return fs.ToErrno(err)
	}
	n.pages = nil
	n.fs.mu.Lock()
	delete(n.fs.nodes, n)
	n.fs.mu.Unlock()
	return 0
}
