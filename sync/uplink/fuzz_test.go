package uplink

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/edgesync/edgesync/sync/wire"
)

func blobStream(tb testing.TB, m wire.Message, raw []byte) []byte {
	var buf bytes.Buffer
	fr, err := wire.Encode(m)
	if err != nil {
		tb.Fatal(err)
	}
	if err := wire.WriteFrame(&buf, fr); err != nil {
		tb.Fatal(err)
	}
	return append(buf.Bytes(), raw...)
}

// FuzzReadBlob: the relay's side of a blob stream (answer frame, then raw
// bytes) never panics; success means the answer was a BlobInfo for the
// requested offset and exactly Size-Offset bytes, the ones after the frame,
// reached w; on failure w holds at most a prefix of them.
func FuzzReadBlob(f *testing.F) {
	f.Add(blobStream(f, wire.BlobInfo{Size: 10}, []byte("0123456789")), int64(0))
	f.Add(blobStream(f, wire.BlobInfo{Size: 10, Offset: 4}, []byte("456789")), int64(4))
	f.Add(blobStream(f, wire.BlobInfo{Size: 10, Offset: 4}, []byte("45")), int64(4))     // cut short
	f.Add(blobStream(f, wire.BlobInfo{Size: 10}, []byte("0123456789extra")), int64(0))   // trailing bytes
	f.Add(blobStream(f, wire.BlobInfo{Size: 3, Offset: 5}, nil), int64(5))               // size below offset
	f.Add(blobStream(f, wire.BlobInfo{Size: 10, Offset: 0}, []byte("456789")), int64(4)) // other offset
	f.Add(blobStream(f, wire.BlobInfo{Size: -1}, nil), int64(0))                         // negative size
	f.Add(blobStream(f, wire.Error{Code: wire.CodeBadRequest, Message: "no such blob"}, nil), int64(0))
	f.Add(blobStream(f, wire.Catalog{Version: 1}, nil), int64(0))
	f.Add([]byte{0xff, 0xff, 0xff}, int64(0))
	f.Fuzz(func(t *testing.T, stream []byte, offset int64) {
		rd := bytes.NewReader(stream)
		br := bufio.NewReader(rd)
		in, err := wire.ReadFrame(br, 0)
		if err != nil {
			return
		}
		ans, err := wire.Decode(in)
		if err != nil {
			return
		}
		rest := stream[len(stream)-rd.Len()-br.Buffered():] // what follows the answer frame
		var w bytes.Buffer
		size, err := readBlob(ans, br, offset, &w)
		if err != nil {
			if int64(w.Len()) > max(0, size-offset) || !bytes.HasPrefix(rest, w.Bytes()) {
				t.Fatalf("failed read left %d bytes in w (size %d offset %d)", w.Len(), size, offset)
			}
			if _, ok := ans.(wire.BlobInfo); !ok && !errors.Is(err, ErrProtocol) {
				t.Fatalf("non-blob answer: %v", err)
			}
			return
		}
		info := ans.(wire.BlobInfo)
		if info.Offset != offset || size != info.Size || size < offset || int64(w.Len()) != size-offset || !bytes.HasPrefix(rest, w.Bytes()) {
			t.Fatalf("accepted %+v at offset %d with %d bytes", info, offset, w.Len())
		}
	})
}
