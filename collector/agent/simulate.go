package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
)

// SimConfig configures Simulate.
type SimConfig struct {
	Relays      []string
	JoinToken   string `json:"-"`
	Agents      int    // simulated devices
	Reports     int    // records per device
	RecordBytes int    // approximate payload size (default 1 KiB)
	Concurrency int    // devices sending at once (default min(Agents, 64))
	BatchSize   int    // records per request (default 50)
	// MaxRetryWait caps a wait between retries (default 5s).
	MaxRetryWait time.Duration
	Logger       *slog.Logger
	// Now stamps collected_at (default time.Now).
	Now func() time.Time
	// Tasks, when above 0, makes every device then poll GET /v1/tasks and
	// execute that many tasks (download with failover and resume, verify the
	// hash, report task_status records) before it is done (tasks.go).
	Tasks int
	// Devices, when set, reuses devices a previous run enrolled instead of
	// enrolling Agents new ones; they send no reports, only run Tasks.
	Devices []SimDevice `json:"-"`
}

// SimResult summarises a simulation. AckedByDevice maps each device ID to
// the highest seq the site acknowledged: the site must hold exactly seqs
// 1..AckedByDevice[d] for device d.
type SimResult struct {
	Agents        int               `json:"agents"`
	Sent          uint64            `json:"sent"`   // record transmissions, retries included
	Acked         uint64            `json:"acked"`  // records acknowledged
	Errors        uint64            `json:"errors"` // failed requests
	Duration      time.Duration     `json:"duration_ns"`
	RecordsPerSec float64           `json:"records_per_sec"`
	AckedByDevice map[string]uint64 `json:"acked_by_device"`
	// Devices can be passed to a later run (SimConfig.Devices).
	Devices []SimDevice `json:"-"`
	SimTaskStats
}

// Simulate enrolls cfg.Agents devices with the site and makes each send
// cfg.Reports inventory records in batches, retrying with failover on
// errors and honouring Retry-After, until every record is acknowledged or
// ctx is done. It returns the result so far with an error in the latter case.
func Simulate(ctx context.Context, cfg SimConfig) (SimResult, error) {
	if len(cfg.Devices) > 0 {
		cfg.Agents = len(cfg.Devices)
	}
	if cfg.Agents <= 0 || cfg.Reports < 0 || len(cfg.Relays) == 0 {
		return SimResult{}, errors.New("agent: simulate needs relays, agents > 0 and reports >= 0")
	}
	if cfg.RecordBytes <= 0 {
		cfg.RecordBytes = 1 << 10
	}
	cfg.RecordBytes = min(cfg.RecordBytes, record.DefaultMaxRecordBytes-1024)
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = min(cfg.Agents, 64)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 50
	}
	if cfg.MaxRetryWait <= 0 {
		cfg.MaxRetryWait = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	tok, err := api.ParseJoinToken(cfg.JoinToken)
	if err != nil {
		return SimResult{}, err
	}
	caPEM, err := api.FetchPinnedCA(ctx, cfg.Relays, tok.CAFingerprint)
	if err != nil {
		return SimResult{}, fmt.Errorf("agent: simulate: first contact: %w", err)
	}
	tlsConf, err := api.CATLS(caPEM)
	if err != nil {
		return SimResult{}, err
	}
	// Devices start at different relays (device i at relay i mod n, failing
	// over in ring order), as a site's agents spread over its relay nodes.
	clients := make([]*api.Client, len(cfg.Relays))
	for k := range clients {
		ring := append(append([]string{}, cfg.Relays[k:]...), cfg.Relays[:k]...)
		clients[k] = api.NewClient(ring, tlsConf)
		defer clients[k].CloseIdleConnections()
	}

	s := &sim{cfg: cfg, clients: clients, acked: make(map[string]uint64, cfg.Agents)}
	start := time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Concurrency)
	for i := range cfg.Agents {
		g.Go(func() error { return s.device(gctx, i) })
	}
	err = g.Wait()
	res := SimResult{
		Agents: cfg.Agents, Sent: s.sent.Load(), Acked: s.ackedN.Load(), Errors: s.errs.Load(),
		Duration: time.Since(start),
	}
	s.mu.Lock()
	res.AckedByDevice = s.acked
	res.Devices = s.devices
	s.mu.Unlock()
	res.SimTaskStats = s.tstats.snapshot()
	if secs := res.Duration.Seconds(); secs > 0 {
		res.RecordsPerSec = float64(res.Acked) / secs
	}
	return res, err
}

type sim struct {
	cfg     SimConfig
	clients []*api.Client // one per starting relay
	sent    atomic.Uint64
	ackedN  atomic.Uint64
	errs    atomic.Uint64

	mu sync.Mutex // protects acked
	// acked maps device ID to the highest acknowledged seq.
	acked   map[string]uint64
	devices []SimDevice

	tstats simTaskCounters // tasks.go
}

func (s *sim) device(ctx context.Context, i int) error {
	client := s.clients[i%len(s.clients)]
	host := "sim-" + strconv.Itoa(i)
	if i < len(s.cfg.Devices) {
		return s.runTasks(ctx, client, s.cfg.Devices[i]) // tasks.go
	}
	var enr api.EnrollResponse
	err := s.retry(ctx, func() error {
		var err error
		enr, err = client.Enroll(ctx, api.EnrollRequest{
			JoinToken: s.cfg.JoinToken, DeviceID: record.NewDeviceID(), Hostname: host, OS: "linux", Arch: "amd64",
		})
		return err
	})
	if err != nil {
		return fmt.Errorf("simulated device %s: enroll: %w", host, err)
	}
	s.mu.Lock()
	s.acked[enr.DeviceID] = 0
	s.mu.Unlock()
	payload, err := simPayload(host, s.cfg.RecordBytes)
	if err != nil {
		return err
	}
	acked := uint64(0)
	for acked < uint64(s.cfg.Reports) {
		n := min(uint64(s.cfg.BatchSize), uint64(s.cfg.Reports)-acked)
		recs := make([]record.Record, n)
		for j := range recs {
			recs[j] = record.Record{
				DeviceID: enr.DeviceID, Seq: acked + uint64(j) + 1, Kind: record.KindInventory,
				CollectedAt: s.cfg.Now(), Schema: record.SchemaVersion, Payload: payload,
			}
		}
		var resp api.ReportResponse
		err := s.retry(ctx, func() error {
			s.sent.Add(n)
			var err error
			resp, err = client.Report(ctx, enr.DeviceID, enr.DeviceToken, recs)
			return err
		})
		if err != nil {
			return fmt.Errorf("simulated device %s: report: %w", host, err)
		}
		if resp.AckedSeq <= acked {
			return fmt.Errorf("simulated device %s: acked seq %d did not advance past %d", host, resp.AckedSeq, acked)
		}
		s.ackedN.Add(min(resp.AckedSeq, acked+n) - acked)
		acked = min(resp.AckedSeq, acked+n)
		s.mu.Lock()
		s.acked[enr.DeviceID] = acked
		s.mu.Unlock()
	}
	d := SimDevice{ID: enr.DeviceID, Token: enr.DeviceToken, NextSeq: acked + 1}
	s.mu.Lock()
	s.devices = append(s.devices, d)
	s.mu.Unlock()
	if s.cfg.Tasks > 0 {
		return s.runTasks(ctx, client, d)
	}
	return nil
}

// retry calls fn until it succeeds, ctx is done, or it fails with an error
// retrying cannot fix (a 4xx other than backpressure).
func (s *sim) retry(ctx context.Context, fn func() error) error {
	backoff := time.Duration(0)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		s.errs.Add(1)
		if ctx.Err() != nil {
			return err
		}
		var he *api.HTTPError
		var bp *api.BackpressureError
		var wait time.Duration
		switch {
		case errors.As(err, &bp):
			wait = min(bp.RetryAfter, s.cfg.MaxRetryWait)
		case errors.As(err, &he) && he.StatusCode < 500:
			return err
		default:
			backoff = min(max(2*backoff, 50*time.Millisecond), s.cfg.MaxRetryWait)
			wait = backoff/2 + rand.N(backoff/2+1)
		}
		s.cfg.Logger.DebugContext(ctx, "Simulated request failed, will retry", slog.Duration("wait", wait), slog.Any("error", err))
		if !sleep(ctx, wait) {
			return err
		}
	}
}

// simPayload returns a valid inventory of about size bytes.
func simPayload(host string, size int) (json.RawMessage, error) {
	inv := record.Inventory{
		Hostname: host,
		OS:       record.OS{Name: "Debian GNU/Linux", Version: "12", Kernel: "6.1.0-18-amd64", Arch: "x86_64"},
		Hardware: record.Hardware{Vendor: "Simulated", Model: "SIM-1", CPUModel: "sim", CPUCores: 4, MemoryBytes: 8 << 30},
	}
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode simulated inventory: %w", err)
	}
	if pad := size - len(b) - len(`,"custom_fields":{"pad":""}`); pad > 0 {
		inv.CustomFields = map[string]string{"pad": strings.Repeat("x", pad)}
		if b, err = json.Marshal(inv); err != nil {
			return nil, fmt.Errorf("encode simulated inventory: %w", err)
		}
	}
	return b, nil
}
