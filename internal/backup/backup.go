package backup

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/klauspost/compress/zstd"
)

// Format constants, shared with internal/raftnode/snapshot.go.
const (
	Magic         = "ESRS"
	FormatVersion = 1
	headerLen     = 4 + 1 + 8
	maxKey        = 65000
	maxValue      = 64 << 20
)

// appliedKey is raftnode's reserved key holding the applied index.
var appliedKey = []byte{0x00, 'a'}

// ErrNewerFormat is returned for a backup written by a newer edgesync.
var ErrNewerFormat = errors.New("backup: written in a newer format than this edgesync understands")

// ErrBadBackup marks a damaged or truncated backup.
var ErrBadBackup = errors.New("backup: damaged")

// Info describes a backup.
type Info struct {
	Index   uint64         `json:"index"`   // applied Raft index it was taken at
	Records uint64         `json:"records"` // key/value records
	Bytes   uint64         `json:"bytes"`   // uncompressed key+value bytes
	ByKind  map[string]int `json:"by_kind"` // records per key prefix ("d/" devices, "e/" events, ...)
}

// Viewer is a read transaction source (raftnode.Node).
type Viewer interface {
	View(fn func(txn *badger.Txn) error) error
}

// Write streams everything txn sees, with its applied index, to w.
func Write(w io.Writer, txn *badger.Txn) (Info, error) {
	info := Info{ByKind: map[string]int{}}
	item, err := txn.Get(appliedKey)
	if err == nil {
		err = item.Value(func(v []byte) error {
			if len(v) == 8 {
				info.Index = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	}
	if err != nil && !errors.Is(err, badger.ErrKeyNotFound) {
		return info, fmt.Errorf("backup: read applied index: %w", err)
	}
	var hdr [headerLen]byte
	copy(hdr[:], Magic)
	hdr[4] = FormatVersion
	binary.BigEndian.PutUint64(hdr[5:], info.Index)
	if _, err := w.Write(hdr[:]); err != nil {
		return info, err
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	if err != nil {
		return info, err
	}
	bw := bufio.NewWriterSize(enc, 64<<10)
	var lenBuf [binary.MaxVarintLen64]byte
	put := func(b []byte) error {
		k := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := bw.Write(lenBuf[:k]); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	it := txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16})
	err = func() error {
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := put(item.Key()); err != nil {
				return err
			}
			if err := item.Value(func(v []byte) error {
				info.Bytes += uint64(len(item.Key()) + len(v))
				return put(v)
			}); err != nil {
				return err
			}
			info.Records++
			info.ByKind[kind(item.Key())]++
		}
		return nil
	}()
	if err == nil {
		err = put(nil)
	}
	if err == nil {
		k := binary.PutUvarint(lenBuf[:], info.Records)
		_, err = bw.Write(lenBuf[:k])
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	return info, err
}

func kind(k []byte) string {
	if len(k) >= 2 && k[0] != 0 && k[1] == '/' {
		return string(k[:2])
	}
	if len(k) > 0 && k[0] == 0 {
		return "raftnode"
	}
	return "other"
}

// Handler serves a consistent backup of v's state: one Badger read
// transaction (a point-in-time view at one applied index) streamed as it is
// read, so memory stays flat whatever the size. The index is in the
// X-Edgesync-Backup-Index header.
func Handler(v Viewer, role string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", `attachment; filename="edgesync-`+role+`-`+time.Now().UTC().Format("20060102-150405")+`.esbak"`)
		w.Header().Set("Trailer", "X-Edgesync-Backup-Records")
		err := v.View(func(txn *badger.Txn) error {
			info, err := Write(w, txn)
			w.Header().Set("X-Edgesync-Backup-Records", strconv.FormatUint(info.Records, 10))
			return err
		})
		if err != nil {
			// The status is sent already: breaking the stream makes the
			// client see a truncated (and so rejected) backup.
			panic(http.ErrAbortHandler)
		}
	})
}

// ReadHeader reads and checks the header, returning the applied index.
func ReadHeader(r io.Reader) (uint64, error) {
	var hdr [headerLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: read header: %w", ErrBadBackup, err)
	}
	if string(hdr[:4]) != Magic {
		return 0, fmt.Errorf("%w: not an edgesync backup (magic %q)", ErrBadBackup, hdr[:4])
	}
	if hdr[4] > FormatVersion {
		return 0, fmt.Errorf("%w (version %d, this build reads up to %d)", ErrNewerFormat, hdr[4], FormatVersion)
	}
	if hdr[4] != FormatVersion {
		return 0, fmt.Errorf("%w: unknown format version %d", ErrBadBackup, hdr[4])
	}
	return binary.BigEndian.Uint64(hdr[5:]), nil
}

// Scan reads a whole backup, calling fn (when non-nil) for every record, and
// checks its framing and trailer.
func Scan(r io.Reader, fn func(key, val []byte) error) (Info, error) {
	info := Info{ByKind: map[string]int{}}
	idx, err := ReadHeader(r)
	if err != nil {
		return info, err
	}
	info.Index = idx
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(64<<20))
	if err != nil {
		return info, err
	}
	defer dec.Close()
	br := bufio.NewReaderSize(dec, 64<<10)
	for {
		key, err := readRecord(br, maxKey)
		if err != nil {
			return info, err
		}
		if len(key) == 0 {
			break
		}
		val, err := readRecord(br, maxValue)
		if err != nil {
			return info, err
		}
		info.Records++
		info.Bytes += uint64(len(key) + len(val))
		info.ByKind[kind(key)]++
		if fn != nil {
			if err := fn(key, val); err != nil {
				return info, err
			}
		}
	}
	want, err := binary.ReadUvarint(br)
	if err != nil {
		return info, fmt.Errorf("%w: read record count: %w", ErrBadBackup, noEOF(err))
	}
	if want != info.Records {
		return info, fmt.Errorf("%w: %d records, trailer says %d", ErrBadBackup, info.Records, want)
	}
	return info, nil
}

func readRecord(br *bufio.Reader, maxLen uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: read length: %w", ErrBadBackup, noEOF(err))
	}
	if n > maxLen {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrBadBackup, n, maxLen)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("%w: read record: %w", ErrBadBackup, noEOF(err))
	}
	return b, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
