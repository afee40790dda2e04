package api

import "github.com/edgesync/edgesync/collector/record"

// EnrollRequest is the body of POST /v1/enroll.
type EnrollRequest struct {
	JoinToken string `json:"join_token"`
	DeviceID  string `json:"device_id,omitempty"` // kept when the agent already has one
	Hostname  string `json:"hostname"`
	OS        string `json:"os,omitempty"`
	Arch      string `json:"arch,omitempty"`
}

// EnrollResponse is the answer to POST /v1/enroll.
type EnrollResponse struct {
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
	SiteID      string `json:"site_id"`
}

// ReportRequest is the body of POST /v1/reports. The device authenticates with
// "Authorization: Bearer <device_token>" and "X-Edgesync-Device: <device_id>".
type ReportRequest struct {
	Records []record.Record `json:"records"`
}

// ReportResponse is the 200 answer to POST /v1/reports: every record with
// seq <= AckedSeq is committed in the site Raft.
type ReportResponse struct {
	AckedSeq  uint64 `json:"acked_seq"`
	Accepted  int    `json:"accepted"`
	Duplicate int    `json:"duplicate"`
}

// Config is the answer to GET /v1/config.
type Config struct {
	InventoryIntervalSeconds int      `json:"inventory_interval_seconds"`
	SecurityIntervalSeconds  int      `json:"security_interval_seconds"`
	PollIntervalSeconds      int      `json:"poll_interval_seconds"`
	Relays                   []string `json:"relays"`
}

// Error is the body of every 4xx/5xx answer.
type Error struct {
	Code    string        `json:"code"`    // stable, e.g. "invalid_record"
	Message string        `json:"message"` // human readable
	Records []RecordError `json:"records,omitempty"`
}

// RecordError names why one record of a batch was refused.
type RecordError struct {
	Index  int    `json:"index"`
	Seq    uint64 `json:"seq"`
	Code   string `json:"code"`
	Reason string `json:"reason"`
}
