package central

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
)

// prefixAck holds event acknowledgements: k/<event id8> → eventAck JSON.
var prefixAck = []byte("k/")

// ErrNoEvent is returned when acknowledging an event central does not hold.
var ErrNoEvent = errors.New("central: no such event")

// EventView is an event with its acknowledgement, as `event list` shows it.
type EventView struct {
	event.Event
	Acked   bool      `json:"acked"`
	AckedBy string    `json:"acked_by,omitempty"`
	AckedAt time.Time `json:"acked_at,omitzero"`
}

// EventFilter selects events; empty fields match everything.
type EventFilter struct {
	Severity string
	Type     string
	Unacked  bool
	Limit    int
	// In, when set, keeps the events of the sites it accepts (an event's
	// site is its relay's; central's own events belong to no site).
	In func(site string) bool
}

type eventAck struct {
	By   string    `json:"by"`
	From string    `json:"from,omitempty"`
	At   time.Time `json:"at"`
}

type ackCommand struct {
	ID       uint64
	By, From string
	At       time.Time
}

func (c *ackCommand) encode() []byte {
	w := cmdenc.NewWriter(byte(cmdEventAck), commandVersion, 96+len(c.By)+len(c.From))
	w.Uint(c.ID)
	w.String(c.By)
	w.String(c.From)
	w.Time(c.At)
	return w.Done()
}

// applyAdminCommand applies the console's and audit's commands (types 20-29).
func applyAdminCommand(txn *badger.Txn, index uint64, typ commandType, r *cmdenc.Reader) []byte {
	switch typ {
	case cmdEventAck:
		c := ackCommand{ID: r.Uint(), By: r.String(), From: r.String(), At: r.Time()}
		if r.Err() != nil {
			return errorResult(r.Err())
		}
		if _, err := txn.Get(seqKey(prefixEvent, c.ID)); errors.Is(err, badger.ErrKeyNotFound) {
			return errorResult(ErrNoEvent)
		} else if err != nil {
			return storageFailure(err)
		}
		if err := kv.PutJSON(txn, seqKey(prefixAck, c.ID), eventAck{By: c.By, From: c.From, At: c.At}); err != nil {
			return storageFailure(err)
		}
	case cmdAudit:
		e, err := audit.DecodeJSON(r)
		if err != nil {
			return errorResult(err)
		}
		if err := auditTrail.Put(txn, index, e); err != nil {
			return storageFailure(err)
		}
	}
	return nil
}

// AckEvent acknowledges an event through Raft.
func (n *Node) AckEvent(ctx context.Context, id uint64, by, from string) error {
	c := &ackCommand{ID: id, By: by, From: from, At: time.Now().UTC()}
	out, err := n.raft.Propose(ctx, c.encode())
	if err != nil {
		return err
	}
	if len(out) > 0 && out[0] == 0xFF && string(out[1:]) == ErrNoEvent.Error() {
		return fmt.Errorf("event %d: %w", id, ErrNoEvent)
	}
	return resultError(out)
}

// EventList returns matching events, newest first, with their acknowledgements.
func (n *Node) EventList(f EventFilter) ([]EventView, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	out := []EventView{}
	err := n.raft.View(func(txn *badger.Txn) error {
		var sites map[string]string
		if f.In != nil {
			var err error
			if sites, err = relaySites(txn); err != nil {
				return err
			}
		}
		return event.Newest(txn, prefixEvent, func(e event.Event) (bool, error) {
			v := EventView{Event: e}
			if f.Severity != "" && v.Severity != f.Severity || f.Type != "" && v.Type != f.Type || f.In != nil && !f.In(sites[e.Source]) {
				return true, nil
			}
			var a eventAck
			found, err := kv.GetJSON(txn, seqKey(prefixAck, v.ID), &a)
			if err != nil {
				return false, err
			}
			if found {
				v.Acked, v.AckedBy, v.AckedAt = true, a.By, a.At
			}
			if !(f.Unacked && v.Acked) {
				out = append(out, v)
			}
			return len(out) < f.Limit, nil
		})
	})
	return out, err
}

func (n *Node) handleEventList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	evs, err := n.EventList(EventFilter{Severity: q.Get("severity"), Type: q.Get("type"), Unacked: q.Get("unacked") == "1",
		Limit: queryInt(r, "limit", 200, maxEvents), In: siteIn(principalOf(r))})
	writeResult(w, evs, err)
}

func (n *Node) handleEventAck(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_event_id", "an event ID is a number")
		return
	}
	if !n.eventVisible(principalOf(r), id) {
		httpx.WriteError(w, http.StatusNotFound, "not_found", fmt.Sprintf("event %d: %v", id, ErrNoEvent))
		return
	}
	err = n.AckEvent(r.Context(), id, principalOf(r).Who, r.RemoteAddr)
	switch {
	case errors.Is(err, ErrNoEvent):
		httpx.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case err != nil:
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	default:
		httpx.WriteJSON(w, http.StatusOK, map[string]any{"acked": id})
	}
}
