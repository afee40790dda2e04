package raftnode

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Digest fingerprints a node's raft log over a range and its whole state DB,
// so a checker can show that the members of a group agree: the same entries
// on the committed prefix (hashicorp/raft fuzzy's log verifier) and the same
// state after applying them.
type Digest struct {
	Node string `json:"node"`
	// LogFirst and LogLast bound the entries this node still holds.
	LogFirst uint64 `json:"log_first"`
	LogLast  uint64 `json:"log_last"`
	// LogFrom..LogTo is the hashed range: the asked range clipped to
	// LogFirst..LogLast. Each entry contributes its index, term, type and data.
	LogFrom   uint64 `json:"log_from"`
	LogTo     uint64 `json:"log_to"`
	LogSHA256 string `json:"log_sha256"`
	// LogToTerm is the term of entry LogTo (0 for an empty range): with a
	// one-entry range it shows which leader wrote a differing entry.
	LogToTerm uint64 `json:"log_to_term,omitempty"`
	// Applied is the index the state DB had applied when it was hashed;
	// StateSHA256 covers every key and value, in key order.
	Applied     uint64 `json:"applied"`
	StateKeys   int    `json:"state_keys"`
	StateSHA256 string `json:"state_sha256"`
}

// maxDigestEntries bounds one digest's log walk (about a second of work).
const maxDigestEntries = 2_000_000

// Digest hashes log entries from..to (0 = the last) and the state DB.
func (n *Node) Digest(from, to uint64) (Digest, error) {
	d := Digest{Node: n.cfg.NodeID}
	// Compaction after a snapshot deletes the log's head while we read: when
	// an entry we were about to hash is gone and the first index moved past
	// it, start again from the new first index. Callers see LogFrom move.
	var err error
	for attempt := 0; ; attempt++ {
		var moved bool
		if moved, err = n.digestLog(&d, from, to); err == nil || !moved || attempt == 3 {
			break
		}
	}
	if err != nil {
		return d, err
	}

	err = n.fsm.view(func(txn *badger.Txn) error {
		var err error
		if d.Applied, err = txnApplied(txn); err != nil {
			return err
		}
		h := sha256.New()
		it := txn.NewIterator(badger.DefaultIteratorOptions)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(k))))
			h.Write(k)
			if err := item.Value(func(v []byte) error {
				h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(v))))
				h.Write(v)
				return nil
			}); err != nil {
				return fmt.Errorf("read %q: %w", k, err)
			}
			d.StateKeys++
		}
		d.StateSHA256 = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("raftnode: digest state: %w", err)
	}
	return d, nil
}

// DigestHandler serves GET ...?from=N&to=M with the node's Digest, for the
// app to mount behind its admin authentication.
func (n *Node) DigestHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var from, to uint64
		var errs []error
		for name, dst := range map[string]*uint64{"from": &from, "to": &to} {
			if s := r.URL.Query().Get(name); s != "" {
				v, err := strconv.ParseUint(s, 10, 64)
				errs = append(errs, err)
				*dst = v
			}
		}
		if errors.Join(errs...) != nil {
			writeError(w, fmt.Errorf("%w: from and to are log indexes", ErrBadRequest))
			return
		}
		d, err := n.Digest(from, to)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, d)
	})
}

// digestLog fills d's log fields; moved reports an entry that disappeared
// because the log's head was truncated meanwhile.
func (n *Node) digestLog(d *Digest, from, to uint64) (moved bool, err error) {
	if d.LogFirst, err = n.logs.FirstIndex(); err != nil {
		return false, fmt.Errorf("raftnode: digest: %w", err)
	}
	if d.LogLast, err = n.logs.LastIndex(); err != nil {
		return false, fmt.Errorf("raftnode: digest: %w", err)
	}
	d.LogFrom, d.LogTo = max(from, d.LogFirst), d.LogLast
	if to != 0 {
		d.LogTo = min(to, d.LogLast)
	}
	if d.LogTo >= d.LogFrom && d.LogTo-d.LogFrom >= maxDigestEntries {
		return false, fmt.Errorf("%w: digest range over %d entries", ErrBadRequest, maxDigestEntries)
	}
	h := sha256.New()
	var hdr [17]byte
	for i := d.LogFrom; i <= d.LogTo && d.LogFrom > 0; i++ {
		var l raft.Log
		if err := n.logs.GetLog(i, &l); err != nil {
			if first, ferr := n.logs.FirstIndex(); errors.Is(err, raft.ErrLogNotFound) && ferr == nil && first > i {
				return true, fmt.Errorf("raftnode: digest: log %d compacted away during the digest", i)
			}
			return false, fmt.Errorf("raftnode: digest: log %d: %w", i, err)
		}
		binary.BigEndian.PutUint64(hdr[:8], l.Index)
		binary.BigEndian.PutUint64(hdr[8:16], l.Term)
		hdr[16] = byte(l.Type)
		h.Write(hdr[:])
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(l.Data))))
		h.Write(l.Data)
		d.LogToTerm = l.Term
	}
	d.LogSHA256 = hex.EncodeToString(h.Sum(nil))
	return false, nil
}
