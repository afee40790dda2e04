// Package api is the agent-facing HTTP API every relay node serves
// (DESIGN.md §8) and its client: enrollment with a site join token, batched
// record reports with per-record validation, and agent configuration.
//
// Errors cross the wire as an Error body with a stable code (errors.go) and
// are turned back into the same typed errors by the Client, so a Backend and
// an agent use the same values: ErrUnauthorized, ErrInvalidJoinToken,
// *ConflictError, *BackpressureError, ErrUnavailable.
package api
