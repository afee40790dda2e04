package offline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"filippo.io/age"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/httpx"
)

// Accepted is one record that passed every check of the medium, ready for
// the node to commit: Record is the record JSON as stored (received_at
// now, channel usb, provenance in bundle_id, plus what Stamp added).
type Accepted struct {
	Opened *Opened
	Kit    *Kit
	Record []byte
}

// Outcome is what committing (or dry-running) one Accepted record did.
type Outcome struct {
	Outcome, Reason, Warning string
}

// ImportServer is the server half of `offline import` (POST
// /api/v1/offline/import) that relay and central share: request
// limits, the kit and record checks, stamping, splitting into commands that
// fit a Raft entry, and the HTTP answer. The node says only what differs:
// which kit it trusts, what it adds to a record, and how it commits.
type ImportServer struct {
	// Kit checks the medium's kit.json against what the node trusts and
	// returns the identity that opens encrypted records (nil: the node
	// cannot, and such records are refused).
	Kit func(ctx context.Context, raw json.RawMessage) (*Kit, *age.X25519Identity, error)
	// Stamp adds the node's fields to a record before it is stored (nil: none).
	Stamp func(rec *record.Record)
	// Commit applies items in one Raft command, or with dry set reports
	// what applying all of them would do, changing nothing. It returns one
	// Outcome per item, in order. now is the request's time, the same in
	// every command of one request.
	Commit func(ctx context.Context, items []Accepted, now time.Time, dry, strict bool) ([]Outcome, error)
	// CommandBytes caps the records of one Commit (a Raft entry's budget);
	// PerItem is the overhead one item adds to its command.
	CommandBytes, PerItem int
}

// Import runs one request: it verifies every record, commits the accepted
// ones in as many commands as they need, and returns one result per record.
func (s *ImportServer) Import(ctx context.Context, req *ImportRequest) ([]RecordResult, error) {
	if len(req.Records) > MaxRequestRecords {
		return nil, fmt.Errorf("%d records in one request, limit %d", len(req.Records), MaxRequestRecords)
	}
	kit, id, err := s.Kit(ctx, req.Kit)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	opened, results := CheckRecords(req, kit, id, now, record.Limits{})
	var items []Accepted
	var idx []int
	for i, o := range opened {
		if o == nil {
			continue
		}
		if o.Record == nil {
			results[i].Outcome, results[i].Reason = OutcomeRejected, ReasonEncryptedRelay
			results[i].Detail = "encrypted to central: import this medium at central"
			continue
		}
		rec := *o.Record
		rec.ReceivedAt, rec.Channel = now, record.ChannelUSB
		rec.BundleID = Provenance{KitID: kit.ID, KitGen: kit.Generation, DeviceKey: o.Sealed.DeviceKey, Payload: o.Payload}.String()
		if s.Stamp != nil {
			s.Stamp(&rec)
		}
		b, err := json.Marshal(&rec)
		if err != nil {
			return nil, err
		}
		items = append(items, Accepted{Opened: o, Kit: kit, Record: b})
		idx = append(idx, i)
	}
	var out []Outcome
	if req.DryRun {
		// One view over all of them: a record twice in the request is a
		// duplicate the second time, as it would be when committed.
		if out, err = s.Commit(ctx, items, now, true, req.Strict); err != nil {
			return nil, err
		}
	} else {
		for _, r := range Batches(len(items), func(i int) int { return len(items[i].Record) + s.PerItem }, s.CommandBytes) {
			part, err := s.Commit(ctx, items[r[0]:r[1]], now, false, req.Strict)
			if err != nil {
				return nil, err
			}
			out = append(out, part...)
		}
	}
	if len(out) != len(items) {
		return nil, fmt.Errorf("offline import: %d outcomes for %d records", len(out), len(items))
	}
	for j, i := range idx {
		results[i].Outcome, results[i].Reason, results[i].Warning = out[j].Outcome, out[j].Reason, out[j].Warning
	}
	return results, nil
}

// Batches splits n items into runs [start, end) whose sizes add up to less
// than limit; a run holds at least one item, however large.
func Batches(n int, size func(i int) int, limit int) [][2]int {
	var runs [][2]int
	for start := 0; start < n; {
		end, sum := start, 0
		for end < n && (end == start || sum+size(end) < limit) {
			sum += size(end)
			end++
		}
		runs = append(runs, [2]int{start, end})
		start = end
	}
	return runs
}

// ServeHTTP answers POST /api/v1/offline/import: ImportResponse, or a
// stable error code (bad_request, kit_invalid, import_failed).
func (s *ImportServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req ImportRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxRequestBytes*2)).Decode(&req); err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
		return
	}
	res, err := s.Import(r.Context(), &req)
	switch {
	case errors.Is(err, ErrKit):
		httpx.WriteError(w, http.StatusBadRequest, "kit_invalid", err.Error())
	case err != nil:
		httpx.WriteError(w, http.StatusServiceUnavailable, "import_failed", err.Error())
	default:
		httpx.WriteJSON(w, http.StatusOK, ImportResponse{Results: res})
	}
}
