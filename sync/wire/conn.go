package wire

import (
	"bufio"
	"fmt"
	"io"
	"sync"
	"time"
)

// Conn sends and receives messages on one ordered byte stream (a QUIC stream or a TLS
// connection). Send is safe for concurrent use; Recv must be called from one goroutine.
type Conn struct {
	rw           io.ReadWriter
	r            *bufio.Reader
	maxFrame     int
	writeTimeout time.Duration

	// wmu serialises Send: it guards wenc and writes to rw.
	wmu  sync.Mutex
	wenc *Codec

	rdec *Codec // used only by Recv's goroutine
}

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// NewConn wraps rw. maxFrame <= 0 means MaxFrameSize. When writeTimeout > 0 and rw has
// SetWriteDeadline, each Send must finish within writeTimeout.
func NewConn(rw io.ReadWriter, maxFrame int, writeTimeout time.Duration) *Conn {
	return &Conn{
		rw:           rw,
		r:            bufio.NewReaderSize(rw, 64<<10),
		maxFrame:     maxFrame,
		writeTimeout: writeTimeout,
		wenc:         NewCodec(MaxBatchBytes),
		rdec:         NewCodec(MaxBatchBytes),
	}
}

// Send encodes and writes m, returning the frame size on the wire.
func (c *Conn) Send(m Message) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	f, err := c.wenc.Encode(m)
	if err != nil {
		return 0, err
	}
	return HeaderSize + len(f.Payload), c.writeLocked(f)
}

// Encode encodes m with the connection's send codec, for callers that need the size before
// writing (rate limiting). Write the result with WriteFrame.
func (c *Conn) Encode(m Message) (Frame, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.wenc.Encode(m)
}

// WriteFrame writes one encoded frame under the send lock.
func (c *Conn) WriteFrame(f Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.writeLocked(f)
}

func (c *Conn) writeLocked(f Frame) error {
	if d, ok := c.rw.(writeDeadliner); ok && c.writeTimeout > 0 {
		_ = d.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		defer func() { _ = d.SetWriteDeadline(time.Time{}) }()
	}
	if err := WriteFrame(c.rw, f); err != nil {
		return fmt.Errorf("write %s: %w", f.Type, err)
	}
	return nil
}

// Recv reads and decodes the next message.
func (c *Conn) Recv() (Message, error) {
	f, err := ReadFrame(c.r, c.maxFrame)
	if err != nil {
		return nil, err
	}
	return c.rdec.Decode(f)
}
