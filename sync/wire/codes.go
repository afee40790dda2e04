package wire

import (
	"context"
	"errors"
	"fmt"

	"github.com/quic-go/quic-go"
)

// Code is a stable numeric error code carried in Ack and Error messages. Values never change
// meaning; new codes are appended.
type Code uint16

// Codes.
const (
	CodeOK                 Code = 0
	CodeBadRequest         Code = 1
	CodeSiteMismatch       Code = 2
	CodeVersionUnsupported Code = 3
	CodeUnavailable        Code = 4
	CodeInternal           Code = 5
	CodeGap                Code = 6
	CodeTooLarge           Code = 7
	CodeUnauthenticated    Code = 8
	CodeForbidden          Code = 9
	CodeShuttingDown       Code = 10
)

var codeNames = map[Code]string{
	CodeOK:                 "ok",
	CodeBadRequest:         "bad request",
	CodeSiteMismatch:       "site mismatch",
	CodeVersionUnsupported: "version unsupported",
	CodeUnavailable:        "unavailable",
	CodeInternal:           "internal error",
	CodeGap:                "sequence gap",
	CodeTooLarge:           "too large",
	CodeUnauthenticated:    "unauthenticated",
	CodeForbidden:          "forbidden",
	CodeShuttingDown:       "shutting down",
}

func (c Code) String() string {
	if s, ok := codeNames[c]; ok {
		return s
	}
	return fmt.Sprintf("code %d", uint16(c))
}

// Sentinel errors, one per non-OK code.
var (
	ErrBadRequest         = errors.New("wire: bad request")
	ErrSiteMismatch       = errors.New("wire: site mismatch")
	ErrVersionUnsupported = errors.New("wire: protocol version unsupported")
	ErrUnavailable        = errors.New("wire: unavailable")
	ErrInternal           = errors.New("wire: internal error")
	ErrGap                = errors.New("wire: sequence gap")
	ErrTooLarge           = errors.New("wire: too large")
	ErrUnauthenticated    = errors.New("wire: unauthenticated")
	ErrForbidden          = errors.New("wire: forbidden")
	ErrShuttingDown       = errors.New("wire: shutting down")
)

var codeErrors = map[Code]error{
	CodeBadRequest:         ErrBadRequest,
	CodeSiteMismatch:       ErrSiteMismatch,
	CodeVersionUnsupported: ErrVersionUnsupported,
	CodeUnavailable:        ErrUnavailable,
	CodeInternal:           ErrInternal,
	CodeGap:                ErrGap,
	CodeTooLarge:           ErrTooLarge,
	CodeUnauthenticated:    ErrUnauthenticated,
	CodeForbidden:          ErrForbidden,
	CodeShuttingDown:       ErrShuttingDown,
}

// codeOrder fixes the order ErrorToCode tests sentinels in (maps iterate randomly).
var codeOrder = []Code{
	CodeBadRequest, CodeSiteMismatch, CodeVersionUnsupported, CodeUnavailable, CodeInternal,
	CodeGap, CodeTooLarge, CodeUnauthenticated, CodeForbidden, CodeShuttingDown,
}

// CodeError is an error received from the peer: a code and the peer's message.
type CodeError struct {
	Code    Code
	Message string
}

func (e *CodeError) Error() string {
	if e.Message == "" {
		return "wire: remote: " + e.Code.String()
	}
	return "wire: remote: " + e.Code.String() + ": " + e.Message
}

// Is makes errors.Is(err, ErrGap) true for a CodeError with CodeGap, and so on.
func (e *CodeError) Is(target error) bool {
	s, ok := codeErrors[e.Code]
	return ok && s == target
}

// ErrorToCode maps an error to the code sent to the peer. nil is CodeOK; an error wrapping a
// sentinel (or a CodeError) gets its code; ErrFrameTooLarge and ErrBatchTooLarge are CodeTooLarge;
// a deadline is CodeUnavailable; anything else is CodeInternal.
func ErrorToCode(err error) Code {
	if err == nil {
		return CodeOK
	}
	var ce *CodeError
	if errors.As(err, &ce) {
		return ce.Code
	}
	for _, c := range codeOrder {
		if errors.Is(err, codeErrors[c]) {
			return c
		}
	}
	switch {
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrBatchTooLarge):
		return CodeTooLarge
	case errors.Is(err, ErrMalformed):
		return CodeBadRequest
	case errors.Is(err, context.DeadlineExceeded):
		return CodeUnavailable
	}
	return CodeInternal
}

// CodeToError turns a received code and message into an error; CodeOK is nil.
func CodeToError(c Code, msg string) error {
	if c == CodeOK {
		return nil
	}
	return &CodeError{Code: c, Message: msg}
}

// QUIC application error codes used to close a connection. They equal the wire code of the reason
// so a peer can map a close back with CodeToError(Code(appErr.ErrorCode), appErr.ErrorMessage).
const (
	CloseNoError            quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeOK)
	CloseBadRequest         quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeBadRequest)
	CloseSiteMismatch       quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeSiteMismatch)
	CloseVersionUnsupported quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeVersionUnsupported)
	CloseInternal           quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeInternal)
	CloseUnauthenticated    quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeUnauthenticated)
	CloseForbidden          quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeForbidden)
	CloseShuttingDown       quic.ApplicationErrorCode = quic.ApplicationErrorCode(CodeShuttingDown)
)

// CloseCode is the QUIC application error code for closing a connection because of err.
func CloseCode(err error) quic.ApplicationErrorCode {
	return quic.ApplicationErrorCode(ErrorToCode(err))
}

// FromCloseError converts a QUIC application close received from the peer into a CodeError, so
// callers can use errors.Is(err, ErrSiteMismatch). Other errors are returned unchanged.
func FromCloseError(err error) error {
	var ae *quic.ApplicationError
	if errors.As(err, &ae) && ae.Remote && ae.ErrorCode != CloseNoError {
		return fmt.Errorf("connection closed by peer: %w", CodeToError(Code(ae.ErrorCode), ae.ErrorMessage))
	}
	return err
}
