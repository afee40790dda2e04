package record

import (
	"crypto/rand"
	"encoding/hex"
)

// DeviceIDLen is the length of a device ID: 32 lowercase hex characters (the
// ISM client-ID form).
const DeviceIDLen = 32

// NewDeviceID returns a fresh random device ID (128 bits from crypto/rand).
func NewDeviceID() string {
	var b [DeviceIDLen / 2]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never returns an error (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// ValidDeviceID reports whether s is exactly 32 lowercase hex characters.
func ValidDeviceID(s string) bool {
	if len(s) != DeviceIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
