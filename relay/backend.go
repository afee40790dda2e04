package relay

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/internal/secret"
)

// backend implements api.Backend on top of the site Raft.
type backend Node

var _ api.Backend = (*backend)(nil)

// freshRead bounds how long a follower waits to catch up with the leader when
// a device or token it has not seen yet may just have been committed.
const freshRead = 3 * time.Second

// Enroll admits a device holding the site's join token and issues its token.
func (b *backend) Enroll(ctx context.Context, req api.EnrollRequest) (api.EnrollResponse, error) {
	n := (*Node)(b)
	jt, err := api.ParseJoinToken(req.JoinToken)
	if err != nil || jt.Site != n.cfg.Site {
		return api.EnrollResponse{}, api.ErrInvalidJoinToken
	}
	want, err := b.joinHash(ctx)
	if err != nil {
		return api.EnrollResponse{}, unavailable(err)
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(jt.SecretHash())) != 1 {
		return api.EnrollResponse{}, api.ErrInvalidJoinToken
	}
	id := req.DeviceID
	if !record.ValidDeviceID(id) {
		id = record.NewDeviceID()
	}
	token := secret.NewToken()
	c := &enrollCommand{DeviceID: id, TokenHash: httpx.HashToken(token), JoinHash: jt.SecretHash(), Hostname: req.Hostname, OS: req.OS, At: time.Now().UTC()}
	out, err := n.raft.Propose(ctx, c.encode())
	if err != nil {
		return api.EnrollResponse{}, unavailable(err)
	}
	if err := resultError(out); err != nil {
		return api.EnrollResponse{}, fmt.Errorf("%w: %v", api.ErrInvalidJoinToken, err)
	}
	n.log.Info("Device enrolled", "device", id, "hostname", req.Hostname)
	return api.EnrollResponse{DeviceID: id, DeviceToken: token, SiteID: n.cfg.Site}, nil
}

func (b *backend) joinHash(ctx context.Context) (string, error) {
	n := (*Node)(b)
	var h string
	read := func(txn *badger.Txn) (err error) { h, err = getString(txn, keyJoinHash); return err }
	if err := n.raft.View(read); err != nil || h != "" {
		return h, err
	}
	cctx, cancel := context.WithTimeout(ctx, freshRead)
	defer cancel()
	return h, n.raft.ConsistentView(cctx, read)
}

// Authenticate checks a device token against the replicated device table.
// A miss on a follower is retried after catching up with the leader: the
// enrollment may have committed a moment ago.
func (b *backend) Authenticate(ctx context.Context, deviceID, token string) error {
	n := (*Node)(b)
	if !record.ValidDeviceID(deviceID) || token == "" {
		return api.ErrUnauthorized
	}
	var d *deviceStored
	read := func(txn *badger.Txn) (err error) { d, err = getDevice(txn, deviceID); return err }
	if err := n.raft.View(read); err != nil {
		return unavailable(err)
	}
	want := httpx.HashToken(token)
	if d == nil || d.Token != want {
		cctx, cancel := context.WithTimeout(ctx, freshRead)
		defer cancel()
		if err := n.raft.ConsistentView(cctx, read); err != nil {
			return unavailable(err)
		}
	}
	if d == nil || subtle.ConstantTimeCompare([]byte(d.Token), []byte(want)) != 1 {
		return api.ErrUnauthorized
	}
	return nil
}

// Report stamps validated records and commits them through the group commit.
func (b *backend) Report(ctx context.Context, deviceID string, recs []record.Record) (api.ReportResponse, error) {
	n := (*Node)(b)
	if err := n.pressure(); err != nil {
		n.metrics.refused.Inc()
		return api.ReportResponse{}, err
	}
	now := time.Now().UTC()
	items := make([]reportRecord, len(recs))
	for i := range recs {
		r := recs[i]
		h := record.Hash(&r)
		r.ReceivedAt = now
		r.Channel = record.ChannelOnline
		r.SiteID = n.cfg.Site
		r.RelayNode = n.cfg.NodeID
		r.SiteSeq = 0
		data := record.AppendJSON(make([]byte, 0, len(r.Payload)+320), &r)
		items[i] = reportRecord{Seq: r.Seq, Hash: h[:], Inventory: r.Kind == record.KindInventory, CollectedAt: r.CollectedAt.UTC(), Data: data}
	}
	if err := b.precheck(deviceID, items); err != nil {
		return api.ReportResponse{}, err
	}
	var resp api.ReportResponse
	for _, chunk := range chunkRecords(items, maxCommandBytes/2) {
		res, err := n.batch.Submit(ctx, reportRequest{DeviceID: deviceID, Records: chunk})
		if err != nil {
			return api.ReportResponse{}, unavailable(err)
		}
		switch res.Code {
		case reportUnknown:
			return api.ReportResponse{}, api.ErrUnauthorized
		case reportConflict:
			return api.ReportResponse{}, &api.ConflictError{Seq: res.BadSeq}
		}
		resp.AckedSeq = max(resp.AckedSeq, res.AckedSeq)
		resp.Accepted += int(res.Accepted)
		resp.Duplicate += int(res.Duplicate)
	}
	n.metrics.accepted.Add(float64(resp.Accepted))
	n.metrics.duplicates.Add(float64(resp.Duplicate))
	return resp, nil
}

// precheck refuses a replay with different content before anything is
// proposed, so a conflicting request stores nothing even when it spans
// several log entries. Apply checks again; this is the fast, clean path.
func (b *backend) precheck(deviceID string, items []reportRecord) error {
	n := (*Node)(b)
	return n.raft.View(func(txn *badger.Txn) error {
		d, err := getDevice(txn, deviceID)
		if err != nil || d == nil {
			return err
		}
		seen := make(map[uint64]bool, len(items))
		for _, it := range items {
			if seen[it.Seq] {
				return &api.ConflictError{Seq: it.Seq}
			}
			seen[it.Seq] = true
			item, err := txn.Get(deviceSeqKey(prefixHash, deviceID, it.Seq))
			if errors.Is(err, badger.ErrKeyNotFound) {
				if d.LastSeq > hashWindow && it.Seq <= d.LastSeq-hashWindow {
					return &api.ConflictError{Seq: it.Seq}
				}
				continue
			}
			if err != nil {
				return err
			}
			var same bool
			if err := item.Value(func(h []byte) error { same = string(h) == string(it.Hash); return nil }); err != nil {
				return err
			}
			if !same {
				return &api.ConflictError{Seq: it.Seq}
			}
		}
		return nil
	})
}

func chunkRecords(items []reportRecord, maxBytes int) [][]reportRecord {
	var out [][]reportRecord
	start, size := 0, 0
	for i, it := range items {
		s := len(it.Data) + len(it.Hash) + 32
		if i > start && size+s > maxBytes {
			out = append(out, items[start:i])
			start, size = i, 0
		}
		size += s
	}
	return append(out, items[start:])
}

// Config is the agent configuration: intervals and every relay of the site.
func (b *backend) Config(ctx context.Context, deviceID string) (api.Config, error) {
	n := (*Node)(b)
	c := api.Config{
		InventoryIntervalSeconds: int(n.cfg.InventoryInterval / time.Second),
		SecurityIntervalSeconds:  int(n.cfg.SecurityInterval / time.Second),
		PollIntervalSeconds:      int(n.cfg.PollInterval / time.Second),
	}
	for _, m := range n.raft.Members() {
		if m.HTTPAddr != "" {
			c.Relays = append(c.Relays, m.HTTPAddr)
		}
	}
	if len(c.Relays) == 0 {
		c.Relays = []string{n.URL()}
	}
	return c, nil
}

// unavailable turns "no leader / shutting down / timed out" into the agent
// API's 503 so agents keep the records and retry; other errors pass through.
func unavailable(err error) error {
	var conflict *api.ConflictError
	var bp *api.BackpressureError
	switch {
	case errors.As(err, &conflict), errors.As(err, &bp), errors.Is(err, api.ErrUnauthorized):
		return err
	case errors.Is(err, raftnode.ErrNoLeader), errors.Is(err, raftnode.ErrNotLeader),
		errors.Is(err, raftnode.ErrShutdown), errors.Is(err, ErrClosed),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return fmt.Errorf("%w: %v", api.ErrUnavailable, err)
	}
	return err
}
