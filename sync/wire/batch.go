package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Batch payload layout:
//
//	[first seq u64][count u32][uncompressed length u64][one zstd frame]
//
// The zstd frame decompresses to count entries of [u32 len][bytes]. The uncompressed length is
// sent up front so the decoder never probes for another frame and can refuse oversized batches
// before decompressing.
const batchHeaderSize = 8 + 4 + 8

// noFCSMax is the largest batch we accept without a zstd frame content size.
const noFCSMax = 64 << 10

// Batch caps.
const (
	// MaxBatchBytes is the default cap on a batch's uncompressed size.
	MaxBatchBytes = 64 << 20
	// MaxBatchRecords caps the record count of a batch.
	MaxBatchRecords = 1 << 20
)

// ErrBatchTooLarge is returned for a batch over the uncompressed size or record count caps.
var ErrBatchTooLarge = errors.New("wire: batch too large")

// Codec holds one zstd encoder and decoder. It is not safe for concurrent use: keep one per
// stream direction, or use the package functions, which draw from a pool.
type Codec struct {
	max   int
	enc   *zstd.Encoder
	dec   *zstd.Decoder
	plain []byte
}

// NewCodec returns a codec that refuses batches larger than maxDecoded uncompressed bytes
// (<= 0 means MaxBatchBytes).
func NewCodec(maxDecoded int) *Codec {
	if maxDecoded <= 0 {
		maxDecoded = MaxBatchBytes
	}
	// Options are constants, so errors here are programming errors.
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1),
		zstd.WithZeroFrames(true))
	if err != nil {
		panic(fmt.Sprintf("wire: zstd encoder: %v", err))
	}
	dec, err := zstd.NewReader(nil,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderMaxMemory(uint64(maxDecoded)),
		zstd.WithDecoderMaxWindow(uint64(max(maxDecoded, zstd.MinWindowSize))))
	if err != nil {
		panic(fmt.Sprintf("wire: zstd decoder: %v", err))
	}
	return &Codec{max: maxDecoded, enc: enc, dec: dec}
}

var codecPool = sync.Pool{New: func() any { return NewCodec(MaxBatchBytes) }}

func getCodec() *Codec  { return codecPool.Get().(*Codec) }
func putCodec(c *Codec) { codecPool.Put(c) }

// EncodeBatch is Codec.EncodeBatch with a pooled codec.
func EncodeBatch(b Batch) ([]byte, error) {
	c := getCodec()
	defer putCodec(c)
	return c.EncodeBatch(b)
}

// DecodeBatch is Codec.DecodeBatch with a pooled codec (cap MaxBatchBytes).
func DecodeBatch(p []byte) (Batch, error) {
	c := getCodec()
	defer putCodec(c)
	return c.DecodeBatch(p)
}

// EncodeBatch encodes b as a Batch payload.
func (c *Codec) EncodeBatch(b Batch) ([]byte, error) {
	if len(b.Records) > MaxBatchRecords {
		return nil, fmt.Errorf("encode batch of %d records: %w", len(b.Records), ErrBatchTooLarge)
	}
	size := 0
	for _, r := range b.Records {
		size += 4 + len(r)
	}
	if size > c.max {
		return nil, fmt.Errorf("encode batch of %d bytes: %w", size, ErrBatchTooLarge)
	}
	plain := c.plain[:0]
	for _, r := range b.Records {
		plain = binary.BigEndian.AppendUint32(plain, uint32(len(r)))
		plain = append(plain, r...)
	}
	out := make([]byte, batchHeaderSize, batchHeaderSize+len(plain)/2+64)
	binary.BigEndian.PutUint64(out[0:], b.FirstSeq)
	binary.BigEndian.PutUint32(out[8:], uint32(len(b.Records)))
	binary.BigEndian.PutUint64(out[12:], uint64(len(plain)))
	out = c.enc.EncodeAll(plain, out)
	if cap(plain) <= 4<<20 { // keep a modest scratch buffer, drop huge ones
		c.plain = plain
	}
	return out, nil
}

// DecodeBatch decodes a Batch payload. Records alias one freshly allocated buffer. It validates
// the declared sizes before decompressing and never decompresses more than the codec's cap.
func (c *Codec) DecodeBatch(p []byte) (Batch, error) {
	if len(p) < batchHeaderSize {
		return Batch{}, fmt.Errorf("batch header: %w", ErrMalformed)
	}
	first := binary.BigEndian.Uint64(p[0:])
	count := binary.BigEndian.Uint32(p[8:])
	plainLen := binary.BigEndian.Uint64(p[12:])
	switch {
	case count > MaxBatchRecords:
		return Batch{}, fmt.Errorf("batch of %d records: %w", count, ErrBatchTooLarge)
	case plainLen > uint64(c.max):
		return Batch{}, fmt.Errorf("batch of %d bytes: %w", plainLen, ErrBatchTooLarge)
	case plainLen < 4*uint64(count):
		return Batch{}, fmt.Errorf("batch length %d too short for %d records: %w", plainLen, count, ErrMalformed)
	case count > 0 && first == 0:
		return Batch{}, fmt.Errorf("batch starts at sequence 0: %w", ErrMalformed)
	case count > 0 && first+uint64(count)-1 < first:
		return Batch{}, fmt.Errorf("batch sequence overflows: %w", ErrMalformed)
	}
	src := p[batchHeaderSize:]
	var plain []byte
	if plainLen > 0 || len(src) > 0 {
		var h zstd.Header
		if err := h.Decode(src); err != nil {
			return Batch{}, fmt.Errorf("batch zstd header: %w: %w", ErrMalformed, err)
		}
		// Our encoder omits the content size only for tiny inputs; the decoder's memory cap bounds
		// what a frame without one can expand to.
		if (h.HasFCS && h.FrameContentSize != plainLen) || (!h.HasFCS && plainLen > noFCSMax) {
			return Batch{}, fmt.Errorf("batch zstd content size does not match %d: %w", plainLen, ErrMalformed)
		}
		var err error
		plain, err = c.dec.DecodeAll(src, make([]byte, 0, plainLen))
		if err != nil {
			return Batch{}, fmt.Errorf("batch zstd: %w: %w", ErrMalformed, err)
		}
		if uint64(len(plain)) != plainLen {
			return Batch{}, fmt.Errorf("batch decompressed to %d bytes, want %d: %w", len(plain), plainLen, ErrMalformed)
		}
	}
	recs := make([][]byte, count)
	rest := plain
	for i := range recs {
		if len(rest) < 4 {
			return Batch{}, fmt.Errorf("batch record %d: %w", i, ErrMalformed)
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return Batch{}, fmt.Errorf("batch record %d length %d: %w", i, n, ErrMalformed)
		}
		recs[i] = rest[:n:n]
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return Batch{}, fmt.Errorf("batch has %d trailing bytes: %w", len(rest), ErrMalformed)
	}
	return Batch{FirstSeq: first, Records: recs}, nil
}
