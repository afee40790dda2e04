package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func frameBytes(t Type, flags uint8, payload []byte) []byte {
	var b bytes.Buffer
	if err := WriteFrame(&b, Frame{Type: t, Flags: flags, Payload: payload}); err != nil {
		panic(err)
	}
	return b.Bytes()
}

var readFrameTests = []struct {
	name    string
	in      []byte
	max     int
	want    Frame
	wantErr error
}{
	{"ping", frameBytes(TypePing, 0, []byte(`{"nonce":1}`)), 0, Frame{Type: TypePing, Payload: []byte(`{"nonce":1}`)}, nil},
	{"empty payload", frameBytes(TypePong, 3, nil), 0, Frame{Type: TypePong, Flags: 3, Payload: []byte{}}, nil},
	{"clean eof", nil, 0, Frame{}, io.EOF},
	{"short header", []byte{1, 0, 0}, 0, Frame{}, io.ErrUnexpectedEOF},
	{"short payload", []byte{1, 0, 0, 0, 0, 5, 'a'}, 0, Frame{}, io.ErrUnexpectedEOF},
	{"over max", frameBytes(TypeHello, 0, make([]byte, 100)), 99, Frame{}, ErrFrameTooLarge},
	{"over default max", []byte{3, 0, 0xff, 0xff, 0xff, 0xff}, 0, Frame{}, ErrFrameTooLarge},
	{"large claim short body", append([]byte{3, 0, 0, 0x80, 0, 0}, make([]byte, 100)...), 0, Frame{}, io.ErrUnexpectedEOF},
	{"large ok", frameBytes(TypeBatch, 0, bytes.Repeat([]byte{7}, 70<<10)), 0, Frame{Type: TypeBatch, Payload: bytes.Repeat([]byte{7}, 70<<10)}, nil},
}

func TestReadFrame(t *testing.T) {
	for _, tt := range readFrameTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ReadFrame(bytes.NewReader(tt.in), tt.max)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ReadFrame() err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && (got.Type != tt.want.Type || got.Flags != tt.want.Flags || !bytes.Equal(got.Payload, tt.want.Payload)) {
				t.Fatalf("ReadFrame() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestWriteFrame_TooLarge(t *testing.T) {
	err := WriteFrame(io.Discard, Frame{Type: TypeBatch, Payload: make([]byte, MaxFrameSize+1)})
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("WriteFrame() = %v, want ErrFrameTooLarge", err)
	}
}

func TestMessages_RoundTrip(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		msg  Message
	}{
		{"hello", Hello{ProtoVersion: 1, Site: "s1", Node: "r1", Version: "v1", CatalogVersion: 9,
			Outbox: OutboxStats{Depth: 3, Bytes: 100, AckedSeq: 7, NextSeq: 11, OldestUnacked: now}}},
		{"hello-ack", HelloAck{Cursor: 42, ServerVersion: "v2", PaceBytesPerSec: 1000}},
		{"batch", Batch{FirstSeq: 5, Records: [][]byte{[]byte("a"), {}, []byte("ccc")}}},
		{"empty batch", Batch{FirstSeq: 5, Records: [][]byte{}}},
		{"ack", Ack{Upto: 9, Code: CodeGap, Message: "gap"}},
		{"status", Status{OutboxStats{Depth: 1}}},
		{"ping", Ping{Nonce: 1}},
		{"pong", Pong{Nonce: 2}},
		{"error", Error{Code: CodeSiteMismatch, Message: "no"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Encode(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := WriteFrame(&buf, f); err != nil {
				t.Fatal(err)
			}
			f2, err := ReadFrame(&buf, 0)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(f2)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.msg) {
				t.Fatalf("round trip = %#v, want %#v", got, tt.msg)
			}
		})
	}
}

func TestDecode_Errors(t *testing.T) {
	if _, err := Decode(Frame{Type: 99}); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown type err = %v", err)
	}
	if _, err := Decode(Frame{Type: TypeHello, Payload: []byte("{")}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("bad json err = %v", err)
	}
}

func mustBatch(b Batch) []byte {
	p, err := EncodeBatch(b)
	if err != nil {
		panic(err)
	}
	return p
}

func withHeader(first uint64, count uint32, plainLen uint64, rest []byte) []byte {
	p := make([]byte, batchHeaderSize)
	binary.BigEndian.PutUint64(p, first)
	binary.BigEndian.PutUint32(p[8:], count)
	binary.BigEndian.PutUint64(p[12:], plainLen)
	return append(p, rest...)
}

func zstdOf(plain []byte) []byte {
	c := NewCodec(0)
	return c.enc.EncodeAll(plain, nil)
}

var decodeBatchTests = []struct {
	name    string
	in      []byte
	want    Batch
	wantErr error
}{
	{"ok", mustBatch(Batch{FirstSeq: 1, Records: [][]byte{[]byte("x"), []byte("yy")}}), Batch{FirstSeq: 1, Records: [][]byte{[]byte("x"), []byte("yy")}}, nil},
	{"large", mustBatch(Batch{FirstSeq: 7, Records: [][]byte{bytes.Repeat([]byte("ab"), 100000)}}), Batch{FirstSeq: 7, Records: [][]byte{bytes.Repeat([]byte("ab"), 100000)}}, nil},
	{"short header", []byte{1, 2, 3}, Batch{}, ErrMalformed},
	{"too many records", withHeader(1, MaxBatchRecords+1, 1<<30, nil), Batch{}, ErrBatchTooLarge},
	{"too many bytes", withHeader(1, 1, MaxBatchBytes+1, nil), Batch{}, ErrBatchTooLarge},
	{"length below count", withHeader(1, 10, 39, nil), Batch{}, ErrMalformed},
	{"seq zero", withHeader(0, 1, 4, zstdOf([]byte{0, 0, 0, 0})), Batch{}, ErrMalformed},
	{"seq overflow", withHeader(^uint64(0), 2, 8, zstdOf(make([]byte, 8))), Batch{}, ErrMalformed},
	{"not zstd", withHeader(1, 1, 5, []byte("hello")), Batch{}, ErrMalformed},
	{"content size lie", withHeader(1, 1, 6, zstdOf([]byte{0, 0, 0, 1, 'a'})), Batch{}, ErrMalformed},
	{"record overruns", withHeader(1, 1, 5, zstdOf([]byte{0, 0, 0, 9, 'a'})), Batch{}, ErrMalformed},
	{"trailing bytes", withHeader(1, 1, 6, zstdOf([]byte{0, 0, 0, 1, 'a', 'b'})), Batch{}, ErrMalformed},
	{"truncated zstd", func() []byte {
		p := mustBatch(Batch{FirstSeq: 1, Records: [][]byte{[]byte("hello world")}})
		return p[:len(p)-3]
	}(), Batch{}, ErrMalformed},
}

func TestDecodeBatch(t *testing.T) {
	for _, tt := range decodeBatchTests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeBatch(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("DecodeBatch() err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DecodeBatch() = %v records from %d, want %v from %d", len(got.Records), got.FirstSeq, len(tt.want.Records), tt.want.FirstSeq)
			}
		})
	}
}

func TestCodec_CapsEncode(t *testing.T) {
	c := NewCodec(100)
	if _, err := c.EncodeBatch(Batch{FirstSeq: 1, Records: [][]byte{make([]byte, 200)}}); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("EncodeBatch() over cap = %v", err)
	}
	p := mustBatch(Batch{FirstSeq: 1, Records: [][]byte{make([]byte, 200)}})
	if _, err := c.DecodeBatch(p); !errors.Is(err, ErrBatchTooLarge) {
		t.Fatalf("DecodeBatch() over cap = %v", err)
	}
}

func TestCodes_RoundTrip(t *testing.T) {
	for c := range codeNames {
		t.Run(c.String(), func(t *testing.T) {
			err := CodeToError(c, "msg")
			if c == CodeOK {
				if err != nil {
					t.Fatalf("CodeToError(OK) = %v", err)
				}
				return
			}
			if got := ErrorToCode(err); got != c {
				t.Fatalf("ErrorToCode(CodeToError(%v)) = %v", c, got)
			}
			if !errors.Is(err, codeErrors[c]) {
				t.Fatalf("CodeToError(%v) is not its sentinel", c)
			}
			if got := ErrorToCode(fmt.Errorf("wrapped: %w", codeErrors[c])); got != c {
				t.Fatalf("ErrorToCode(wrapped sentinel %v) = %v", c, got)
			}
		})
	}
	for _, tt := range []struct {
		err  error
		want Code
	}{
		{nil, CodeOK},
		{errors.New("boom"), CodeInternal},
		{ErrFrameTooLarge, CodeTooLarge},
		{fmt.Errorf("x: %w", ErrMalformed), CodeBadRequest},
	} {
		if got := ErrorToCode(tt.err); got != tt.want {
			t.Errorf("ErrorToCode(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
	if !strings.Contains(Code(999).String(), "999") {
		t.Fatal("unknown code string")
	}
}

func TestConn_PipeRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	c := NewConn(&buf, 0, time.Second)
	msgs := []Message{Hello{Site: "s"}, Batch{FirstSeq: 1, Records: [][]byte{[]byte("r")}}, Ack{Upto: 1}}
	for _, m := range msgs {
		if _, err := c.Send(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range msgs {
		got, err := c.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Recv() = %#v, want %#v", got, want)
		}
	}
}

func FuzzReadFrame(f *testing.F) {
	for _, tt := range readFrameTests {
		f.Add(tt.in, tt.max)
	}
	f.Fuzz(func(t *testing.T, in []byte, max int) {
		if max > 1<<20 || max <= 0 {
			max = 1 << 20
		}
		fr, err := ReadFrame(bytes.NewReader(in), max)
		if err == nil && len(fr.Payload) > max {
			t.Fatalf("payload %d over max %d", len(fr.Payload), max)
		}
		if err == nil {
			_, _ = Decode(fr)
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	for _, tt := range decodeBatchTests {
		f.Add(tt.in)
	}
	const limit = 1 << 20
	c := NewCodec(limit)
	f.Fuzz(func(t *testing.T, in []byte) {
		b, err := c.DecodeBatch(in)
		if err != nil {
			return
		}
		total := 0
		for _, r := range b.Records {
			total += 4 + len(r)
		}
		if total > limit {
			t.Fatalf("decoded %d bytes over cap %d", total, limit)
		}
		// A decoded batch re-encodes to the same records.
		p, err := c.EncodeBatch(b)
		if err != nil {
			t.Fatal(err)
		}
		b2, err := c.DecodeBatch(p)
		if err != nil || !reflect.DeepEqual(b, b2) {
			t.Fatalf("re-encode round trip failed: %v", err)
		}
	})
}
