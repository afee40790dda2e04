package uplink

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/edgesync/edgesync/sync/wire"
)

// stallTimeout ends a catalog or blob stream on which nothing arrived for this long; the caller
// retries (a blob from the offset it reached).
const stallTimeout = 30 * time.Second

// Fetcher pulls the catalog and package blobs from central. Every relay node has its own (not
// only the uplink leader): each node fills its own cache over its own mutually authenticated
// connection, so a follower needs neither the leader nor a proxy to get bytes. Over QUIC it keeps
// one connection and opens a stream per request; over TCP it dials one TLS connection per request.
type Fetcher struct {
	cfg Config
	tls *tls.Config
	log *slog.Logger

	// mu guards conn.
	mu   sync.Mutex
	conn *quic.Conn
}

// NewFetcher returns a fetcher for cfg's centrals, transport and TLS (the uplink's config).
func NewFetcher(cfg Config) (*Fetcher, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tc := cfg.TLS.Clone()
	tc.NextProtos = []string{wire.ALPN}
	tc.MinVersion = tls.VersionTLS13
	return &Fetcher{cfg: cfg, tls: tc, log: cfg.Logger.With("site", cfg.Site, "node", cfg.Node)}, nil
}

// Close closes the cached connection.
func (f *Fetcher) Close() {
	f.mu.Lock()
	c := f.conn
	f.conn = nil
	f.mu.Unlock()
	if c != nil {
		_ = c.CloseWithError(wire.CloseNoError, "")
	}
}

// stream is one request's byte stream.
type stream interface {
	io.ReadWriteCloser
	SetReadDeadline(time.Time) error
}

// stallReader extends the read deadline before every read.
type stallReader struct{ s stream }

func (r stallReader) Read(p []byte) (int, error) {
	_ = r.s.SetReadDeadline(time.Now().Add(stallTimeout))
	return r.s.Read(p)
}

func (f *Fetcher) open(ctx context.Context) (stream, error) {
	if f.cfg.Transport == TransportTCP {
		var errs []error
		for _, addr := range f.cfg.Centrals {
			dctx, cancel := context.WithTimeout(ctx, dialTimeout)
			d := tls.Dialer{NetDialer: &net.Dialer{KeepAlive: 15 * time.Second}, Config: f.tls}
			c, err := d.DialContext(dctx, "tcp", addr)
			cancel()
			if err == nil {
				return c.(*tls.Conn), nil
			}
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		}
		return nil, fmt.Errorf("dial central: %w", errors.Join(errs...))
	}
	for attempt := 0; attempt < 2; attempt++ {
		conn, err := f.quicConn(ctx)
		if err != nil {
			return nil, err
		}
		octx, cancel := context.WithTimeout(ctx, dialTimeout)
		s, err := conn.OpenStreamSync(octx)
		cancel()
		if err == nil {
			return &quicStream{s}, nil
		}
		f.drop(conn)
		if ctx.Err() != nil {
			return nil, err
		}
	}
	return nil, errors.New("open stream: connection lost twice")
}

type quicStream struct{ *quic.Stream }

// Close ends both directions so central's stream goroutine is released.
func (q *quicStream) Close() error {
	q.CancelRead(0)
	return q.Stream.Close()
}

func (f *Fetcher) quicConn(ctx context.Context) (*quic.Conn, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn != nil && f.conn.Context().Err() == nil {
		return f.conn, nil
	}
	var errs []error
	for _, addr := range f.cfg.Centrals {
		dctx, cancel := context.WithTimeout(ctx, dialTimeout)
		c, err := quic.DialAddr(dctx, addr, f.tls, quicConfig)
		cancel()
		if err == nil {
			f.conn = c
			return c, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
	}
	return nil, fmt.Errorf("dial central: %w", errors.Join(errs...))
}

func (f *Fetcher) drop(c *quic.Conn) {
	f.mu.Lock()
	if f.conn == c {
		f.conn = nil
	}
	f.mu.Unlock()
	_ = c.CloseWithError(wire.CloseNoError, "")
}

// request sends m on a new stream and returns the stream with a reader positioned after the
// answer frame, and the decoded answer. A wire.Error answer is returned as its error.
func (f *Fetcher) request(ctx context.Context, m wire.Message) (stream, *bufio.Reader, wire.Message, error) {
	s, err := f.open(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { s.Close() })
	fail := func(err error) (stream, *bufio.Reader, wire.Message, error) {
		stop()
		s.Close()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		return nil, nil, nil, wire.FromCloseError(err)
	}
	fr, err := wire.Encode(m)
	if err != nil {
		return fail(err)
	}
	if err := wire.WriteFrame(s, fr); err != nil {
		return fail(err)
	}
	br := bufio.NewReaderSize(stallReader{s}, 64<<10)
	in, err := wire.ReadFrame(br, 0)
	if err != nil {
		return fail(err)
	}
	ans, err := wire.Decode(in)
	if err != nil {
		return fail(err)
	}
	if e, ok := ans.(wire.Error); ok {
		stop()
		s.Close()
		return nil, nil, nil, e.Err()
	}
	stop()
	return s, br, ans, nil
}

// Blob copies the bytes of blob sha256 from offset to the end into w and returns the blob's
// size. On an error w holds a prefix: ask again from offset + what w got.
func (f *Fetcher) Blob(ctx context.Context, sha256 string, offset int64, w io.Writer) (int64, error) {
	s, br, ans, err := f.request(ctx, wire.BlobRequest{SHA256: sha256, Offset: offset})
	if err != nil {
		return 0, fmt.Errorf("request blob %s at %d: %w", sha256, offset, err)
	}
	defer s.Close()
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	size, err := readBlob(ans, br, offset, w)
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return size, fmt.Errorf("blob %s: %w", sha256, err)
	}
	return size, nil
}

// readBlob reads the answer to a BlobRequest at offset: a BlobInfo for that
// offset, then exactly Size-Offset raw bytes, copied to w.
func readBlob(ans wire.Message, br io.Reader, offset int64, w io.Writer) (int64, error) {
	info, ok := ans.(wire.BlobInfo)
	if !ok {
		return 0, fmt.Errorf("%s instead of blob-info: %w", ans.Type(), ErrProtocol)
	}
	if info.Offset != offset || info.Size < offset {
		return 0, fmt.Errorf("blob-info %+v answers offset %d: %w", info, offset, ErrProtocol)
	}
	want := info.Size - offset
	n, err := io.Copy(w, io.LimitReader(br, want))
	if err == nil && n < want {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return info.Size, fmt.Errorf("stream ended at %d of %d: %w", offset+n, info.Size, err)
	}
	return info.Size, nil
}
