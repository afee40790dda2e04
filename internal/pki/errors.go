package pki

import "errors"

var (
	// ErrExists is returned when Init or Issue would overwrite an existing file.
	ErrExists = errors.New("pki: already exists")
	// ErrInvalidRequest is returned for an IssueRequest that fails validation.
	ErrInvalidRequest = errors.New("pki: invalid request")
	// ErrNoIdentity is returned when a certificate carries no valid edgesync identity.
	ErrNoIdentity = errors.New("pki: certificate has no valid edgesync identity")
	// ErrFingerprintMismatch is returned by PinnedTLS when no presented certificate matches the pin.
	ErrFingerprintMismatch = errors.New("pki: no certificate matches the pinned fingerprint")
)
