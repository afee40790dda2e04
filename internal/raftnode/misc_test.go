package raftnode

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorCodes_RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"not leader", &NotLeaderError{Leader: "http://l"}},
		{"no leader", ErrNoLeader},
		{"shutdown", ErrShutdown},
		{"timeout", ErrTimeout},
		{"leadership lost", ErrLeadershipLost},
		{"bad request", ErrBadRequest},
		{"unknown member", ErrUnknownMember},
		{"forbidden", ErrForbidden},
		{"wrong cluster", ErrWrongCluster},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var leader string
			var nle *NotLeaderError
			if errors.As(tt.err, &nle) {
				leader = nle.Leader
			}
			code := errorToCode(tt.err)
			got := codeToError(code, tt.err.Error(), leader)
			if !errors.Is(got, tt.err) && !(errors.Is(tt.err, ErrNotLeader) && errors.Is(got, ErrNotLeader)) {
				t.Fatalf("round trip %v -> %d -> %v", tt.err, code, got)
			}
			if errors.As(got, &nle) && nle.Leader != "http://l" {
				t.Errorf("leader lost in round trip: %q", nle.Leader)
			}
		})
	}
	wc := fmt.Errorf("%w: member of cluster a, joiner of b", ErrWrongCluster)
	if got := codeToError(errorToCode(wc), wc.Error(), ""); got.Error() != wc.Error() {
		t.Errorf("wrong-cluster message after the round trip: %q, want %q", got, wc)
	}
	if c := errorToCode(errors.New("boom")); c != codeInternal {
		t.Errorf("unknown error code = %d", c)
	}
}

func TestConfig_Validate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.NodeID, c.Dir, c.RaftAddr, c.HTTPAddr = "n1", "/tmp/x", "127.0.0.1:7000", "http://127.0.0.1:8080"
		return c
	}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"ok", func(*Config) {}, ""},
		{"no id", func(c *Config) { c.NodeID = "" }, "NodeID"},
		{"bad http", func(c *Config) { c.HTTPAddr = "127.0.0.1:8080" }, "HTTPAddr"},
		{"lease > heartbeat", func(c *Config) { c.LeaderLeaseTimeout = 2 * c.HeartbeatTimeout }, "LeaderLeaseTimeout"},
		{"election < heartbeat", func(c *Config) { c.ElectionTimeout = c.HeartbeatTimeout / 2 }, "ElectionTimeout"},
		{"no append entries", func(c *Config) { c.MaxAppendEntries = 0 }, "MaxAppendEntries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate() = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate() = %v, want mention of %s", err, tt.wantErr)
			}
		})
	}
}

func TestCommand_MetaRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"set", encodeMeta(metaCmd{op: opSetMeta, id: "n1", httpAddr: "https://a:1"}), true},
		{"delete", encodeMeta(metaCmd{op: opDeleteMeta, id: "n1"}), true},
		{"app", frameApp([]byte("x")), true},
		{"empty", nil, false},
		{"unknown type", []byte{7, 1}, false},
		{"unknown op", []byte{0, 9, 1, 'a'}, false},
		{"empty id", []byte{0, 1, 0, 0}, false},
		{"trailing", append(encodeMeta(metaCmd{op: opDeleteMeta, id: "n1"}), 'x'), false},
		{"truncated", encodeMeta(metaCmd{op: opSetMeta, id: "n1", httpAddr: "https://a:1"})[:6], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateEntry(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("validateEntry = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrBadRequest) {
				t.Errorf("err %v is not ErrBadRequest", err)
			}
		})
	}
	m, err := decodeMeta(encodeMeta(metaCmd{op: opSetMeta, id: "n1", httpAddr: "https://a:1"})[1:])
	if err != nil || m.id != "n1" || m.httpAddr != "https://a:1" {
		t.Errorf("decodeMeta = %+v, %v", m, err)
	}
}
