package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/api/apitest"
	"github.com/edgesync/edgesync/collector/record"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type testEnv struct {
	b      *apitest.Backend
	h      http.Handler
	tok    api.JoinToken
	device string
	token  string
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	tok := api.NewJoinToken("site-a", strings.Repeat("ab", 32))
	b := apitest.NewBackend(tok)
	h := api.NewHandler(b, api.HandlerConfig{
		Now:                func() time.Time { return testNow },
		MaxBodyBytes:       1 << 20,
		Limits:             record.Limits{MaxRecordBytes: 4096},
		MaxRecordsPerBatch: 10,
	})
	resp, err := b.Enroll(context.Background(), api.EnrollRequest{JoinToken: tok.String(), Hostname: "pc"})
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{b: b, h: h, tok: tok, device: resp.DeviceID, token: resp.DeviceToken}
}

func (e *testEnv) rec(seq uint64, payload string) record.Record {
	return record.Record{
		DeviceID: e.device, Seq: seq, Kind: record.KindInventory,
		CollectedAt: testNow.Add(-time.Minute), Schema: record.SchemaVersion,
		Payload: json.RawMessage(payload),
	}
}

func (e *testEnv) body(t *testing.T, recs ...record.Record) []byte {
	t.Helper()
	b, err := json.Marshal(api.ReportRequest{Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *testEnv) do(t *testing.T, method, path string, body []byte, hdr map[string]string) (*httptest.ResponseRecorder, api.Error) {
	t.Helper()
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	if path != api.PathEnroll {
		req.Header.Set(api.HeaderDevice, e.device)
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	var apiErr api.Error
	if w.Code != http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &apiErr); err != nil {
			t.Fatalf("error body %q is not an api.Error: %v", w.Body.String(), err)
		}
	}
	return w, apiErr
}

const inv = `{"hostname":"pc","os":{"name":"Linux"},"hardware":{}}`

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func TestHandler_Reports(t *testing.T) {
	type tc struct {
		name       string
		method     string
		body       func(e *testEnv) []byte
		hdr        func(e *testEnv) map[string]string
		setup      func(e *testEnv)
		wantStatus int
		wantCode   string
		wantRecs   []string // codes of Error.Records
	}
	ok := func(e *testEnv) []byte { return e.body(t, e.rec(1, inv), e.rec(2, inv)) }
	tests := []tc{
		{name: "ok", body: ok, wantStatus: 200},
		{name: "ok zstd", body: func(e *testEnv) []byte { return zstdBytes(t, ok(e)) },
			hdr: func(*testEnv) map[string]string { return map[string]string{"Content-Encoding": "zstd"} }, wantStatus: 200},
		{name: "wrong method", method: http.MethodGet, body: ok, wantStatus: 405, wantCode: api.CodeMethodNotAllowed},
		{name: "malformed json", body: func(*testEnv) []byte { return []byte(`{"records":[`) }, wantStatus: 400, wantCode: api.CodeMalformedJSON},
		{name: "not an object", body: func(*testEnv) []byte { return []byte(`[]`) }, wantStatus: 400, wantCode: api.CodeMalformedJSON},
		{name: "trailing data", body: func(e *testEnv) []byte { return append(ok(e), []byte(`{}`)...) }, wantStatus: 400, wantCode: api.CodeMalformedJSON},
		{name: "unknown top field", body: func(*testEnv) []byte { return []byte(`{"records":[],"x":1}`) }, wantStatus: 400, wantCode: api.CodeUnknownField},
		{name: "unknown record field", body: func(e *testEnv) []byte {
			return []byte(`{"records":[{"device_id":"` + e.device + `","seq":1,"bogus":true}]}`)
		}, wantStatus: 400, wantCode: api.CodeUnknownField},
		{name: "invalid utf8 body", body: func(e *testEnv) []byte {
			return bytes.Replace(e.body(t, e.rec(1, `{"hostname":"pcX"}`)), []byte("pcX"), []byte("pc\xff"), 1)
		}, wantStatus: 400, wantCode: api.CodeInvalidUTF8},
		{name: "empty batch", body: func(e *testEnv) []byte { return e.body(t) }, wantStatus: 400, wantCode: api.CodeInvalidRequest},
		{name: "too many records", body: func(e *testEnv) []byte {
			var rs []record.Record
			for i := range 11 {
				rs = append(rs, e.rec(uint64(i+1), inv))
			}
			return e.body(t, rs...)
		}, wantStatus: 413, wantCode: api.CodeTooManyRecords},
		{name: "body too large", body: func(e *testEnv) []byte {
			return []byte(`{"records":[],"pad":"` + strings.Repeat("x", 1<<20) + `"}`)
		}, wantStatus: 413, wantCode: api.CodeTooLarge},
		{name: "zstd bomb", body: func(e *testEnv) []byte {
			return zstdBytes(t, []byte(`{"records":[],"pad":"`+strings.Repeat("x", 4<<20)+`"}`))
		}, hdr: func(*testEnv) map[string]string { return map[string]string{"Content-Encoding": "zstd"} },
			wantStatus: 413, wantCode: api.CodeTooLarge},
		{name: "bad zstd", body: func(*testEnv) []byte { return []byte("not zstd at all") },
			hdr:        func(*testEnv) map[string]string { return map[string]string{"Content-Encoding": "zstd"} },
			wantStatus: 400, wantCode: api.CodeBadEncoding},
		{name: "gzip unsupported", body: ok,
			hdr:        func(*testEnv) map[string]string { return map[string]string{"Content-Encoding": "gzip"} },
			wantStatus: 415, wantCode: api.CodeUnsupportedEncoding},
		{name: "oversized record", body: func(e *testEnv) []byte {
			return e.body(t, e.rec(1, inv), e.rec(2, `{"hostname":"`+strings.Repeat("a", 5000)+`"}`))
		}, wantStatus: 413, wantCode: api.CodeRecordTooLarge, wantRecs: []string{record.CodeTooLarge}},
		{name: "control characters", body: func(e *testEnv) []byte {
			return e.body(t, e.rec(1, `{"hostname":"pc\u0007"}`))
		}, wantStatus: 400, wantCode: api.CodeInvalidRecord, wantRecs: []string{record.CodeControlChars}},
		{name: "several invalid", body: func(e *testEnv) []byte {
			r3 := e.rec(3, inv)
			r3.DeviceID = record.NewDeviceID()
			r4 := e.rec(4, inv)
			r4.CollectedAt = testNow.Add(time.Hour)
			return e.body(t, e.rec(0, inv), e.rec(2, inv), r3, r4)
		}, wantStatus: 400, wantCode: api.CodeInvalidRecord,
			wantRecs: []string{record.CodeBadSeq, api.CodeDeviceMismatch, record.CodeFutureTime}},
		{name: "bad token", body: ok, hdr: func(*testEnv) map[string]string {
			return map[string]string{"Authorization": "Bearer nope"}
		}, wantStatus: 401, wantCode: api.CodeUnauthorized},
		{name: "no auth", body: ok, hdr: func(*testEnv) map[string]string {
			return map[string]string{"Authorization": "", api.HeaderDevice: ""}
		}, wantStatus: 401, wantCode: api.CodeUnauthorized},
		{name: "conflict", setup: func(e *testEnv) {
			if _, err := e.b.Report(context.Background(), e.device, []record.Record{e.rec(2, `{"hostname":"other"}`)}); err != nil {
				t.Fatal(err)
			}
		}, body: ok, wantStatus: 409, wantCode: api.CodeConflict, wantRecs: []string{api.CodeConflict}},
		{name: "backpressure", setup: func(e *testEnv) {
			e.b.SetReportError(&api.BackpressureError{RetryAfter: 1500 * time.Millisecond, Reason: "disk critical"})
		}, body: ok, wantStatus: 503, wantCode: api.CodeBackpressure},
		{name: "no leader", setup: func(e *testEnv) { e.b.SetReportError(fmt.Errorf("propose: %w", api.ErrUnavailable)) },
			body: ok, wantStatus: 503, wantCode: api.CodeUnavailable},
		{name: "internal", setup: func(e *testEnv) { e.b.SetReportError(errors.New("disk on fire")) },
			body: ok, wantStatus: 500, wantCode: api.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			if tt.setup != nil {
				tt.setup(e)
			}
			method := tt.method
			if method == "" {
				method = http.MethodPost
			}
			var hdr map[string]string
			if tt.hdr != nil {
				hdr = tt.hdr(e)
			}
			calls := e.b.ReportCalls()
			w, apiErr := e.do(t, method, api.PathReports, tt.body(e), hdr)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d (%s), want %d", w.Code, w.Body.String(), tt.wantStatus)
			}
			if apiErr.Code != tt.wantCode {
				t.Fatalf("code = %q (%s), want %q", apiErr.Code, apiErr.Message, tt.wantCode)
			}
			var codes []string
			for _, r := range apiErr.Records {
				codes = append(codes, r.Code)
			}
			if strings.Join(codes, ",") != strings.Join(tt.wantRecs, ",") {
				t.Fatalf("record codes = %v, want %v", codes, tt.wantRecs)
			}
			if tt.wantStatus >= 400 && tt.wantStatus < 500 && tt.wantStatus != 409 && e.b.ReportCalls() != calls {
				t.Fatal("a refused request reached the backend")
			}
			if tt.wantStatus == 503 && tt.wantCode == api.CodeBackpressure && w.Header().Get("Retry-After") != "2" {
				t.Fatalf("Retry-After = %q, want 2", w.Header().Get("Retry-After"))
			}
			if tt.wantStatus == 200 {
				var resp api.ReportResponse
				if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
					t.Fatal(err)
				}
				if resp.AckedSeq != 2 || resp.Accepted != 2 {
					t.Fatalf("response = %+v", resp)
				}
			}
		})
	}
}

func TestHandler_ReportsDuplicateAndProvenance(t *testing.T) {
	e := newTestEnv(t)
	r := e.rec(1, inv)
	r.SiteID = "forged"
	r.SiteSeq = 99
	for i, wantDup := range []int{0, 1} {
		w, _ := e.do(t, http.MethodPost, api.PathReports, e.body(t, r), nil)
		if w.Code != 200 {
			t.Fatalf("attempt %d: status %d %s", i, w.Code, w.Body.String())
		}
		var resp api.ReportResponse
		_ = json.Unmarshal(w.Body.Bytes(), &resp)
		if resp.Duplicate != wantDup || resp.AckedSeq != 1 {
			t.Fatalf("attempt %d: %+v", i, resp)
		}
	}
	got := e.b.Records(e.device)
	if len(got) != 1 || got[0].SiteID != "site-a" || got[0].SiteSeq != 0 {
		t.Fatalf("stored %+v: agent-set provenance must be cleared", got)
	}
}

func TestHandler_Enroll(t *testing.T) {
	e := newTestEnv(t)
	enroll := func(req api.EnrollRequest) (*httptest.ResponseRecorder, api.Error) {
		b, _ := json.Marshal(req)
		return e.do(t, http.MethodPost, api.PathEnroll, b, nil)
	}
	keep := record.NewDeviceID()
	w, _ := enroll(api.EnrollRequest{JoinToken: e.tok.String(), DeviceID: keep, Hostname: "pc-2"})
	if w.Code != 200 {
		t.Fatalf("enroll: %d %s", w.Code, w.Body.String())
	}
	var resp api.EnrollResponse
	_ = json.Unmarshal(w.Body.Bytes(), &resp)
	if resp.DeviceID != keep || resp.DeviceToken == "" || resp.SiteID != "site-a" {
		t.Fatalf("enroll response %+v", resp)
	}
	other := api.NewJoinToken("site-a", e.tok.CAFingerprint)
	for name, tt := range map[string]struct {
		req        api.EnrollRequest
		wantStatus int
		wantCode   string
	}{
		"wrong secret":  {api.EnrollRequest{JoinToken: other.String(), Hostname: "pc"}, 403, api.CodeInvalidJoinToken},
		"garbage token": {api.EnrollRequest{JoinToken: "esj1.x", Hostname: "pc"}, 403, api.CodeInvalidJoinToken},
		"no token":      {api.EnrollRequest{Hostname: "pc"}, 400, api.CodeInvalidRequest},
		"bad device":    {api.EnrollRequest{JoinToken: e.tok.String(), DeviceID: "XYZ", Hostname: "pc"}, 400, api.CodeInvalidRequest},
		"no hostname":   {api.EnrollRequest{JoinToken: e.tok.String()}, 400, api.CodeInvalidRequest},
	} {
		t.Run(name, func(t *testing.T) {
			w, apiErr := enroll(tt.req)
			if w.Code != tt.wantStatus || apiErr.Code != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q", w.Code, apiErr.Code, tt.wantStatus, tt.wantCode)
			}
		})
	}
}

func TestHandler_Config(t *testing.T) {
	e := newTestEnv(t)
	w, _ := e.do(t, http.MethodGet, api.PathConfig, nil, nil)
	if w.Code != 200 {
		t.Fatalf("config: %d %s", w.Code, w.Body.String())
	}
	var cfg api.Config
	_ = json.Unmarshal(w.Body.Bytes(), &cfg)
	if cfg.InventoryIntervalSeconds != 3600 {
		t.Fatalf("config %+v", cfg)
	}
	if w, _ := e.do(t, http.MethodPost, api.PathConfig, nil, nil); w.Code != 405 {
		t.Fatalf("POST config: %d", w.Code)
	}
	if w, apiErr := e.do(t, http.MethodGet, "/v1/nope", nil, nil); w.Code != 404 || apiErr.Code != api.CodeNotFound {
		t.Fatalf("unknown path: %d %q", w.Code, apiErr.Code)
	}
}

func FuzzReportsHandler(f *testing.F) {
	e := &testEnv{}
	tok := api.NewJoinToken("site-a", strings.Repeat("ab", 32))
	e.b = apitest.NewBackend(tok)
	e.h = api.NewHandler(e.b, api.HandlerConfig{Now: func() time.Time { return testNow }, Logger: nil})
	resp, _ := e.b.Enroll(context.Background(), api.EnrollRequest{JoinToken: tok.String(), Hostname: "pc"})
	e.device, e.token = resp.DeviceID, resp.DeviceToken
	seed, _ := json.Marshal(api.ReportRequest{Records: []record.Record{e.rec(1, inv)}})
	f.Add(seed, false)
	f.Add([]byte(`{"records":[{"device_id":"`+e.device+`","seq":2,"kind":"oplog","collected_at":"2026-03-01T11:00:00Z","schema":1,"payload":{"a":"\u0000"}}]}`), false)
	f.Add([]byte(`{"records":null}`), false)
	f.Add([]byte("\x28\xb5\x2f\xfd\x00\x58\x00\x00"), true)
	f.Add([]byte(`{"records":[{}]} {}`), false)
	f.Fuzz(func(t *testing.T, body []byte, compressed bool) {
		req := httptest.NewRequest(http.MethodPost, api.PathReports, bytes.NewReader(body))
		req.Header.Set(api.HeaderDevice, e.device)
		req.Header.Set("Authorization", "Bearer "+e.token)
		if compressed {
			req.Header.Set("Content-Encoding", "zstd")
		}
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, req)
		if w.Code >= 500 {
			t.Fatalf("status %d for body %q: %s", w.Code, body, w.Body.String())
		}
		if w.Code != 200 {
			var apiErr api.Error
			if err := json.NewDecoder(io.LimitReader(w.Body, 1<<20)).Decode(&apiErr); err != nil || apiErr.Code == "" {
				t.Fatalf("error body %q: %v", w.Body.String(), err)
			}
		}
	})
}
