package relay

import (
	"fmt"
	"time"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
)

// commandType is the first byte of every relay Raft command.
type commandType uint8

const (
	cmdReports commandType = iota + 1 // group commit: many devices' records
	cmdAck                            // central acked the outbox up to a site seq
	cmdEnroll                         // a device joined the site
	cmdSecrets                        // join and admin token hashes, set once at bootstrap
	cmdEvent                          // a site event
)

// cmdOffline commits an offline import to the ledger and outbox (relay/offline.go).
const cmdOffline commandType = 10

// The administrator's commands use 20–29 (relay/audit.go).
const cmdAudit commandType = 20 // an audit trail entry, under a/

const (
	commandVersion = 1
	// maxCommandBytes keeps every log entry under raft's SuggestedMaxDataSize
	// (512 KiB) with room for framing.
	maxCommandBytes = 448 << 10
	maxRequests     = 10000
	maxRecordsPer   = 10000
)

// reportRecord is one agent record as proposed: the fields Apply needs to
// decide, and the stamped record bytes it stores without parsing.
type reportRecord struct {
	Seq         uint64
	Hash        []byte
	Inventory   bool
	CollectedAt time.Time
	Data        []byte
}

// reportRequest is one agent's POST /v1/reports inside a group commit.
type reportRequest struct {
	DeviceID string
	Records  []reportRecord
}

// reportsCommand is what the batcher proposes.
type reportsCommand struct {
	At       time.Time
	Requests []reportRequest
}

func (c *reportsCommand) encode() []byte {
	w := cmdenc.NewWriter(byte(cmdReports), commandVersion, c.size())
	w.Time(c.At)
	w.Uint(uint64(len(c.Requests)))
	for _, rq := range c.Requests {
		w.String(rq.DeviceID)
		w.Uint(uint64(len(rq.Records)))
		for _, r := range rq.Records {
			w.Uint(r.Seq)
			w.Bytes(r.Hash)
			if r.Inventory {
				w.Uint(1)
			} else {
				w.Uint(0)
			}
			w.Time(r.CollectedAt)
			w.Bytes(r.Data)
		}
	}
	return w.Done()
}

// size estimates the encoded size (used to cap a group commit).
func (c *reportsCommand) size() int {
	n := 16
	for _, rq := range c.Requests {
		n += requestSize(rq)
	}
	return n
}

func requestSize(rq reportRequest) int {
	n := len(rq.DeviceID) + 8
	for _, r := range rq.Records {
		n += len(r.Data) + len(r.Hash) + 32
	}
	return n
}

func decodeReports(r *cmdenc.Reader) (*reportsCommand, error) {
	c := &reportsCommand{At: r.Time()}
	n := r.Count(maxRequests)
	c.Requests = make([]reportRequest, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		rq := reportRequest{DeviceID: r.String()}
		m := r.Count(maxRecordsPer)
		rq.Records = make([]reportRecord, 0, m)
		for j := 0; j < m && r.Err() == nil; j++ {
			rq.Records = append(rq.Records, reportRecord{
				Seq:         r.Uint(),
				Hash:        r.Bytes(),
				Inventory:   r.Uint() == 1,
				CollectedAt: r.Time(),
				Data:        r.Bytes(),
			})
		}
		c.Requests = append(c.Requests, rq)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode reports command: %w", err)
	}
	return c, nil
}

// Per-request outcome codes of a reports command.
const (
	reportOK       = 0
	reportUnknown  = 1 // device not enrolled
	reportConflict = 2 // a seq was replayed with different content, or is too old to check
)

// reportResult is Apply's answer for one request.
type reportResult struct {
	Code      uint64
	AckedSeq  uint64
	Accepted  uint64
	Duplicate uint64
	BadSeq    uint64
}

func encodeReportResults(rs []reportResult) []byte {
	w := cmdenc.NewWriter(byte(cmdReports), commandVersion, len(rs)*8)
	w.Uint(uint64(len(rs)))
	for _, r := range rs {
		w.Uint(r.Code)
		w.Uint(r.AckedSeq)
		w.Uint(r.Accepted)
		w.Uint(r.Duplicate)
		w.Uint(r.BadSeq)
	}
	return w.Done()
}

func decodeReportResults(b []byte) ([]reportResult, error) {
	_, _, r, err := cmdenc.NewReader(b)
	if err != nil {
		return nil, err
	}
	n := r.Count(maxRequests)
	out := make([]reportResult, n)
	for i := range out {
		out[i] = reportResult{Code: r.Uint(), AckedSeq: r.Uint(), Accepted: r.Uint(), Duplicate: r.Uint(), BadSeq: r.Uint()}
	}
	return out, r.Err()
}

func encodeAck(upto uint64) []byte {
	w := cmdenc.NewWriter(byte(cmdAck), commandVersion, 10)
	w.Uint(upto)
	return w.Done()
}

// enrollCommand registers (or re-registers) a device with a fresh token.
type enrollCommand struct {
	DeviceID  string
	TokenHash string
	JoinHash  string
	Hostname  string
	OS        string
	At        time.Time
}

func (c *enrollCommand) encode() []byte {
	w := cmdenc.NewWriter(byte(cmdEnroll), commandVersion, 256)
	w.String(c.DeviceID)
	w.String(c.TokenHash)
	w.String(c.JoinHash)
	w.String(c.Hostname)
	w.String(c.OS)
	w.Time(c.At)
	return w.Done()
}

func decodeEnroll(r *cmdenc.Reader) (*enrollCommand, error) {
	c := &enrollCommand{DeviceID: r.String(), TokenHash: r.String(), JoinHash: r.String(), Hostname: r.String(), OS: r.String(), At: r.Time()}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode enroll command: %w", err)
	}
	return c, nil
}

func encodeSecrets(joinHash, adminHash string) []byte {
	w := cmdenc.NewWriter(byte(cmdSecrets), commandVersion, 140)
	w.String(joinHash)
	w.String(adminHash)
	return w.Done()
}

func encodeEvent(e event.Event) []byte {
	w := cmdenc.NewWriter(byte(cmdEvent), commandVersion, 256)
	w.Uint(uint64(e.Number))
	w.String(e.Severity)
	w.String(e.Type)
	w.String(e.Source)
	w.Time(e.Time)
	w.String(e.Message)
	return w.Done()
}

func decodeEvent(r *cmdenc.Reader) (event.Event, error) {
	e := event.Event{Number: int(r.Uint()), Severity: r.String(), Type: r.String(), Source: r.String(), Time: r.Time(), Message: r.String()}
	return e, r.Err()
}
