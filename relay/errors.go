package relay

import "errors"

var (
	// ErrUnknownDevice means a report came from a device the site never enrolled.
	ErrUnknownDevice = errors.New("relay: unknown device")
	// ErrBadJoinToken means an enrollment carried a join token that is not this site's.
	ErrBadJoinToken = errors.New("relay: bad join token")
	// ErrClosed means the node is shutting down.
	ErrClosed = errors.New("relay: node closed")
)
