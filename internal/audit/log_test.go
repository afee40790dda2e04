package audit

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

type fakeRaft struct {
	mu   sync.Mutex
	cmds [][]byte
	fail bool
}

func (f *fakeRaft) propose(_ context.Context, cmd []byte) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return nil, errors.New("no leader")
	}
	f.cmds = append(f.cmds, cmd)
	return nil, nil
}

func (f *fakeRaft) len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cmds)
}

func newTestLog(t *testing.T, f *fakeRaft, atStart bool) (*Log, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	l := NewLog(LogConfig{Node: "n1", Propose: f.propose, Encode: func(e Entry) []byte { return EncodeFields(20, 1, e) },
		Result: func([]byte) error { return nil }, Queue: 4, MaxField: 8, DenyBurst: 2, DenyBudgetAtStart: atStart,
		DroppedHelp: "d", RecordedHelp: "r", Registerer: reg})
	return l, reg
}

func TestLog_Record(t *testing.T) {
	tests := []struct {
		name        string
		atStart     bool
		denied      int // refused-request entries recorded before Run
		plain       int
		wantQueued  int
		wantDropped float64
	}{
		{"plain entries queue", true, 0, 3, 3, 0},
		{"queue full drops", true, 0, 6, 4, 2},
		{"deny budget at start", true, 3, 0, 2, 1},
		{"no deny budget at start", false, 3, 0, 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, _ := newTestLog(t, &fakeRaft{}, tt.atStart)
			for range tt.denied {
				l.Record(Entry{Who: "anonymous", Result: ResultOf(401)}, true)
			}
			for range tt.plain {
				l.Record(Entry{Who: "token:0123456789ab", Action: "POST /x"}, false)
			}
			if len(l.q) != tt.wantQueued || counterValue(t, l.dropped) != tt.wantDropped {
				t.Fatalf("queued %d, dropped %v; want %d, %v", len(l.q), counterValue(t, l.dropped), tt.wantQueued, tt.wantDropped)
			}
		})
	}
}

func TestLog_Run(t *testing.T) {
	f := &fakeRaft{}
	l, reg := newTestLog(t, f, true)
	l.Record(Entry{Who: strings.Repeat("w", 20), Action: "POST /api/v1/x"}, false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.len() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if f.len() != 1 {
		t.Fatalf("%d commands proposed, want 1", f.len())
	}
	_, _, r, _ := cmdDecode(f.cmds[0])
	e, err := DecodeFields(r)
	if err != nil || e.Node != "n1" || e.Who != "wwwwwwww" || e.Action != "POST /ap" || e.Time.IsZero() {
		t.Fatalf("proposed %+v, %v; want node n1, clipped fields and a time", e, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if !slices.Equal(names, []string{"edgesync_audit_entries_dropped_total", "edgesync_audit_entries_recorded_total"}) {
		t.Fatalf("metrics %v: the names dashboards read changed", names)
	}
	if counterValue(t, l.written) != 1 {
		t.Fatalf("recorded %v, want 1", counterValue(t, l.written))
	}
}

// counterValue reads a counter (prometheus/testutil would need a go.sum
// entry outside this package's remit).
func counterValue(t testing.TB, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
