package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/edgesync/edgesync/sync/wire"
)

// ErrNoBlob is what a Blobs implementation returns for a hash it does not hold (or that no
// package of the catalog names); the relay is told with wire.CodeBadRequest and does not retry.
var ErrNoBlob = errors.New("ingest: no such blob")

// Blobs gives read access to package blobs by SHA-256. Central implements it on its blobstore.
type Blobs interface {
	// OpenBlob opens a verified blob for site's relay node. The caller closes it.
	OpenBlob(ctx context.Context, site, node, sha256 string) (io.ReadSeekCloser, int64, error)
	// Served is told how many bytes of a blob went to a relay node, from which offset.
	Served(site, node, sha256 string, offset, n int64)
}

// blob answers one BlobRequest: a BlobInfo frame, then the raw bytes from the offset to the end,
// then the end of the stream. A relay that loses the stream asks again from what it has.
func (ss *session) blob(rw io.Writer, wc *wire.Conn, req wire.BlobRequest) error {
	b := ss.s.cfg.Blobs
	if b == nil {
		return fmt.Errorf("no blobs on this server: %w", wire.ErrUnavailable)
	}
	node := ss.certName
	f, size, err := b.OpenBlob(ss.ctx, ss.site, node, req.SHA256)
	if errors.Is(err, ErrNoBlob) {
		_, err = wc.Send(wire.Error{Code: wire.CodeBadRequest, Message: "no such blob " + req.SHA256})
		return err
	}
	if err != nil {
		_, serr := wc.Send(wire.Error{Code: wire.ErrorToCode(err), Message: err.Error()})
		return errors.Join(err, serr)
	}
	defer f.Close()
	if req.Offset < 0 || req.Offset > size {
		_, err = wc.Send(wire.Error{Code: wire.CodeBadRequest, Message: fmt.Sprintf("offset %d outside blob of %d bytes", req.Offset, size)})
		return err
	}
	if _, err := f.Seek(req.Offset, io.SeekStart); err != nil {
		return fmt.Errorf("seek blob: %w", err)
	}
	if _, err := wc.Send(wire.BlobInfo{Size: size, Offset: req.Offset}); err != nil {
		return err
	}
	// Few large writes: each stream write costs quic-go a lock and a wake-up
	// of the send loop whatever its size.
	n, err := io.CopyBuffer(rw, readerOnly{f}, make([]byte, blobWriteSize))
	b.Served(ss.site, node, req.SHA256, req.Offset, n)
	if err != nil {
		return fmt.Errorf("send blob %s at %d: %w", req.SHA256, req.Offset+n, err)
	}
	return nil
}

// blobWriteSize is the size of one stream write of blob bytes.
const blobWriteSize = 1 << 20

// readerOnly hides a file's WriterTo so io.CopyBuffer uses the buffer.
type readerOnly struct{ r io.Reader }

func (r readerOnly) Read(p []byte) (int, error) { return r.r.Read(p) }
