package uplink

import "errors"

var (
	// ErrProtocol is returned when central breaks the protocol (unexpected frame, bad ack).
	ErrProtocol = errors.New("uplink: protocol violation")
	// ErrOutboxGap is returned when the outbox no longer holds the records central needs next.
	ErrOutboxGap = errors.New("uplink: outbox does not hold the next records")
	// ErrCursorAhead is returned when central's cursor is beyond anything this outbox assigned,
	// e.g. after a site was rebuilt; acking would silently drop new records, so we stop.
	ErrCursorAhead = errors.New("uplink: central cursor ahead of outbox")
	// ErrIdle is returned when central has been silent for too long.
	ErrIdle = errors.New("uplink: central silent")
	// ErrRunning is returned by a second concurrent Run.
	ErrRunning = errors.New("uplink: already running")
)
