package agent

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/probe"
	"github.com/edgesync/edgesync/collector/record"
)

// Errors.
var (
	// ErrNotAcked is returned by a Once run that could not get every
	// record acknowledged; the records stay in the spool.
	ErrNotAcked = errors.New("agent: not every record was acknowledged")
	// ErrNoJoinToken means the agent must enroll but has no join token.
	ErrNoJoinToken = errors.New("agent: not enrolled and no join token given")
)

// Agent is one endpoint agent. Run it once at a time.
type Agent struct {
	cfg   Config
	log   *slog.Logger
	probe func(ctx context.Context) (record.Inventory, error)

	deviceID string
	id       identity
	nextSeq  uint64
	spool    *spool
	client   *api.Client
	remote   api.Config
}

// New opens the state directory (creating it and the device ID on first run)
// and loads the spool. Enrollment and the first relay contact happen in Run.
func New(cfg Config) (*Agent, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	a := &Agent{cfg: cfg, log: cfg.Logger, probe: cfg.Probe}
	if a.probe == nil {
		a.probe = func(ctx context.Context) (record.Inventory, error) { return probe.Collect(ctx, probe.Options{}) }
	}
	var err error
	if a.deviceID, err = loadDeviceID(cfg.StateDir); err != nil {
		return nil, err
	}
	id, ok, err := loadIdentity(cfg.StateDir)
	if err != nil {
		return nil, err
	}
	if ok && id.DeviceID == a.deviceID {
		a.id = id
	}
	if a.spool, err = openSpool(filepath.Join(cfg.StateDir, dirSpool), cfg.MaxSpoolBytes, a.log); err != nil {
		return nil, err
	}
	if a.nextSeq, err = loadNextSeq(cfg.StateDir); err != nil {
		return nil, err
	}
	a.nextSeq = max(a.nextSeq, a.spool.maxSeq()+1)
	a.remote = api.Config{
		InventoryIntervalSeconds: int(DefaultInventoryInterval / time.Second),
		PollIntervalSeconds:      int(DefaultPollInterval / time.Second),
	}
	return a, nil
}

// DeviceID returns the agent's device ID.
func (a *Agent) DeviceID() string { return a.deviceID }

// Pending returns how many records wait in the spool.
func (a *Agent) Pending() int { return a.spool.len() }

// Run enrolls if needed, then collects inventory on the configured interval
// and sends the spool, until ctx is done (nil) or, with Once, until one
// inventory has been collected and the spool is empty (ErrNotAcked if it
// could not be emptied).
func (a *Agent) Run(ctx context.Context) error {
	a.log.InfoContext(ctx, "Agent starting", slog.String("deviceID", a.deviceID), slog.Int("pending", a.spool.len()))
	defer a.log.InfoContext(ctx, "Agent stopped", slog.String("deviceID", a.deviceID))
	defer func() {
		if a.client != nil {
			a.client.CloseIdleConnections()
		}
	}()
	backoff := time.Duration(0)
	for {
		err := a.connect(ctx)
		if err == nil {
			break
		}
		if a.cfg.Once || ctx.Err() != nil || errors.Is(err, ErrNoJoinToken) {
			return err
		}
		backoff = a.retryWait(err, backoff)
		a.log.WarnContext(ctx, "Site not reached, will retry", slog.Duration("wait", backoff), slog.Any("error", err))
		if !sleep(ctx, backoff) {
			return nil
		}
	}
	if a.cfg.Once {
		return a.runOnce(ctx)
	}

	var nextInv, nextConfig time.Time // zero: due now
	backoff = 0
	for {
		now := time.Now()
		if !now.Before(nextConfig) {
			a.fetchConfig(ctx)
			nextConfig = now.Add(a.pollInterval())
		}
		if !now.Before(nextInv) {
			if err := a.collect(ctx); err != nil && ctx.Err() == nil {
				a.log.ErrorContext(ctx, "Inventory not spooled", slog.Any("error", err))
			}
			nextInv = now.Add(a.inventoryInterval())
		}
		a.runTasks(ctx) // tasks.go
		wait := time.Until(nextInv)
		wait = min(wait, time.Until(nextConfig), taskPoll)
		if err := a.flush(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			backoff = a.retryWait(err, backoff)
			wait = min(wait, backoff)
			a.log.WarnContext(ctx, "Report failed, will retry", slog.Duration("wait", backoff), slog.Int("pending", a.spool.len()), slog.Any("error", err))
		} else {
			backoff = 0
		}
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

func (a *Agent) runOnce(ctx context.Context) error {
	a.fetchConfig(ctx)
	if err := a.collect(ctx); err != nil {
		return err
	}
	var err error
	backoff := time.Duration(0)
	for attempt := 0; attempt < a.cfg.OnceAttempts; attempt++ {
		if err = a.flush(ctx); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			break
		}
		backoff = a.retryWait(err, backoff)
		a.log.WarnContext(ctx, "Report failed, will retry", slog.Duration("wait", backoff), slog.Int("pending", a.spool.len()), slog.Any("error", err))
		if attempt+1 < a.cfg.OnceAttempts && !sleep(ctx, backoff) {
			break
		}
	}
	return fmt.Errorf("%w: %d pending: %w", ErrNotAcked, a.spool.len(), err)
}

// connect builds the relay client, pinning the CA from the join token on the
// first run, and enrolls if the agent has no device token.
func (a *Agent) connect(ctx context.Context) error {
	if a.client == nil {
		conf, err := a.tlsConfig(ctx)
		if err != nil {
			return err
		}
		a.client = api.NewClient(a.cfg.Relays, conf)
	}
	if a.id.DeviceToken == "" {
		return a.enroll(ctx)
	}
	return nil
}

func (a *Agent) tlsConfig(ctx context.Context) (*tls.Config, error) {
	caPath := filepath.Join(a.cfg.StateDir, fileCA)
	pem, err := os.ReadFile(caPath)
	if errors.Is(err, fs.ErrNotExist) {
		if a.cfg.JoinToken == "" {
			return nil, ErrNoJoinToken
		}
		tok, err := api.ParseJoinToken(a.cfg.JoinToken)
		if err != nil {
			return nil, err
		}
		pem, err = api.FetchPinnedCA(ctx, a.cfg.Relays, tok.CAFingerprint)
		if err != nil {
			return nil, fmt.Errorf("agent: first contact with the site: %w", err)
		}
		if err := writeFileAtomic(caPath, pem, 0o644); err != nil {
			return nil, err
		}
		a.log.InfoContext(ctx, "Site CA pinned", slog.String("fingerprint", tok.CAFingerprint))
	} else if err != nil {
		return nil, fmt.Errorf("read CA: %w", err)
	}
	return api.CATLS(pem)
}

func (a *Agent) enroll(ctx context.Context) error {
	if a.cfg.JoinToken == "" {
		return ErrNoJoinToken
	}
	host, _ := os.Hostname()
	resp, err := a.client.Enroll(ctx, api.EnrollRequest{
		JoinToken: a.cfg.JoinToken, DeviceID: a.deviceID, Hostname: host, OS: "linux", Arch: goarch(),
	})
	if err != nil {
		return fmt.Errorf("agent: enroll: %w", err)
	}
	if resp.DeviceID != a.deviceID {
		return fmt.Errorf("agent: enroll: relay assigned device ID %s, we are %s", resp.DeviceID, a.deviceID)
	}
	a.id = identity{DeviceID: resp.DeviceID, DeviceToken: resp.DeviceToken, SiteID: resp.SiteID}
	if err := saveIdentity(a.cfg.StateDir, a.id); err != nil {
		return err
	}
	a.log.InfoContext(ctx, "Agent enrolled", slog.String("deviceID", a.deviceID), slog.String("site", resp.SiteID))
	return nil
}

func (a *Agent) fetchConfig(ctx context.Context) {
	c, err := a.client.Config(ctx, a.deviceID, a.id.DeviceToken)
	if err != nil {
		a.log.WarnContext(ctx, "Config not fetched, keeping the previous one", slog.Any("error", err))
		return
	}
	a.remote = c
}

func (a *Agent) inventoryInterval() time.Duration {
	if s := a.remote.InventoryIntervalSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return DefaultInventoryInterval
}

func (a *Agent) pollInterval() time.Duration {
	if s := a.remote.PollIntervalSeconds; s > 0 {
		return time.Duration(s) * time.Second
	}
	return DefaultPollInterval
}

// collect runs the probe and spools an inventory record.
func (a *Agent) collect(ctx context.Context) error {
	inv, err := a.probe(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.log.WarnContext(ctx, "Inventory partly collected", slog.Any("error", err))
	}
	payload, err := fitInventory(inv, record.DefaultMaxRecordBytes)
	if err != nil {
		return err
	}
	return a.spoolRecord(record.KindInventory, payload)
}

// spoolRecord numbers a record and writes it to the spool (fsynced) and the
// new next seq, before it is ever sent.
func (a *Agent) spoolRecord(kind record.Kind, payload json.RawMessage) error {
	r := record.Record{
		DeviceID: a.deviceID, Seq: a.nextSeq, Kind: kind,
		CollectedAt: a.cfg.Now(), Schema: record.SchemaVersion, Payload: payload,
	}
	if err := record.Validate(&r, r.CollectedAt, record.DefaultLimits()); err != nil {
		return fmt.Errorf("agent: own record invalid: %w", err)
	}
	if err := a.spool.add(&r); err != nil {
		return err
	}
	a.nextSeq++
	return saveNextSeq(a.cfg.StateDir, a.nextSeq)
}

// flush sends the spool in batches until it is empty or a call fails.
func (a *Agent) flush(ctx context.Context) error {
	batch := a.cfg.BatchSize
	for a.spool.len() > 0 {
		recs, err := a.spool.head(batch, a.cfg.MaxBatchBytes)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			continue
		}
		resp, err := a.client.Report(ctx, a.deviceID, a.id.DeviceToken, recs)
		if err == nil {
			n, aerr := a.spool.ack(resp.AckedSeq)
			if aerr != nil {
				return aerr
			}
			if n == 0 {
				return fmt.Errorf("agent: relay acked seq %d, below the batch %d..%d", resp.AckedSeq, recs[0].Seq, recs[len(recs)-1].Seq)
			}
			continue
		}
		if herr := a.handleRefusal(ctx, err, recs, &batch); herr != nil {
			return herr
		}
	}
	return nil
}

// handleRefusal deals with the errors that retrying as-is cannot fix. It
// returns nil when the caller should go on sending, or the error to back off
// on.
func (a *Agent) handleRefusal(ctx context.Context, err error, recs []record.Record, batch *int) error {
	var (
		he *api.HTTPError
		ce *api.ConflictError
	)
	switch {
	case errors.As(err, &ce):
		// Our seq is taken by other content (state restored from a
		// backup?): renumber the record rather than lose it.
		return a.renumber(ce.Seq, recs)
	case errors.Is(err, api.ErrUnauthorized):
		a.log.WarnContext(ctx, "Device token refused, enrolling again", slog.Any("error", err))
		if eerr := a.enroll(ctx); eerr != nil {
			return eerr
		}
		return nil
	case errors.As(err, &he) && he.StatusCode == http.StatusRequestEntityTooLarge && len(he.Body.Records) == 0 && *batch > 1:
		*batch = max(1, len(recs)/2)
		return nil
	case errors.As(err, &he) && errors.Is(err, api.ErrInvalidRequest) && len(he.Body.Records) > 0:
		before := a.spool.len()
		for _, re := range he.Body.Records {
			a.log.ErrorContext(ctx, "Relay refused record, dropped", slog.Uint64("seq", re.Seq), slog.String("code", re.Code), slog.String("reason", re.Reason))
			if rerr := a.spool.remove(re.Seq); rerr != nil {
				return rerr
			}
		}
		if a.spool.len() == before {
			return err // the refusal names no record we hold: back off
		}
		return nil
	}
	return err
}

func (a *Agent) renumber(seq uint64, recs []record.Record) error {
	for _, r := range recs {
		if r.Seq != seq {
			continue
		}
		if err := a.spool.remove(seq); err != nil {
			return err
		}
		a.log.Warn("Seq already used with other content, renumbered", slog.Uint64("seq", seq), slog.Uint64("newSeq", a.nextSeq))
		return a.spoolRecord(r.Kind, r.Payload)
	}
	return fmt.Errorf("agent: conflict on seq %d, not in the batch", seq)
}

// retryWait returns how long to wait after err: the relay's Retry-After for
// backpressure, else jittered exponential backoff from 1s, capped.
func (a *Agent) retryWait(err error, prev time.Duration) time.Duration {
	var bp *api.BackpressureError
	if errors.As(err, &bp) {
		return min(bp.RetryAfter, a.cfg.MaxRetryWait)
	}
	next := min(max(2*prev, time.Second), a.cfg.MaxRetryWait)
	return next/2 + rand.N(next/2+1)
}

// sleep waits d or until ctx is done (false).
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
