package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/blobstore"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/sync/ingest"
	"github.com/edgesync/edgesync/sync/wire"
)

// Package registry (DESIGN.md §2 flow 3). Metadata is Raft state under "p/";
// the bytes are a blob in every central node's blobstore. The node that takes
// an upload stores the blob before it proposes the metadata; every other node
// notices a package whose blob it lacks and fetches it from a peer over HTTPS
// (mutual TLS, verified by hash) — see syncBlobs.

// Keys (prefixes reserved for distribution: p/, t/, ts/, cv/).
var (
	prefixPackage = []byte("p/")  // p/<id> → Package JSON
	keyCatalogVer = []byte("cv/") // raft index of the last catalog change
)

// Package types.
const (
	PackageInstall = "install" // run Command with the file
	PackageFile    = "file"    // place the file in Dest
)

// Package is one registered package.
type Package struct {
	ID          string    `json:"id"` // name@version
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Type        string    `json:"type"`
	Command     string    `json:"command,omitempty"`
	Dest        string    `json:"dest,omitempty"`
	Mode        string    `json:"mode,omitempty"` // file packages: permission bits of the placed file, "0755"; empty = 0644
	Description string    `json:"description,omitempty"`
	FileName    string    `json:"file_name"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	CreatedAt   time.Time `json:"created_at"`
	Rev         uint64    `json:"rev"`
	// Local says whether the node that answered holds the verified blob.
	Local bool `json:"local"`
}

var (
	pkgNameRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$`)
	pkgVersionRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$`)
	pkgModeRE    = regexp.MustCompile(`^0?[0-7]{3}$`)
)

// DefaultFileMode is the mode of a placed file when the package declares none.
const DefaultFileMode = "0644"

// validate checks metadata supplied by an administrator.
func (p *Package) validate() error {
	var errs []error
	if !pkgNameRE.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("name %q: want 1-64 of A-Z a-z 0-9 . _ + -", p.Name))
	}
	if !pkgVersionRE.MatchString(p.Version) {
		errs = append(errs, fmt.Errorf("version %q: want 1-64 of A-Z a-z 0-9 . _ + ~ -", p.Version))
	}
	switch p.Type {
	case PackageInstall:
		if strings.TrimSpace(p.Command) == "" {
			errs = append(errs, errors.New("an install package needs a command"))
		}
	case PackageFile:
		if !filepath.IsAbs(p.Dest) {
			errs = append(errs, fmt.Errorf("a file package needs an absolute destination folder, got %q", p.Dest))
		}
	default:
		errs = append(errs, fmt.Errorf("type %q: want install or file", p.Type))
	}
	switch {
	case p.Mode == "":
	case p.Type != PackageFile:
		errs = append(errs, errors.New("a mode applies to file packages only"))
	case !pkgModeRE.MatchString(p.Mode):
		errs = append(errs, fmt.Errorf("mode %q: want octal permission bits such as 0644 or 755", p.Mode))
	default:
		p.Mode = strings.Repeat("0", 4-len(p.Mode)) + p.Mode
	}
	if p.FileName == "" || strings.ContainsAny(p.FileName, "/\\") || p.FileName == "." || p.FileName == ".." {
		errs = append(errs, fmt.Errorf("file name %q: want a plain file name", p.FileName))
	}
	if len(p.Description) > 1024 || len(p.Command) > 4096 {
		errs = append(errs, errors.New("description (1024) or command (4096) too long"))
	}
	return errors.Join(errs...)
}

func (p *Package) wire() wire.CatalogPackage {
	return wire.CatalogPackage{ID: p.ID, Name: p.Name, Version: p.Version, Type: p.Type, Command: p.Command, Dest: p.Dest, Mode: p.Mode,
		Description: p.Description, FileName: p.FileName, SHA256: p.SHA256, Size: p.Size, CreatedAt: p.CreatedAt, Rev: p.Rev}
}

// Distribution commands (types 30–39).
const (
	cmdPackageAdd    commandType = 30
	cmdPackageRemove commandType = 31
	cmdTaskCreate    commandType = 32
	cmdTaskStop      commandType = 33
	cmdTaskRetry     commandType = 34
	cmdTaskRemove    commandType = 35
)

func encodeJSONCommand(t commandType, v any) []byte {
	b, _ := json.Marshal(v)
	w := cmdenc.NewWriter(byte(t), commandVersion, len(b)+8)
	w.Bytes(b)
	return w.Done()
}

func decodeJSONCommand(r *cmdenc.Reader, v any) error {
	b := r.Bytes()
	if r.Err() != nil {
		return r.Err()
	}
	return json.Unmarshal(b, v)
}

// Refusals decided in Apply before anything is written; returned to the proposer.
var (
	ErrExists  = errors.New("central: already exists")
	ErrInUse   = errors.New("central: in use")
	ErrRefused = errors.New("central: refused")
)

// applyDistribution applies the distribution commands. A refusal is an
// error result (nothing written); storage errors panic via storageFailure.
func (f *fsm) applyDistribution(txn *badger.Txn, index uint64, typ commandType, r *cmdenc.Reader) []byte {
	var (
		out []byte
		err error
	)
	switch typ {
	case cmdPackageAdd:
		var p Package
		if err := decodeJSONCommand(r, &p); err != nil {
			return errorResult(err)
		}
		err = applyPackageAdd(txn, index, &p)
	case cmdPackageRemove:
		var id string
		if err := decodeJSONCommand(r, &id); err != nil {
			return errorResult(err)
		}
		err = applyPackageRemove(txn, index, id)
	case cmdTaskCreate:
		var t Task
		if err := decodeJSONCommand(r, &t); err != nil {
			return errorResult(err)
		}
		out, err = applyTaskCreate(txn, index, &t)
	case cmdTaskStop:
		var c taskOp
		if err := decodeJSONCommand(r, &c); err != nil {
			return errorResult(err)
		}
		out, err = applyTaskStop(txn, index, &c)
	case cmdTaskRetry:
		var c taskOp
		if err := decodeJSONCommand(r, &c); err != nil {
			return errorResult(err)
		}
		out, err = applyTaskRetry(txn, index, &c)
	case cmdTaskRemove:
		var c taskOp
		if err := decodeJSONCommand(r, &c); err != nil {
			return errorResult(err)
		}
		err = applyTaskRemove(txn, index, &c)
	}
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrExists) || errors.Is(err, ErrInUse) || errors.Is(err, ErrRefused) {
			return errorResult(err)
		}
		return storageFailure(err)
	}
	if typ == cmdPackageAdd {
		(*Node)(f).kickBlobs()
	}
	return out
}

func applyPackageAdd(txn *badger.Txn, index uint64, p *Package) error {
	k := key(prefixPackage, p.ID)
	var cur Package
	if found, err := kv.GetJSON(txn, k, &cur); err != nil {
		return err
	} else if found {
		return fmt.Errorf("%w: package %s", ErrExists, p.ID)
	}
	p.Rev, p.Local = index, false
	if err := kv.PutJSON(txn, k, p); err != nil {
		return err
	}
	return kv.SetUint(txn, keyCatalogVer, index)
}

func applyPackageRemove(txn *badger.Txn, index uint64, id string) error {
	k := key(prefixPackage, id)
	var p Package
	if found, err := kv.GetJSON(txn, k, &p); err != nil {
		return err
	} else if !found {
		return fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	var users []string
	if err := eachTask(txn, func(t *Task) error {
		if t.Package == id {
			users = append(users, t.ID)
		}
		return nil
	}); err != nil {
		return err
	}
	if len(users) > 0 {
		return fmt.Errorf("%w: package %s is used by task %s: remove the tasks first", ErrInUse, id, strings.Join(users, ", "))
	}
	if err := txn.Delete(k); err != nil {
		return err
	}
	return kv.SetUint(txn, keyCatalogVer, index)
}

// Packages lists the packages, sorted by ID.
func (n *Node) Packages() ([]Package, error) {
	out := []Package{}
	err := n.raft.View(func(txn *badger.Txn) error {
		return eachJSON(txn, prefixPackage, func(b []byte) error {
			var p Package
			if err := json.Unmarshal(b, &p); err != nil {
				return err
			}
			_, p.Local = n.blobs.Has(p.SHA256)
			out = append(out, p)
			return nil
		})
	})
	return out, err
}

// Package returns one package from this node's state.
func (n *Node) Package(id string) (Package, error) {
	var p Package
	err := n.raft.View(func(txn *badger.Txn) error { return getPackage(txn, id, &p) })
	_, p.Local = n.blobs.Has(p.SHA256)
	return p, err
}

// freshPackage reads a package with every acknowledged write applied: a
// follower that forwarded the proposal to the leader may not have applied
// it yet when Propose returns.
func (n *Node) freshPackage(ctx context.Context, id string) (Package, error) {
	var p Package
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) error { return getPackage(txn, id, &p) })
	_, p.Local = n.blobs.Has(p.SHA256)
	return p, err
}

func getPackage(txn *badger.Txn, id string, p *Package) error {
	found, err := kv.GetJSON(txn, key(prefixPackage, id), p)
	if err == nil && !found {
		return fmt.Errorf("%w: package %s", ErrNotFound, id)
	}
	return err
}

func eachJSON(txn *badger.Txn, prefix []byte, fn func(b []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		if err := it.Item().Value(fn); err != nil {
			return err
		}
	}
	return nil
}

// AddPackage stores the bytes of r in this node's blobstore (hashing while
// writing) and then commits the metadata. A failure leaves no package.
func (n *Node) AddPackage(ctx context.Context, p Package, r io.Reader) (Package, error) {
	p.ID = p.Name + "@" + p.Version
	p.CreatedAt = time.Now().UTC()
	p.SHA256, p.Size, p.Rev, p.Local = "", 0, 0, false
	if err := p.validate(); err != nil {
		return Package{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := n.Package(p.ID); err == nil {
		return Package{}, fmt.Errorf("%w: package %s", ErrExists, p.ID)
	}
	sum, size, err := n.blobs.Put(r, "")
	if err != nil {
		return Package{}, fmt.Errorf("store package bytes: %w", err)
	}
	p.SHA256, p.Size = sum, size
	out, err := n.raft.Propose(ctx, encodeJSONCommand(cmdPackageAdd, &p))
	if err != nil {
		return Package{}, err
	}
	if err := resultError(out); err != nil {
		return Package{}, err
	}
	n.log.Info("Package registered", "package", p.ID, "sha256", sum, "size", size)
	return n.freshPackage(ctx, p.ID)
}

// RemovePackage removes a package no task uses. Its blob stays until no
// package names it (blobs are shared by identical files).
func (n *Node) RemovePackage(ctx context.Context, id string) error {
	out, err := n.raft.Propose(ctx, encodeJSONCommand(cmdPackageRemove, id))
	if err != nil {
		return err
	}
	return resultError(out)
}

// ErrBadRequest marks invalid administrator input.
var ErrBadRequest = errors.New("central: bad request")

// ---- admin API ----

func (n *Node) handlePackageAdd(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p := Package{Name: q.Get("name"), Version: q.Get("version"), Type: q.Get("type"), Command: q.Get("command"),
		Dest: q.Get("dest"), Mode: q.Get("mode"), Description: q.Get("description"), FileName: q.Get("file_name")}
	if p.Type == "" {
		p.Type = PackageInstall
	}
	if p.FileName == "" {
		p.FileName = p.Name
	}
	body := http.MaxBytesReader(w, r.Body, n.maxPackageBytes())
	p, err := n.AddPackage(r.Context(), p, body)
	writeDistResult(w, http.StatusCreated, p, err)
}

func (n *Node) maxPackageBytes() int64 { return 8 << 30 }

func (n *Node) handlePackages(w http.ResponseWriter, r *http.Request) {
	ps, err := n.Packages()
	writeDistResult(w, http.StatusOK, ps, err)
}

func (n *Node) handlePackage(w http.ResponseWriter, r *http.Request) {
	p, err := n.Package(r.PathValue("id"))
	writeDistResult(w, http.StatusOK, p, err)
}

func (n *Node) handlePackageRemove(w http.ResponseWriter, r *http.Request) {
	err := n.RemovePackage(r.Context(), r.PathValue("id"))
	writeDistResult(w, http.StatusOK, map[string]any{"removed": r.PathValue("id")}, err)
}

// writeDistResult maps distribution errors to statuses with a reason.
func writeDistResult(w http.ResponseWriter, status int, v any, err error) {
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		httpx.WriteJSON(w, status, v)
	case errors.Is(err, ErrBadRequest):
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.As(err, &mbe):
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, ErrNotFound) || strings.Contains(err.Error(), ErrNotFound.Error()):
		httpx.WriteError(w, http.StatusNotFound, "not_found", err.Error())
	case errors.Is(err, ErrExists) || strings.Contains(err.Error(), ErrExists.Error()):
		httpx.WriteError(w, http.StatusConflict, "exists", err.Error())
	case errors.Is(err, ErrInUse) || strings.Contains(err.Error(), ErrInUse.Error()):
		httpx.WriteError(w, http.StatusConflict, "in_use", err.Error())
	case errors.Is(err, ErrRefused) || strings.Contains(err.Error(), ErrRefused.Error()):
		httpx.WriteError(w, http.StatusConflict, "refused", err.Error())
	default:
		httpx.WriteError(w, http.StatusInternalServerError, "internal", err.Error())
	}
}

// handlePeerBlob serves a blob to another central node (client certificate
// of role central) or an administrator.
func (n *Node) handlePeerBlob(w http.ResponseWriter, r *http.Request) {
	if !n.peerOrAdmin(r) {
		httpx.WriteError(w, http.StatusUnauthorized, "unauthorized", "a central certificate or an admin credential is required")
		return
	}
	sum := r.PathValue("sha256")
	if !blobstore.ValidSum(sum) {
		httpx.WriteError(w, http.StatusBadRequest, "bad_hash", "a blob is named by 64 lowercase hex characters (SHA-256)")
		return
	}
	f, _, err := n.blobs.Open(sum)
	if err != nil {
		httpx.WriteError(w, http.StatusNotFound, "not_found", err.Error())
		return
	}
	defer f.Close()
	w.Header().Set("ETag", `"`+sum+`"`)
	w.Header().Set("Content-Type", "application/octet-stream")
	http.ServeContent(w, r, "", time.Time{}, f)
}

func (n *Node) peerOrAdmin(r *http.Request) bool {
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		if id, err := pki.IdentityFromCert(r.TLS.PeerCertificates[0]); err == nil && id.Role == pki.RoleCentral {
			return true
		}
	}
	p := n.principalByToken(httpx.BearerToken(r))
	return p != nil && p.Access.Has(account.PermRead)
}

// ---- blob replication between central nodes ----

func (n *Node) kickBlobs() {
	select {
	case n.blobKick <- struct{}{}:
	default:
	}
}

// syncBlobs fetches the blob of every package this node lacks from a peer.
func (n *Node) syncBlobs(ctx context.Context) {
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	tr := &http.Transport{TLSClientConfig: n.cfg.PKI.PeerTLS()}
	hc := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	for {
		ps, err := n.Packages()
		if err == nil {
			for _, p := range ps {
				if p.Local || ctx.Err() != nil {
					continue
				}
				if err := n.fetchFromPeers(ctx, hc, p.SHA256); err != nil {
					n.log.Warn("Package blob not fetched from peers yet", "package", p.ID, "err", err)
				} else {
					n.log.Info("Package blob fetched from a peer", "package", p.ID)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.blobKick:
		}
	}
}

func (n *Node) fetchFromPeers(ctx context.Context, hc *http.Client, sum string) error {
	var errs []error
	for _, m := range n.raft.Members() {
		if m.ID == n.cfg.NodeID || m.HTTPAddr == "" {
			continue
		}
		err := func() error {
			rctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
			defer cancel()
			req, err := http.NewRequestWithContext(rctx, http.MethodGet, m.HTTPAddr+"/api/v1/blobs/"+sum, nil)
			if err != nil {
				return err
			}
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s: %s", m.ID, resp.Status)
			}
			_, _, err = n.blobs.Put(resp.Body, sum)
			return err
		}()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return errors.New("no peer to fetch from")
	}
	return errors.Join(errs...)
}

// ---- the ingest side: catalog and blob streams to relays ----

// distribution implements ingest.Catalog and ingest.Blobs.
type distribution Node

var (
	_ ingest.Catalog = (*distribution)(nil)
	_ ingest.Blobs   = (*distribution)(nil)
)

// blobServes counts what central's upstream sent, per site/node/blob.
type blobServes struct {
	mu sync.Mutex // guards m
	m  map[string]*BlobServe
}

// BlobServe is how often and how much of one blob went to one relay node.
type BlobServe struct {
	Site, Node, SHA256 string
	Fetches            int   // requests from offset 0
	Resumes            int   // requests from a later offset
	Bytes              int64 // bytes sent
}

// BlobServes reports what this node's ingest sent to relays.
func (n *Node) BlobServes() []BlobServe {
	n.serves.mu.Lock()
	defer n.serves.mu.Unlock()
	out := make([]BlobServe, 0, len(n.serves.m))
	for _, s := range n.serves.m {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b BlobServe) int { return strings.Compare(a.Node+a.SHA256, b.Node+b.SHA256) })
	return out
}

func (d *distribution) OpenBlob(ctx context.Context, site, node, sum string) (io.ReadSeekCloser, int64, error) {
	n := (*Node)(d)
	if !blobstore.ValidSum(sum) {
		return nil, 0, ingest.ErrNoBlob
	}
	f, size, err := n.blobs.Open(sum)
	if errors.Is(err, blobstore.ErrNotFound) || errors.Is(err, blobstore.ErrCorrupt) {
		n.kickBlobs()
		return nil, 0, fmt.Errorf("blob %s not on this central node yet: %w", sum, wire.ErrUnavailable)
	}
	if err != nil {
		return nil, 0, err
	}
	return f, size, nil
}

func (d *distribution) Served(site, node, sum string, offset, nbytes int64) {
	n := (*Node)(d)
	n.serves.mu.Lock()
	defer n.serves.mu.Unlock()
	k := site + "/" + node + "/" + sum
	s := n.serves.m[k]
	if s == nil {
		s = &BlobServe{Site: site, Node: node, SHA256: sum}
		n.serves.m[k] = s
	}
	if offset == 0 {
		s.Fetches++
	} else {
		s.Resumes++
	}
	s.Bytes += nbytes
}

// CatalogSince returns the packages and the site's tasks changed after since.
func (d *distribution) CatalogSince(ctx context.Context, site string, since uint64) (wire.Catalog, error) {
	n := (*Node)(d)
	var c wire.Catalog
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) error {
		v, err := kv.GetUint(txn, keyCatalogVer)
		if err != nil {
			return err
		}
		if since > v {
			since = 0 // we restored an older state than the relay saw: send everything
		}
		c = wire.Catalog{Version: v, LivePkgs: []string{}, LiveTask: []string{}}
		if err := eachJSON(txn, prefixPackage, func(b []byte) error {
			var p Package
			if err := json.Unmarshal(b, &p); err != nil {
				return err
			}
			c.LivePkgs = append(c.LivePkgs, p.ID)
			if p.Rev > since {
				c.Packages = append(c.Packages, p.wire())
			}
			return nil
		}); err != nil {
			return err
		}
		devSite := map[string]string{}
		return eachTask(txn, func(t *Task) error {
			var mine []string
			for _, dev := range t.Devices {
				s, ok := devSite[dev]
				if !ok {
					var dv Device
					if _, err := kv.GetJSON(txn, key(prefixDevice, dev), &dv); err != nil {
						return err
					}
					s = dv.Site
					devSite[dev] = s
				}
				if s == site {
					mine = append(mine, dev)
				}
			}
			if len(mine) == 0 {
				return nil
			}
			c.LiveTask = append(c.LiveTask, t.ID)
			if t.Rev > since {
				ct := t.wire()
				ct.Devices = mine
				c.Tasks = append(c.Tasks, ct)
			}
			return nil
		})
	})
	return c, err
}
