package record

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

const testDevice = "0123456789abcdef0123456789abcdef"

func validRecord() Record {
	return Record{
		DeviceID:    testDevice,
		Seq:         1,
		Kind:        KindInventory,
		CollectedAt: testNow.Add(-time.Minute),
		Schema:      SchemaVersion,
		Payload:     json.RawMessage(`{"hostname":"pc-01","os":{"name":"Debian"},"hardware":{}}`),
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		mutate   func(r *Record)
		lim      Limits
		wantCode string // "" means valid
	}{
		{name: "valid inventory", mutate: func(*Record) {}},
		{name: "valid event", mutate: func(r *Record) {
			r.Kind = KindEvent
			r.Payload = json.RawMessage(`{"number":211,"severity":"Warning","type":"Error","message":"tab\there\r\n"}`)
		}},
		{name: "valid task status", mutate: func(r *Record) {
			r.Kind = KindTaskStatus
			r.Payload = json.RawMessage(`{"task_id":"t1","status":"done"}`)
		}},
		{name: "valid oplog free form", mutate: func(r *Record) {
			r.Kind = KindOplog
			r.Payload = json.RawMessage(`{"anything":[1,2,{"x":null}]}`)
		}},
		{name: "slight future within skew", mutate: func(r *Record) { r.CollectedAt = testNow.Add(9 * time.Minute) }},
		{name: "uppercase device id", mutate: func(r *Record) { r.DeviceID = strings.ToUpper(testDevice) }, wantCode: CodeBadDeviceID},
		{name: "short device id", mutate: func(r *Record) { r.DeviceID = "abc" }, wantCode: CodeBadDeviceID},
		{name: "zero seq", mutate: func(r *Record) { r.Seq = 0 }, wantCode: CodeBadSeq},
		{name: "unknown kind", mutate: func(r *Record) { r.Kind = "weird" }, wantCode: CodeBadKind},
		{name: "bad schema", mutate: func(r *Record) { r.Schema = 2 }, wantCode: CodeBadSchema},
		{name: "zero time", mutate: func(r *Record) { r.CollectedAt = time.Time{} }, wantCode: CodeBadTime},
		{name: "future time", mutate: func(r *Record) { r.CollectedAt = testNow.Add(11 * time.Minute) }, wantCode: CodeFutureTime},
		{name: "custom skew", mutate: func(r *Record) { r.CollectedAt = testNow.Add(2 * time.Minute) },
			lim: Limits{MaxSkew: time.Minute}, wantCode: CodeFutureTime},
		{name: "too large", mutate: func(r *Record) {
			r.Payload = json.RawMessage(`{"hostname":"` + strings.Repeat("a", 300) + `"}`)
		}, lim: Limits{MaxRecordBytes: 200}, wantCode: CodeTooLarge},
		{name: "escaped control char", mutate: func(r *Record) {
			r.Payload = json.RawMessage(`{"hostname":"pc\u0001"}`)
		}, wantCode: CodeControlChars},
		{name: "control char in key", mutate: func(r *Record) {
			r.Kind = KindOplog
			r.Payload = json.RawMessage(`{"k\u001b":"v"}`)
		}, wantCode: CodeControlChars},
		{name: "C1 control char", mutate: func(r *Record) {
			r.Payload = json.RawMessage("{\"hostname\":\"pc\u0085\"}")
		}, wantCode: CodeControlChars},
		{name: "invalid utf8", mutate: func(r *Record) {
			r.Payload = json.RawMessage("{\"hostname\":\"pc\xff\"}")
		}, wantCode: CodeInvalidUTF8},
		{name: "not json", mutate: func(r *Record) { r.Payload = json.RawMessage(`{"hostname":`) }, wantCode: CodeBadPayload},
		{name: "array payload", mutate: func(r *Record) { r.Payload = json.RawMessage(`[1]`) }, wantCode: CodeBadPayload},
		{name: "missing payload", mutate: func(r *Record) { r.Payload = nil }, wantCode: CodeBadPayload},
		{name: "null payload", mutate: func(r *Record) { r.Payload = json.RawMessage(`null`) }, wantCode: CodeBadPayload},
		{name: "unknown inventory field", mutate: func(r *Record) {
			r.Payload = json.RawMessage(`{"hostname":"pc","extra":1}`)
		}, wantCode: CodeBadPayload},
		{name: "wrong type in inventory", mutate: func(r *Record) {
			r.Payload = json.RawMessage(`{"hostname":5}`)
		}, wantCode: CodeBadPayload},
		{name: "unknown event field", mutate: func(r *Record) {
			r.Kind = KindEvent
			r.Payload = json.RawMessage(`{"number":1,"bogus":true}`)
		}, wantCode: CodeBadPayload},
		{name: "task status without id", mutate: func(r *Record) {
			r.Kind = KindTaskStatus
			r.Payload = json.RawMessage(`{"status":"done"}`)
		}, wantCode: CodeBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := validRecord()
			tt.mutate(&r)
			err := Validate(&r, testNow, tt.lim)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError %s", err, tt.wantCode)
			}
			if ve.Code != tt.wantCode {
				t.Fatalf("Validate() code = %s (%s), want %s", ve.Code, ve.Reason, tt.wantCode)
			}
		})
	}
}

func TestDeviceID(t *testing.T) {
	a, b := NewDeviceID(), NewDeviceID()
	if !ValidDeviceID(a) || !ValidDeviceID(b) {
		t.Fatalf("NewDeviceID() = %q, %q: not valid", a, b)
	}
	if a == b {
		t.Fatalf("NewDeviceID() returned %q twice", a)
	}
	for _, s := range []string{"", "0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcdeg", testDevice + "0"} {
		if ValidDeviceID(s) {
			t.Errorf("ValidDeviceID(%q) = true", s)
		}
	}
}

func TestHash(t *testing.T) {
	base := validRecord()
	base.Payload = json.RawMessage(`{"hostname":"a<b>&c"}`)
	h := Hash(&base)

	// Relay-set fields and JSON re-encoding do not change the hash.
	hop := base
	hop.ReceivedAt = testNow
	hop.Channel = ChannelUSB
	hop.SiteID = "s1"
	hop.SiteSeq = 42
	hop.CollectedAt = base.CollectedAt.In(time.FixedZone("JST", 9*3600))
	b, err := json.Marshal(hop)
	if err != nil {
		t.Fatal(err)
	}
	var back Record
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if Hash(&back) != h {
		t.Fatalf("hash changed across a hop: payload %s", back.Payload)
	}
	spaced := base
	spaced.Payload = json.RawMessage(`{ "hostname" : "a<b>&c" }`)
	if Hash(&spaced) != h {
		t.Fatal("hash depends on insignificant whitespace")
	}

	for name, mut := range map[string]func(r *Record){
		"device":  func(r *Record) { r.DeviceID = NewDeviceID() },
		"seq":     func(r *Record) { r.Seq++ },
		"kind":    func(r *Record) { r.Kind = KindOplog },
		"time":    func(r *Record) { r.CollectedAt = r.CollectedAt.Add(time.Nanosecond) },
		"schema":  func(r *Record) { r.Schema++ },
		"payload": func(r *Record) { r.Payload = json.RawMessage(`{"hostname":"x"}`) },
	} {
		r := base
		mut(&r)
		if Hash(&r) == h {
			t.Errorf("changing %s did not change the hash", name)
		}
	}
}

func FuzzValidate(f *testing.F) {
	r := validRecord()
	seed, _ := json.Marshal(r)
	f.Add(seed)
	f.Add([]byte(`{"device_id":"` + testDevice + `","seq":1,"kind":"event","collected_at":"2026-03-01T11:00:00Z","schema":1,"payload":{"number":1,"message":"\u0000"}}`))
	f.Add([]byte(`{"device_id":"` + testDevice + `","seq":2,"kind":"oplog","collected_at":"2026-03-01T11:00:00+09:00","schema":1,"payload":{"a":[[[[]]]]}}`))
	f.Add([]byte("{\"payload\":\"\xff\"}"))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Record
		if err := json.Unmarshal(data, &r); err != nil {
			return
		}
		err := Validate(&r, testNow, DefaultLimits())
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Code == "" {
				t.Fatalf("Validate() = %v: not a coded *ValidationError", err)
			}
		}
		_ = Hash(&r)
	})
}
