package offline

import (
	"errors"
	"fmt"
)

// Stable reason codes of a rejected record or medium entry. They appear in
// result.json, in `offline verify --json` and in events, so they never change
// meaning. Record schema problems use the collector/record Code* values.
const (
	ReasonUnsafePath     = "unsafe_path"            // .., absolute, drive letter, backslash, NUL or unclean name
	ReasonSymlink        = "symlink"                // symbolic or hard link
	ReasonNotRegular     = "not_regular"            // device, fifo, socket
	ReasonDuplicateName  = "duplicate_name"         // a second entry with the same name
	ReasonTooLarge       = "too_large"              // over the per-file cap
	ReasonCompression    = "compression_ratio"      // entry expands beyond the ratio cap (a bomb)
	ReasonMalformed      = "malformed"              // truncated or undecodable sealed record
	ReasonBadHash        = "bad_hash"               // body or payload digest does not match
	ReasonBadSignature   = "bad_signature"          // device signature does not verify
	ReasonKitMismatch    = "kit_mismatch"           // bound to another kit than the medium's
	ReasonUnknownKit     = "unknown_kit"            // a kit this central never issued
	ReasonOldGeneration  = "old_generation"         // older kit generation, refused under --strict
	ReasonKeyChanged     = "device_key_changed"     // device signed with a key other than the one trusted
	ReasonDecrypt        = "decrypt_failed"         // encrypted body does not open with central's key
	ReasonEncryptedRelay = "encrypted_central_only" // an encrypted record imported at a relay
	ReasonHeaderMismatch = "header_mismatch"        // sealed header and inner record disagree
	ReasonBadName        = "bad_name"               // not Data/<device-id>/<collected_at>_<nonce>.esr
)

// RejectError says why one sealed record or medium entry was refused.
type RejectError struct {
	Code   string
	Reason string
}

func (e *RejectError) Error() string { return "offline: " + e.Code + ": " + e.Reason }

func reject(code, format string, args ...any) *RejectError {
	return &RejectError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// ReasonOf returns the reason code of err, or "" when it is not a rejection.
func ReasonOf(err error) string {
	var re *RejectError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// Errors of the medium as a whole.
var (
	// ErrArchive means the archive is broken or breaks a global cap; nothing
	// of it is imported.
	ErrArchive = errors.New("offline: archive rejected")
	// ErrKit means kit.json is missing, malformed or its signature fails.
	ErrKit = errors.New("offline: kit invalid or tampered")
)
