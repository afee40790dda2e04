package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/sync/wire"
)

// Catalog mirror (DESIGN.md §2 flow 2). The site leader asks central for the
// changes since the version it holds and proposes them; every node then has
// the packages ("p/<id>") and the site's tasks ("t/<id>") in its Raft state
// and answers GET /v1/tasks from it, and every node's cache prefetches the
// blobs those tasks need.

const cmdCatalog commandType = 30

var (
	prefixCatPkg  = []byte("p/")
	prefixCatTask = []byte("t/")
	keyCatVersion = []byte("cv/")
)

// catalogCommand is a delta computed against Since; Apply ignores it unless
// the mirror is still at Since (a later pull repairs any skip).
type catalogCommand struct {
	Since   uint64       `json:"since"`
	Catalog wire.Catalog `json:"catalog"`
}

func encodeCatalog(c *catalogCommand) []byte {
	b, _ := json.Marshal(c)
	w := cmdenc.NewWriter(byte(cmdCatalog), commandVersion, len(b)+8)
	w.Bytes(b)
	return w.Done()
}

func (f *fsm) applyCatalogCmd(txn *badger.Txn, r *cmdenc.Reader) []byte {
	b := r.Bytes()
	if r.Err() != nil {
		return errorResult(r.Err())
	}
	var c catalogCommand
	if err := json.Unmarshal(b, &c); err != nil {
		return errorResult(err)
	}
	if err := applyCatalog(txn, &c); err != nil {
		return storageFailure(err)
	}
	if d := (*Node)(f).dist; d != nil {
		d.catalogChanged()
	}
	return nil
}

func applyCatalog(txn *badger.Txn, c *catalogCommand) error {
	cur, err := kv.GetUint(txn, keyCatVersion)
	if err != nil {
		return err
	}
	if c.Since != cur && c.Since != 0 {
		return nil
	}
	for _, p := range c.Catalog.Packages {
		if err := kv.PutJSON(txn, append(slices.Clone(prefixCatPkg), p.ID...), p); err != nil {
			return err
		}
	}
	for _, t := range c.Catalog.Tasks {
		if err := kv.PutJSON(txn, append(slices.Clone(prefixCatTask), t.ID...), t); err != nil {
			return err
		}
	}
	for _, pl := range []struct {
		prefix []byte
		live   []string
	}{{prefixCatPkg, c.Catalog.LivePkgs}, {prefixCatTask, c.Catalog.LiveTask}} {
		opts := badger.DefaultIteratorOptions
		opts.PrefetchValues = false
		opts.Prefix = pl.prefix
		it := txn.NewIterator(opts)
		var del [][]byte
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if !slices.Contains(pl.live, string(k[len(pl.prefix):])) {
				del = append(del, k)
			}
		}
		it.Close()
		for _, k := range del {
			if err := txn.Delete(k); err != nil {
				return err
			}
			if pl.prefix[0] == prefixCatTask[0] {
				if err := deleteTaskStatuses(txn, string(k[len(pl.prefix):])); err != nil { // taskstatus.go
					return err
				}
			}
		}
	}
	return kv.SetUint(txn, keyCatVersion, c.Catalog.Version)
}

// catalogView is the mirror read in one transaction.
type catalogView struct {
	Version  uint64
	Packages map[string]wire.CatalogPackage
	Tasks    []wire.CatalogTask
}

func (n *Node) readCatalog() (catalogView, error) {
	v := catalogView{Packages: map[string]wire.CatalogPackage{}}
	err := n.raft.View(func(txn *badger.Txn) error {
		var err error
		if v.Version, err = kv.GetUint(txn, keyCatVersion); err != nil {
			return err
		}
		for _, pl := range [][]byte{prefixCatPkg, prefixCatTask} {
			opts := badger.DefaultIteratorOptions
			opts.Prefix = pl
			it := txn.NewIterator(opts)
			for it.Rewind(); it.Valid(); it.Next() {
				err := it.Item().Value(func(b []byte) error {
					if pl[0] == 'p' {
						var p wire.CatalogPackage
						if err := json.Unmarshal(b, &p); err != nil {
							return err
						}
						v.Packages[p.ID] = p
						return nil
					}
					var t wire.CatalogTask
					if err := json.Unmarshal(b, &t); err != nil {
						return err
					}
					v.Tasks = append(v.Tasks, t)
					return nil
				})
				if err != nil {
					it.Close()
					return err
				}
			}
			it.Close()
		}
		return nil
	})
	return v, err
}

// pullCatalog asks central for changes and proposes them (leader only).
func (d *distribution) pullCatalog(ctx context.Context) error {
	n := d.n
	var cur uint64
	if err := n.raft.View(func(txn *badger.Txn) (err error) { cur, err = kv.GetUint(txn, keyCatVersion); return err }); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := d.fetch.Catalog(pctx, cur)
	if err != nil {
		return err
	}
	if c.Version == cur && len(c.Packages) == 0 && len(c.Tasks) == 0 {
		return nil
	}
	out, err := n.raft.Propose(pctx, encodeCatalog(&catalogCommand{Since: cur, Catalog: c}))
	if err == nil {
		err = resultError(out)
	}
	if err != nil {
		return fmt.Errorf("propose catalog %d: %w", c.Version, err)
	}
	n.log.Info("Catalog updated", "from", cur, "to", c.Version, "packages", len(c.Packages), "tasks", len(c.Tasks))
	return nil
}

// catalogLoop pulls the catalog while this node leads the site.
func (d *distribution) catalogLoop(ctx context.Context) {
	t := time.NewTicker(d.n.cfg.CatalogInterval)
	defer t.Stop()
	failing := false
	for {
		if d.n.raft.IsLeader() {
			if err := d.pullCatalog(ctx); err != nil && ctx.Err() == nil {
				if !failing {
					d.n.log.Warn("Catalog pull failed", "err", err)
				}
				failing = true
			} else {
				failing = false
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// catalogChanged wakes long polls and the prefetcher.
func (d *distribution) catalogChanged() {
	d.mu.Lock()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
	d.cache.kickPrefetch()
}

func (d *distribution) changes() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.changed
}

// Tasks implements api.TaskBackend: the device's runnable tasks, after
// waiting up to wait for a catalog version above since.
func (b *backend) Tasks(ctx context.Context, deviceID string, since uint64, wait time.Duration) (api.TaskList, error) {
	n := (*Node)(b)
	deadline := time.Now().Add(wait)
	for {
		ch := n.dist.changes()
		v, err := n.readCatalog()
		if err != nil {
			return api.TaskList{}, unavailable(err)
		}
		if v.Version > since || !time.Now().Before(deadline) {
			return tasksFor(v, deviceID), nil
		}
		t := time.NewTimer(min(time.Until(deadline), 500*time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return tasksFor(v, deviceID), nil
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

func tasksFor(v catalogView, dev string) api.TaskList {
	out := api.TaskList{Version: v.Version, Tasks: []api.Task{}}
	for _, t := range v.Tasks {
		if t.Stopped || !slices.Contains(t.Devices, dev) || slices.Contains(t.Cancelled, dev) {
			continue
		}
		p, ok := v.Packages[t.Package]
		if !ok {
			continue
		}
		out.Tasks = append(out.Tasks, api.Task{ID: t.ID, Attempt: t.Attempts[dev], At: t.At, Package: api.TaskPackage{
			ID: p.ID, Name: p.Name, Version: p.Version, Type: p.Type, Command: p.Command, Dest: p.Dest, Mode: p.Mode,
			FileName: p.FileName, SHA256: p.SHA256, Size: p.Size}})
	}
	slices.SortFunc(out.Tasks, func(a, b api.Task) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// distribution holds a relay node's catalog mirror plumbing and its cache.
type distribution struct {
	n     *Node
	fetch fetcher
	cache *cache

	mu      sync.Mutex // guards changed
	changed chan struct{}

	hmu    sync.Mutex // guards shared
	shared http.Handler
}
