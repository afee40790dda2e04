package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ALPN is the TLS application protocol of the link, for QUIC and for the TCP+TLS fallback.
const ALPN = "edgesync/1"

// ProtoVersion is the protocol version this build speaks; MinProtoVersion the oldest it accepts.
const (
	ProtoVersion    = 1
	MinProtoVersion = 1
)

// HeaderSize is the size of a frame header: type, flags, payload length.
const HeaderSize = 6

// MaxFrameSize is the default cap on a frame's payload.
const MaxFrameSize = 16 << 20

// smallFrame is the payload size ReadFrame allocates up front; larger payloads grow as bytes
// arrive, so a header that lies about its length cannot make us allocate the whole cap.
const smallFrame = 64 << 10

var (
	// ErrFrameTooLarge is returned for a frame whose payload exceeds the cap.
	ErrFrameTooLarge = errors.New("wire: frame too large")
	// ErrMalformed is returned for a payload that does not decode.
	ErrMalformed = errors.New("wire: malformed message")
	// ErrUnknownType is returned by Decode for a frame type this version does not know.
	ErrUnknownType = errors.New("wire: unknown frame type")
)

// Type is a frame type.
type Type uint8

// Frame types. Values are stable.
const (
	TypeHello    Type = 1
	TypeHelloAck Type = 2
	TypeBatch    Type = 3
	TypeAck      Type = 4
	TypeStatus   Type = 5
	TypePing     Type = 6
	TypePong     Type = 7
	TypeError    Type = 8
)

func (t Type) String() string {
	switch t {
	case TypeHello:
		return "hello"
	case TypeHelloAck:
		return "hello-ack"
	case TypeBatch:
		return "batch"
	case TypeAck:
		return "ack"
	case TypeStatus:
		return "status"
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeError:
		return "error"
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// Frame is one unit on a stream. Flags are reserved and must be zero in this version; readers
// ignore bits they do not know.
type Frame struct {
	Type    Type
	Flags   uint8
	Payload []byte
}

// WriteFrame writes f to w in one Write call.
func WriteFrame(w io.Writer, f Frame) error {
	if len(f.Payload) > MaxFrameSize {
		return fmt.Errorf("write %s frame of %d bytes: %w", f.Type, len(f.Payload), ErrFrameTooLarge)
	}
	buf := make([]byte, HeaderSize+len(f.Payload))
	buf[0] = byte(f.Type)
	buf[1] = f.Flags
	binary.BigEndian.PutUint32(buf[2:], uint32(len(f.Payload)))
	copy(buf[HeaderSize:], f.Payload)
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame whose payload is at most max bytes (max <= 0 means MaxFrameSize). It
// returns io.EOF only on a clean end before the header.
func ReadFrame(r io.Reader, max int) (Frame, error) {
	if max <= 0 || max > MaxFrameSize {
		max = MaxFrameSize
	}
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	f := Frame{Type: Type(hdr[0]), Flags: hdr[1]}
	n := binary.BigEndian.Uint32(hdr[2:])
	if uint64(n) > uint64(max) {
		return Frame{}, fmt.Errorf("read %s frame of %d bytes (max %d): %w", f.Type, n, max, ErrFrameTooLarge)
	}
	if n <= smallFrame {
		f.Payload = make([]byte, n)
		if _, err := io.ReadFull(r, f.Payload); err != nil {
			return Frame{}, unexpected(err)
		}
		return f, nil
	}
	var b bytes.Buffer
	b.Grow(smallFrame)
	got, err := b.ReadFrom(io.LimitReader(r, int64(n)))
	if err != nil {
		return Frame{}, err
	}
	if got != int64(n) {
		return Frame{}, io.ErrUnexpectedEOF
	}
	f.Payload = b.Bytes()
	return f, nil
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
