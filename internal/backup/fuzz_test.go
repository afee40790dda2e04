package backup

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

func memDB(tb testing.TB) *badger.DB {
	db, err := badger.Open(badger.DefaultOptions("").WithInMemory(true).WithLogger(nil))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func backupOf(tb testing.TB, db *badger.DB) []byte {
	var buf bytes.Buffer
	if err := db.View(func(txn *badger.Txn) error {
		_, err := Write(&buf, txn)
		return err
	}); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzScan: a damaged, truncated or hostile backup file is refused with
// ErrBadBackup or ErrNewerFormat (or a decompression error) before a
// restore touches the disk, never with a panic or an over-limit record;
// what Scan accepts, restored into a store and backed up again, scans to
// the same records.
func FuzzScan(f *testing.F) {
	db := memDB(f)
	if err := db.Update(func(txn *badger.Txn) error {
		for k, v := range map[string]string{"d/dev1": `{"id":"dev1"}`, "e/\x00\x00\x00\x01": `{"n":1}`, "m/next": "\x00\x00\x00\x00\x00\x00\x00\x05"} {
			if err := txn.Set([]byte(k), []byte(v)); err != nil {
				return err
			}
		}
		return txn.Set(appliedKey, []byte{0, 0, 0, 0, 0, 0, 0, 9})
	}); err != nil {
		f.Fatal(err)
	}
	good := backupOf(f, db)
	f.Add(good)
	f.Add(backupOf(f, memDB(f)))
	f.Add(good[:len(good)-3])
	newer := bytes.Clone(good)
	newer[4] = FormatVersion + 1
	f.Add(newer)
	f.Add([]byte("ESRS\x01\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte("NOPE\x01\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		info, err := Scan(bytes.NewReader(data), func(k, v []byte) error {
			if len(k) > maxKey || len(v) > maxValue {
				return fmt.Errorf("record of %d+%d bytes over the limits", len(k), len(v))
			}
			got[string(k)] = string(v)
			return nil
		})
		if err != nil {
			if bytes.HasPrefix(data, []byte(Magic)) && len(data) >= headerLen && data[4] > FormatVersion && !errors.Is(err, ErrNewerFormat) {
				t.Fatalf("newer format refused as %v", err)
			}
			return
		}
		if info.Records < uint64(len(got)) {
			t.Fatalf("Info says %d records, saw %d keys", info.Records, len(got))
		}
		// Round trip through a store (badger refuses its own reserved keys
		// and values beyond its limits; such backups cannot restore anyway).
		total := 0
		for k, v := range got {
			total += len(k) + len(v)
			if bytes.HasPrefix([]byte(k), []byte("!badger!")) {
				return
			}
		}
		if total > 1<<20 {
			return
		}
		rdb := memDB(t)
		if err := rdb.Update(func(txn *badger.Txn) error {
			for k, v := range got {
				if err := txn.Set([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return
		}
		again := map[string]string{}
		if _, err := Scan(bytes.NewReader(backupOf(t, rdb)), func(k, v []byte) error {
			again[string(k)] = string(v)
			return nil
		}); err != nil {
			t.Fatalf("re-backup does not scan: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("round trip changed the records:\n%v\n%v", got, again)
		}
	})
}
