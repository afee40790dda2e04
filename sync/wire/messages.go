package wire

import (
	"encoding/json"
	"fmt"
	"time"
)

// Message is a decoded frame payload.
type Message interface {
	Type() Type
}

// OutboxStats describes a relay's outbox.
type OutboxStats struct {
	Depth         uint64    `json:"depth"`
	Bytes         uint64    `json:"bytes"`
	AckedSeq      uint64    `json:"ackedSeq"`
	NextSeq       uint64    `json:"nextSeq"`
	OldestUnacked time.Time `json:"oldestUnacked,omitzero"`
}

// Hello opens the control stream (relay → central).
type Hello struct {
	ProtoVersion   int         `json:"protoVersion"`
	Site           string      `json:"site"`
	Node           string      `json:"node"`
	Version        string      `json:"version"`
	CatalogVersion uint64      `json:"catalogVersion"`
	Outbox         OutboxStats `json:"outbox"`
}

// HelloAck answers Hello with the central's cursor for the site (central → relay).
type HelloAck struct {
	Cursor          uint64 `json:"cursor"`
	ServerVersion   string `json:"serverVersion"`
	PaceBytesPerSec int64  `json:"paceBytesPerSec,omitempty"`
}

// Batch carries records with consecutive site sequences starting at FirstSeq (relay → central).
type Batch struct {
	FirstSeq uint64
	Records  [][]byte
}

// LastSeq is the sequence of the last record, or FirstSeq-1 for an empty batch.
func (b Batch) LastSeq() uint64 { return b.FirstSeq + uint64(len(b.Records)) - 1 }

// Ack answers one Batch, in order: Upto is the central's cursor after the batch (central → relay).
type Ack struct {
	Upto    uint64 `json:"upto"`
	Code    Code   `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// Status reports outbox stats periodically (relay → central).
type Status struct {
	OutboxStats
}

// Ping asks for a Pong with the same nonce.
type Ping struct {
	Nonce uint64 `json:"nonce"`
}

// Pong answers Ping.
type Pong struct {
	Nonce uint64 `json:"nonce"`
}

// Error reports a fatal error on a stream; the sender closes afterwards.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message,omitempty"`
}

// Err converts the message to an error (nil for CodeOK).
func (e Error) Err() error { return CodeToError(e.Code, e.Message) }

func (Hello) Type() Type    { return TypeHello }
func (HelloAck) Type() Type { return TypeHelloAck }
func (Batch) Type() Type    { return TypeBatch }
func (Ack) Type() Type      { return TypeAck }
func (Status) Type() Type   { return TypeStatus }
func (Ping) Type() Type     { return TypePing }
func (Pong) Type() Type     { return TypePong }
func (Error) Type() Type    { return TypeError }

// Encode turns a message into a frame, using c for batches.
func (c *Codec) Encode(m Message) (Frame, error) {
	if b, ok := m.(Batch); ok {
		p, err := c.EncodeBatch(b)
		if err != nil {
			return Frame{}, err
		}
		return Frame{Type: TypeBatch, Payload: p}, nil
	}
	p, err := json.Marshal(m)
	if err != nil {
		return Frame{}, fmt.Errorf("encode %s: %w", m.Type(), err)
	}
	return Frame{Type: m.Type(), Payload: p}, nil
}

// Decode turns a frame into a message, using c for batches.
func (c *Codec) Decode(f Frame) (Message, error) {
	var m Message
	var err error
	switch f.Type {
	case TypeBatch:
		return c.DecodeBatch(f.Payload)
	case TypeHello:
		m, err = decodeJSON[Hello](f.Payload)
	case TypeHelloAck:
		m, err = decodeJSON[HelloAck](f.Payload)
	case TypeAck:
		m, err = decodeJSON[Ack](f.Payload)
	case TypeStatus:
		m, err = decodeJSON[Status](f.Payload)
	case TypePing:
		m, err = decodeJSON[Ping](f.Payload)
	case TypePong:
		m, err = decodeJSON[Pong](f.Payload)
	case TypeError:
		m, err = decodeJSON[Error](f.Payload)
	default:
		if m, ok, err := decodeDistribution(f); ok {
			return m, err
		}
		return nil, fmt.Errorf("decode %s: %w", f.Type, ErrUnknownType)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w: %w", f.Type, ErrMalformed, err)
	}
	return m, nil
}

func decodeJSON[T any](p []byte) (T, error) {
	var v T
	err := json.Unmarshal(p, &v)
	return v, err
}

// Encode is Codec.Encode with a pooled codec.
func Encode(m Message) (Frame, error) {
	c := getCodec()
	defer putCodec(c)
	return c.Encode(m)
}

// Decode is Codec.Decode with a pooled codec.
func Decode(f Frame) (Message, error) {
	c := getCodec()
	defer putCodec(c)
	return c.Decode(f)
}
