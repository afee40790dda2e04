package central

import "errors"

var (
	// ErrNotFound means the requested device or site does not exist.
	ErrNotFound = errors.New("central: not found")
	// ErrGap means a batch starts beyond the site's cursor + 1.
	ErrGap = errors.New("central: batch leaves a gap after the site cursor")
)
