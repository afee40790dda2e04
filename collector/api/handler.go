package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/klauspost/compress/zstd"

	"github.com/edgesync/edgesync/collector/record"
)

// Backend does the work behind the handler. relay.Node implements it.
// Errors are the package's sentinel and typed errors (errors.go); anything
// else is a 500.
type Backend interface {
	Enroll(ctx context.Context, req EnrollRequest) (EnrollResponse, error)
	Authenticate(ctx context.Context, deviceID, token string) error
	// Report stores recs, which are validated, belong to deviceID and
	// carry no relay-set fields.
	Report(ctx context.Context, deviceID string, recs []record.Record) (ReportResponse, error)
	Config(ctx context.Context, deviceID string) (Config, error)
}

// Header names.
const (
	HeaderDevice          = "X-Edgesync-Device"
	HeaderContentEncoding = "Content-Encoding"
	HeaderRetryAfter      = "Retry-After"
)

// Paths the handler serves.
const (
	PathEnroll  = "/v1/enroll"
	PathReports = "/v1/reports"
	PathConfig  = "/v1/config"
)

// Handler defaults.
const (
	DefaultMaxBodyBytes       = 8 << 20
	DefaultMaxRecordsPerBatch = 1000
	maxEnrollBodyBytes        = 64 << 10
)

// HandlerConfig configures NewHandler. Zero fields take defaults.
type HandlerConfig struct {
	MaxBodyBytes       int64 // cap on the (decompressed) request body
	Limits             record.Limits
	MaxRecordsPerBatch int
	Now                func() time.Time
	Logger             *slog.Logger
}

// DefaultHandlerConfig returns the defaults.
func DefaultHandlerConfig() HandlerConfig {
	return HandlerConfig{
		MaxBodyBytes:       DefaultMaxBodyBytes,
		Limits:             record.DefaultLimits(),
		MaxRecordsPerBatch: DefaultMaxRecordsPerBatch,
		Now:                time.Now,
		Logger:             slog.Default(),
	}
}

func (c HandlerConfig) withDefaults() HandlerConfig {
	d := DefaultHandlerConfig()
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.Limits.MaxRecordBytes <= 0 {
		c.Limits.MaxRecordBytes = d.Limits.MaxRecordBytes
	}
	if c.Limits.MaxSkew <= 0 {
		c.Limits.MaxSkew = d.Limits.MaxSkew
	}
	if c.MaxRecordsPerBatch <= 0 {
		c.MaxRecordsPerBatch = d.MaxRecordsPerBatch
	}
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

type handler struct {
	b   Backend
	cfg HandlerConfig
}

// NewHandler returns the agent API: POST /v1/enroll, POST /v1/reports and
// GET /v1/config.
func NewHandler(b Backend, cfg HandlerConfig) http.Handler {
	h := &handler{b: b, cfg: cfg.withDefaults()}
	mux := http.NewServeMux()
	mux.HandleFunc(PathEnroll, h.method(http.MethodPost, h.enroll))
	mux.HandleFunc(PathReports, h.method(http.MethodPost, h.reports))
	mux.HandleFunc(PathConfig, h.method(http.MethodGet, h.config))
	mux.HandleFunc(PathTasks, h.method(http.MethodGet, h.tasks)) // tasks.go; 404 unless b is a TaskBackend
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, Error{Code: CodeNotFound, Message: "no such endpoint"})
	})
	return mux
}

func (h *handler) method(m string, fn http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != m {
			w.Header().Set("Allow", m)
			writeError(w, http.StatusMethodNotAllowed, Error{Code: CodeMethodNotAllowed, Message: "use " + m})
			return
		}
		fn(w, r)
	}
}

// apiError is a response decided inside the handler.
type apiError struct {
	status int
	body   Error
}

func (e *apiError) Error() string { return e.body.Code + ": " + e.body.Message }

func reqErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, body: Error{Code: code, Message: fmt.Sprintf(format, args...)}}
}

func (h *handler) enroll(w http.ResponseWriter, r *http.Request) {
	var req EnrollRequest
	if err := h.decodeBody(w, r, maxEnrollBodyBytes, &req); err != nil {
		h.fail(w, r, err, nil)
		return
	}
	if req.JoinToken == "" {
		h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "join_token is required"), nil)
		return
	}
	if req.DeviceID != "" && !record.ValidDeviceID(req.DeviceID) {
		h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "device_id must be 32 lowercase hex characters"), nil)
		return
	}
	if req.Hostname == "" || hasControl(req.Hostname) || hasControl(req.OS) || hasControl(req.Arch) {
		h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "hostname is required; no control characters"), nil)
		return
	}
	resp, err := h.b.Enroll(r.Context(), req)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) reports(w http.ResponseWriter, r *http.Request) {
	device, err := h.authenticate(r)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	var req ReportRequest
	if err := h.decodeBody(w, r, h.cfg.MaxBodyBytes, &req); err != nil {
		h.fail(w, r, err, nil)
		return
	}
	if len(req.Records) == 0 {
		h.fail(w, r, reqErr(http.StatusBadRequest, CodeInvalidRequest, "no records"), nil)
		return
	}
	if len(req.Records) > h.cfg.MaxRecordsPerBatch {
		h.fail(w, r, reqErr(http.StatusRequestEntityTooLarge, CodeTooManyRecords,
			"%d records, limit %d per request", len(req.Records), h.cfg.MaxRecordsPerBatch), nil)
		return
	}
	now := h.cfg.Now()
	var bad []RecordError
	tooLarge := false
	for i := range req.Records {
		rec := &req.Records[i]
		// Relay-set provenance is ours to fill, never the agent's.
		rec.ReceivedAt, rec.Channel, rec.SiteID, rec.RelayNode, rec.SiteSeq, rec.BundleID = time.Time{}, "", "", "", 0, ""
		if err := record.Validate(rec, now, h.cfg.Limits); err != nil {
			re := RecordError{Index: i, Seq: rec.Seq, Code: CodeInvalidRecord, Reason: err.Error()}
			var ve *record.ValidationError
			if errors.As(err, &ve) {
				re.Code, re.Reason = ve.Code, ve.Reason
				tooLarge = tooLarge || ve.Code == record.CodeTooLarge
			}
			bad = append(bad, re)
			continue
		}
		if rec.DeviceID != device {
			bad = append(bad, RecordError{Index: i, Seq: rec.Seq, Code: CodeDeviceMismatch,
				Reason: "device_id is not the authenticated device"})
		}
	}
	if len(bad) > 0 {
		e := reqErr(http.StatusBadRequest, CodeInvalidRecord, "%d of %d records invalid; none stored", len(bad), len(req.Records))
		if tooLarge {
			e.status, e.body.Code = http.StatusRequestEntityTooLarge, CodeRecordTooLarge
		}
		e.body.Records = bad
		h.fail(w, r, e, nil)
		return
	}
	resp, err := h.b.Report(r.Context(), device, req.Records)
	if err != nil {
		h.fail(w, r, err, req.Records)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handler) config(w http.ResponseWriter, r *http.Request) {
	device, err := h.authenticate(r)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	cfg, err := h.b.Config(r.Context(), device)
	if err != nil {
		h.fail(w, r, err, nil)
		return
	}
	writeJSON(w, http.StatusOK, cfg)
}

func (h *handler) authenticate(r *http.Request) (string, error) {
	device := r.Header.Get(HeaderDevice)
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !record.ValidDeviceID(device) || !ok || token == "" {
		return "", ErrUnauthorized
	}
	if err := h.b.Authenticate(r.Context(), device, token); err != nil {
		return "", err
	}
	return device, nil
}

// decodeBody reads the body (capped, optionally zstd) and decodes exactly one
// JSON object into v, refusing unknown fields, trailing data and invalid
// UTF-8.
func (h *handler) decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	if r.ContentLength > limit {
		return reqErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "body is %d bytes, limit %d", r.ContentLength, limit)
	}
	var body io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get(HeaderContentEncoding))); enc {
	case "", "identity":
	case "zstd":
		dec, err := zstd.NewReader(body, zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderMaxMemory(uint64(limit)), zstd.WithDecoderMaxWindow(uint64(min(limit, 64<<20))))
		if err != nil {
			return fmt.Errorf("new zstd reader: %w", err)
		}
		defer dec.Close()
		body = dec
	default:
		return reqErr(http.StatusUnsupportedMediaType, CodeUnsupportedEncoding, "content encoding %.32q not supported", enc)
	}
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return reqErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "body over %d bytes", limit)
		}
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return reqErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "decompressed body over %d bytes", limit)
		}
		var ae *apiError
		if errors.As(err, &ae) {
			return ae
		}
		return reqErr(http.StatusBadRequest, CodeBadEncoding, "read body: %v", err)
	}
	if int64(len(b)) > limit {
		return reqErr(http.StatusRequestEntityTooLarge, CodeTooLarge, "decompressed body over %d bytes", limit)
	}
	if !utf8.Valid(b) {
		return reqErr(http.StatusBadRequest, CodeInvalidUTF8, "body is not valid UTF-8")
	}
	if t := bytes.TrimLeft(b, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return reqErr(http.StatusBadRequest, CodeMalformedJSON, "body must be one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if f, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return reqErr(http.StatusBadRequest, CodeUnknownField, "unknown field %.64s", f)
		}
		return reqErr(http.StatusBadRequest, CodeMalformedJSON, "%v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return reqErr(http.StatusBadRequest, CodeMalformedJSON, "trailing data after the JSON object")
	}
	return nil
}

// fail writes err as an Error body. recs, when given, lets a conflict name
// the index of the record.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error, recs []record.Record) {
	var (
		ae *apiError
		ce *ConflictError
		bp *BackpressureError
	)
	switch {
	case errors.As(err, &ae):
		writeError(w, ae.status, ae.body)
	case errors.Is(err, ErrUnauthorized):
		writeError(w, http.StatusUnauthorized, Error{Code: CodeUnauthorized, Message: "unknown device or bad token"})
	case errors.Is(err, ErrInvalidJoinToken):
		writeError(w, http.StatusForbidden, Error{Code: CodeInvalidJoinToken, Message: "join token refused"})
	case errors.As(err, &ce):
		e := Error{Code: CodeConflict, Message: ce.Error()}
		idx := -1
		for i := range recs {
			if recs[i].Seq == ce.Seq {
				idx = i
				break
			}
		}
		e.Records = []RecordError{{Index: idx, Seq: ce.Seq, Code: CodeConflict, Reason: "seq already stored with different content"}}
		writeError(w, http.StatusConflict, e)
	case errors.Is(err, ErrConflict):
		writeError(w, http.StatusConflict, Error{Code: CodeConflict, Message: err.Error()})
	case errors.As(err, &bp):
		w.Header().Set(HeaderRetryAfter, strconv.Itoa(retryAfterSeconds(bp.RetryAfter)))
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeBackpressure, Message: bp.Reason})
	case errors.Is(err, ErrUnavailable):
		w.Header().Set(HeaderRetryAfter, "1")
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "relay unavailable, try another node"})
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// The agent went away; nobody reads the answer.
		writeError(w, http.StatusServiceUnavailable, Error{Code: CodeUnavailable, Message: "request canceled"})
	default:
		h.cfg.Logger.ErrorContext(r.Context(), "Agent API request failed", slog.String("path", r.URL.Path), slog.Any("error", err))
		writeError(w, http.StatusInternalServerError, Error{Code: CodeInternal, Message: "internal error"})
		return
	}
	h.cfg.Logger.DebugContext(r.Context(), "Agent API request refused", slog.String("path", r.URL.Path), slog.Any("error", err))
}

func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	return max(s, 1)
}

func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return true
		}
	}
	return !utf8.ValidString(s)
}

func writeError(w http.ResponseWriter, status int, e Error) {
	writeJSON(w, status, e)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"code":"internal","message":"encode response"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
