package relay

import (
	"context"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/event"
)

// DefaultUplinkDownAfter is how long the uplink may be down before the site
// leader raises event.UplinkDown.
const DefaultUplinkDownAfter = 10 * time.Minute

// watchUplink raises event.UplinkDown on the site leader once the uplink has
// been disconnected for longer than Config.UplinkDownAfter, and event.UplinkUp
// when it reconnects. A new leader learns from the site's event log whether a
// down event stands, so the pair is raised once per outage across failovers.
func (n *Node) watchUplink(ctx context.Context) {
	after := n.cfg.UplinkDownAfter
	if after <= 0 {
		after = DefaultUplinkDownAfter
	}
	t := time.NewTicker(min(max(after/4, 50*time.Millisecond), 5*time.Second))
	defer t.Stop()
	var (
		leading bool
		upAt    time.Time // last time the uplink was seen connected (or leadership began)
		down    bool      // an UplinkDown event stands without its UplinkUp
	)
	raise := func(number int, severity, msg string) bool {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		err := n.raise(rctx, number, severity, event.TypeError, msg)
		if err != nil {
			n.log.Debug("Uplink event not recorded", "number", number, "err", err)
		}
		return err == nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !n.raft.IsLeader() {
			leading = false
			continue
		}
		now := time.Now()
		if !leading {
			leading, upAt, down = true, now, n.uplinkDownStands()
		}
		st := n.up.Status()
		if st.Connected {
			upAt = now
			if down && raise(event.UplinkUp, event.Information, fmt.Sprintf("The uplink to central is connected again (%s over %s).", st.Central, st.Transport)) {
				down = false
				n.log.Info("Uplink up again: event raised", "central", st.Central)
			}
			continue
		}
		if st.LastContact.After(upAt) {
			upAt = st.LastContact
		}
		if !down && now.Sub(upAt) >= after {
			msg := fmt.Sprintf("The uplink to central has been down for %s; records wait in the site outbox.", now.Sub(upAt).Round(time.Second))
			if st.LastError != "" {
				msg += " Last error: " + st.LastError
			}
			if raise(event.UplinkDown, event.Warning, msg) {
				down = true
				n.log.Warn("Uplink down: event raised", "for", now.Sub(upAt).Round(time.Second), "err", st.LastError)
			}
		}
	}
}

// uplinkDownStands reports whether the newest uplink event in the site's
// log is UplinkDown.
func (n *Node) uplinkDownStands() bool {
	down := false
	n.raft.View(func(txn *badger.Txn) error {
		seen := 0
		return event.Newest(txn, prefixEvent, func(e event.Event) (bool, error) {
			seen++
			if e.Number == event.UplinkDown || e.Number == event.UplinkUp {
				down = e.Number == event.UplinkDown
				return false, nil
			}
			return seen < 2000, nil
		})
	})
	return down
}
