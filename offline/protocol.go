package offline

import (
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"filippo.io/age"

	"github.com/edgesync/edgesync/collector/record"
)

// ImportPath is the admin API endpoint, on central and on relays.
const ImportPath = "/api/v1/offline/import"

// KitsPath is central's kit endpoint.
const KitsPath = "/api/v1/offline/kits"

// Per-record outcomes.
const (
	OutcomeImported  = "imported"     // current inventory moved to this record (at a relay: committed and forwarded)
	OutcomeHistory   = "history-only" // older than the device's current inventory: kept in history only
	OutcomeDuplicate = "duplicate"    // already imported, here or anywhere else
	OutcomeRejected  = "rejected"     // refused; Reason says why
	OutcomeVerified  = "verified"     // offline verify: hash, signature and binding hold
)

// Caps of one import request.
const (
	MaxRequestRecords = 2000
	MaxRequestBytes   = 16 << 20
)

// ImportRequest is one batch of sealed records, sent as JSON.
type ImportRequest struct {
	Kit     json.RawMessage `json:"kit"` // the medium's kit.json
	DryRun  bool            `json:"dry_run,omitempty"`
	Strict  bool            `json:"strict,omitempty"`
	Records []ImportItem    `json:"records"`
}

// ImportItem is one .esr file as found on the medium.
type ImportItem struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// ImportResponse answers an ImportRequest, one result per record, in order.
type ImportResponse struct {
	Results []RecordResult `json:"results"`
}

// RecordResult is one record's outcome.
type RecordResult struct {
	Name        string    `json:"name"`
	DeviceID    string    `json:"device_id,omitempty"`
	Hostname    string    `json:"hostname,omitempty"`
	CollectedAt time.Time `json:"collected_at,omitzero"`
	Outcome     string    `json:"outcome"`
	Reason      string    `json:"reason,omitempty"`
	Detail      string    `json:"detail,omitempty"`
	Warning     string    `json:"warning,omitempty"`
	At          time.Time `json:"at"`
}

// CheckRecords verifies every record of req against kit (already verified
// by the caller against the key it trusts): size, hash, signature, kit
// binding, decryption when id is given, and the record schema at now. It
// returns the opened records (nil where rejected) and results with the
// rejections filled in.
func CheckRecords(req *ImportRequest, kit *Kit, id *age.X25519Identity, now time.Time, lim record.Limits) ([]*Opened, []RecordResult) {
	opened := make([]*Opened, len(req.Records))
	results := make([]RecordResult, len(req.Records))
	parallel(len(req.Records), func(i int) {
		it := req.Records[i]
		results[i] = RecordResult{Name: it.Name, At: now}
		o, err := Open(it.Data, OpenOptions{KitID: kit.ID, KitGen: kit.Generation, Identity: id, Now: now, Limits: lim})
		if err != nil {
			results[i].Outcome, results[i].Reason, results[i].Detail = OutcomeRejected, ReasonOf(err), err.Error()
			return
		}
		results[i].DeviceID, results[i].CollectedAt, results[i].Hostname = o.Sealed.DeviceID, o.Sealed.CollectedAt, o.Hostname()
		opened[i] = o
	})
	return opened, results
}

// parallel runs fn(0..n-1) on GOMAXPROCS goroutines: signature checks and
// JSON decoding are CPU-bound and independent per record.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n)
	if workers <= 1 {
		for i := range n {
			fn(i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				fn(i)
			}
		})
	}
	wg.Wait()
}
