// Package lossyfs is a FUSE file system for power-loss tests (Linux, root).
// It passes a directory through, except that file data written and not yet
// fsynced lives only in memory: Cut aborts the mount the way power loss
// stops a disk, and whatever was not synced is gone, as it is from a disk's
// volatile cache. Mount the same backing directory again and a program sees
// what a machine sees after the power comes back.
//
// The model is the common reading of POSIX durability: data reaches the
// backing directory only through fsync (or O_SYNC/O_DSYNC writes), while
// metadata (create, rename, unlink, mkdir, file sizes) is applied at once.
// So a file appended to and not synced comes back from a cut at its new
// length with zeros where the data was, as XFS and ext4 with delayed
// allocation can leave it, and a file renamed before its data was synced
// comes back zero-filled. Programs must find such tails by checksum.
package lossyfs
