// Package blobstore is a content-addressed file store: every blob is a file
// named by the SHA-256 of its bytes. Central keeps package blobs in one, each
// relay node its package cache.
//
// Guarantees: a blob becomes visible only complete and verified (written to a
// temporary file, hashed, fsynced, renamed, directory fsynced); a partial
// download stays in tmp/ and can be resumed from its length; a blob whose
// file changed on disk since it was last verified (size or mtime differ) is
// hashed again before Open returns it, and a blob that fails the check is
// removed and reported as ErrCorrupt, never served.
package blobstore
