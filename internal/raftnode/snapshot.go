package raftnode

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
	"github.com/klauspost/compress/zstd"
)

// Snapshot stream format (version 1):
//
//	header (uncompressed): magic "ESRS", version byte, applied index uint64 BE
//	zstd stream of records: uvarint keyLen, key, uvarint valLen, value
//	end of records:         uvarint 0 (keys are never empty), uvarint count
//
// The end marker means the reader never asks zstd to probe past the data.
const (
	snapMagic         = "ESRS"
	snapFormatVersion = 1
	snapHeaderLen     = 4 + 1 + 8
	snapMaxKey        = 65000    // Badger's key limit
	snapMaxValue      = 64 << 20 // far above DESIGN's 512 KiB entries
	snapDecoderMaxMem = 64 << 20
	snapEncoderWindow = 1 << 20
)

// fsmSnapshot is a pinned read txn on one state DB.
type fsmSnapshot struct {
	h       *stateHandle
	txn     *badger.Txn
	index   uint64
	logger  *slog.Logger
	metrics *metrics
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	start := time.Now()
	n, err := s.write(sink)
	if err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("persist snapshot at %d: %w", s.index, err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("persist snapshot at %d: %w", s.index, err)
	}
	s.metrics.snapshotBytes.Add(float64(n))
	s.logger.Info("Snapshot persisted", "index", s.index, "bytes", n, "took", time.Since(start))
	return nil
}

func (s *fsmSnapshot) write(w io.Writer) (int64, error) {
	var hdr [snapHeaderLen]byte
	copy(hdr[:], snapMagic)
	hdr[4] = snapFormatVersion
	binary.BigEndian.PutUint64(hdr[5:], s.index)
	if _, err := w.Write(hdr[:]); err != nil {
		return 0, err
	}
	enc, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedFastest),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(snapEncoderWindow))
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(enc, 64<<10)
	var total, count int64
	var lenBuf [binary.MaxVarintLen64]byte
	writeBytes := func(b []byte) error {
		k := binary.PutUvarint(lenBuf[:], uint64(len(b)))
		if _, err := bw.Write(lenBuf[:k]); err != nil {
			return err
		}
		_, err := bw.Write(b)
		return err
	}
	it := s.txn.NewIterator(badger.IteratorOptions{PrefetchValues: true, PrefetchSize: 16})
	err = func() error {
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			if err := writeBytes(item.Key()); err != nil {
				return err
			}
			err := item.Value(func(v []byte) error {
				total += int64(len(item.Key()) + len(v))
				return writeBytes(v)
			})
			if err != nil {
				return err
			}
			count++
			if count == 1 && failpointEnabled(fpSnapshotPersist) {
				if err := bw.Flush(); err != nil {
					return err
				}
				if err := enc.Flush(); err != nil {
					return err
				}
				failpoint(fpSnapshotPersist)
			}
		}
		return nil
	}()
	if err == nil {
		err = writeBytes(nil) // end marker
	}
	if err == nil {
		k := binary.PutUvarint(lenBuf[:], uint64(count))
		_, err = bw.Write(lenBuf[:k])
	}
	if err == nil {
		err = bw.Flush()
	}
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	return total, err
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {
	s.txn.Discard()
	s.h.release()
}

func readSnapshotHeader(r io.Reader) (uint64, error) {
	var hdr [snapHeaderLen]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("%w: read header: %w", ErrBadSnapshot, err)
	}
	if string(hdr[:4]) != snapMagic {
		return 0, fmt.Errorf("%w: bad magic %q", ErrBadSnapshot, hdr[:4])
	}
	if hdr[4] != snapFormatVersion {
		return 0, fmt.Errorf("%w: unsupported format version %d", ErrBadSnapshot, hdr[4])
	}
	return binary.BigEndian.Uint64(hdr[5:]), nil
}

// readSnapshot loads a snapshot stream into an empty db and returns its
// applied index.
func readSnapshot(r io.Reader, db *badger.DB) (uint64, error) {
	idx, err := readSnapshotHeader(r)
	if err != nil {
		return 0, err
	}
	dec, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(snapDecoderMaxMem))
	if err != nil {
		return 0, err
	}
	defer dec.Close()
	br := bufio.NewReaderSize(dec, 64<<10)
	wb := db.NewWriteBatch()
	defer wb.Cancel()
	var count uint64
	for {
		key, err := readRecord(br, snapMaxKey)
		if err != nil {
			return 0, err
		}
		if len(key) == 0 {
			break
		}
		val, err := readRecord(br, snapMaxValue)
		if err != nil {
			return 0, err
		}
		if err := wb.Set(key, val); err != nil {
			return 0, fmt.Errorf("restore write: %w", err)
		}
		count++
		if count == 1 {
			failpoint(fpSnapshotRestore)
		}
	}
	want, err := binary.ReadUvarint(br)
	if err != nil {
		return 0, fmt.Errorf("%w: read record count: %w", ErrBadSnapshot, err)
	}
	if want != count {
		return 0, fmt.Errorf("%w: %d records, trailer says %d", ErrBadSnapshot, count, want)
	}
	// The stored applied index must agree with the header.
	if err := wb.Set(appliedKey, binary.BigEndian.AppendUint64(nil, idx)); err != nil {
		return 0, fmt.Errorf("restore write: %w", err)
	}
	if err := wb.Flush(); err != nil {
		return 0, fmt.Errorf("restore write: %w", err)
	}
	return idx, nil
}

func readRecord(br *bufio.Reader, maxLen uint64) ([]byte, error) {
	n, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("%w: read length: %w", ErrBadSnapshot, noEOF(err))
	}
	if n > maxLen {
		return nil, fmt.Errorf("%w: record of %d bytes exceeds %d", ErrBadSnapshot, n, maxLen)
	}
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(br, b); err != nil {
		return nil, fmt.Errorf("%w: read record: %w", ErrBadSnapshot, noEOF(err))
	}
	return b, nil
}

func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
