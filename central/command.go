package central

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/event"
	"github.com/edgesync/edgesync/sync/wire"
)

type commandType uint8

const (
	cmdIngest  commandType = iota + 1 // a run of one site's outbox records
	cmdContact                        // a relay's hello or status
	cmdSecrets                        // admin token hash, set once at bootstrap
	cmdEvent                          // an event raised by a central node
)

// The administrator's commands (central/events.go, central/audit.go).
const (
	cmdEventAck commandType = 20 // an administrator acknowledged an event
	cmdAudit    commandType = 21 // an audit trail entry
)

// Accounts and API tokens (central/accounts.go).
const (
	cmdAccounts commandType = 40 // account changes, all or none
	cmdTokens   commandType = 41 // API token created or revoked
)

// cmdOffline carries offline kit and import operations (central/offline.go).
const cmdOffline commandType = 10

const (
	commandVersion  = 1
	maxCommandBytes = 448 << 10
	maxRecords      = 100000
)

type ingestCommand struct {
	Site, Relay string
	At          time.Time
	First       uint64
	Records     [][]byte
}

func (c *ingestCommand) encode() []byte {
	size := 64
	for _, r := range c.Records {
		size += len(r) + 4
	}
	w := cmdenc.NewWriter(byte(cmdIngest), commandVersion, size)
	w.String(c.Site)
	w.String(c.Relay)
	w.Time(c.At)
	w.Uint(c.First)
	w.Uint(uint64(len(c.Records)))
	for _, r := range c.Records {
		w.Bytes(r)
	}
	return w.Done()
}

func decodeIngest(r *cmdenc.Reader) (*ingestCommand, error) {
	c := &ingestCommand{Site: r.String(), Relay: r.String(), At: r.Time(), First: r.Uint()}
	n := r.Count(maxRecords)
	c.Records = make([][]byte, 0, n)
	for i := 0; i < n && r.Err() == nil; i++ {
		c.Records = append(c.Records, r.Bytes())
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode ingest command: %w", err)
	}
	return c, nil
}

type contactCommand struct {
	Site, Relay string
	At          time.Time
	Stats       wire.OutboxStats
}

func (c *contactCommand) encode() []byte {
	st, _ := json.Marshal(c.Stats)
	w := cmdenc.NewWriter(byte(cmdContact), commandVersion, 128+len(st))
	w.String(c.Site)
	w.String(c.Relay)
	w.Time(c.At)
	w.Bytes(st)
	return w.Done()
}

func decodeContact(r *cmdenc.Reader) (*contactCommand, error) {
	c := &contactCommand{Site: r.String(), Relay: r.String(), At: r.Time()}
	st := r.Bytes()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("decode contact command: %w", err)
	}
	if err := json.Unmarshal(st, &c.Stats); err != nil {
		return nil, fmt.Errorf("decode contact stats: %w", err)
	}
	return c, nil
}

func encodeSecrets(adminHash string) []byte {
	w := cmdenc.NewWriter(byte(cmdSecrets), commandVersion, 80)
	w.String(adminHash)
	return w.Done()
}

func encodeEvent(e event.Event) []byte {
	b, _ := json.Marshal(e)
	w := cmdenc.NewWriter(byte(cmdEvent), commandVersion, len(b)+8)
	w.Bytes(b)
	return w.Done()
}
