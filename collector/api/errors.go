package api

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. A Backend returns them (or the typed errors below) and the
// handler maps them to HTTP statuses; the Client returns them decoded from
// the response.
var (
	// ErrUnauthorized means the device ID and token do not match (401).
	ErrUnauthorized = errors.New("api: unauthorized")
	// ErrInvalidJoinToken means enrollment presented a bad or unknown
	// site join token (403).
	ErrInvalidJoinToken = errors.New("api: invalid join token")
	// ErrConflict means a seq was replayed with different content (409).
	// Backends return *ConflictError, which matches it with errors.Is.
	ErrConflict = errors.New("api: seq replayed with different content")
	// ErrBackpressure means the relay refuses data for now (503 with
	// Retry-After). Backends return *BackpressureError.
	ErrBackpressure = errors.New("api: backpressure")
	// ErrUnavailable means the relay cannot serve the call now, e.g. the
	// site has no Raft leader (503).
	ErrUnavailable = errors.New("api: unavailable")
	// ErrInvalidRequest means the relay refused the request as malformed
	// or invalid (400, 413, 415). The *HTTPError carries the details.
	ErrInvalidRequest = errors.New("api: invalid request")
)

// Stable error codes of Error.Code.
const (
	CodeMethodNotAllowed    = "method_not_allowed"
	CodeNotFound            = "not_found"
	CodeTooLarge            = "too_large"        // body over the cap
	CodeTooManyRecords      = "too_many_records" // batch over the cap
	CodeRecordTooLarge      = "record_too_large" // a record's payload over the cap
	CodeUnsupportedEncoding = "unsupported_encoding"
	CodeBadEncoding         = "bad_encoding" // zstd stream could not be decoded
	CodeMalformedJSON       = "malformed_json"
	CodeUnknownField        = "unknown_field"
	CodeInvalidUTF8         = "invalid_utf8"
	CodeInvalidRequest      = "invalid_request"
	CodeInvalidRecord       = "invalid_record"
	CodeDeviceMismatch      = "device_mismatch" // per record: device_id is not the authenticated device
	CodeUnauthorized        = "unauthorized"
	CodeInvalidJoinToken    = "invalid_join_token"
	CodeConflict            = "conflict"
	CodeBackpressure        = "backpressure"
	CodeUnavailable         = "unavailable"
	CodeInternal            = "internal"
)

// ConflictError says which seq was replayed with different content.
type ConflictError struct {
	Seq uint64
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("api: seq %d replayed with different content", e.Seq)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// BackpressureError asks the agent to keep its data and retry after
// RetryAfter.
type BackpressureError struct {
	RetryAfter time.Duration
	Reason     string
}

func (e *BackpressureError) Error() string {
	return fmt.Sprintf("api: backpressure, retry after %s: %s", e.RetryAfter, e.Reason)
}

// Is makes errors.Is(err, ErrBackpressure) true.
func (e *BackpressureError) Is(target error) bool { return target == ErrBackpressure }

// HTTPError is what the Client returns for a non-2xx answer: the status, the
// decoded body, and the typed error it stands for (Unwrap), so
// errors.Is(err, ErrUnauthorized) and errors.As(err, &conflictErr) work.
type HTTPError struct {
	URL        string
	StatusCode int
	Body       Error
	RetryAfter time.Duration // from the Retry-After header, if any
	Err        error
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("api: %s: HTTP %d %s: %s", e.URL, e.StatusCode, e.Body.Code, e.Body.Message)
}

// Unwrap returns the typed error.
func (e *HTTPError) Unwrap() error { return e.Err }
