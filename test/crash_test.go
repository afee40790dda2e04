package test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/agent"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/internal/raftnode"
	"github.com/edgesync/edgesync/offline"
	"github.com/edgesync/edgesync/offline/offlinetest"
	"github.com/edgesync/edgesync/relay"
	"github.com/edgesync/edgesync/test/procnet"
)

// crashSite is a central and a three-node relay site, all processes, under
// agent load, with raft storage tuned so that snapshots, log truncation and
// value-log GC happen all the time (raftnode/failpoint.go).
type crashSite struct {
	t      *testing.T
	net    *procnet.Net
	c      *procnet.Proc
	relays []*procnet.Proc
	cli    *cliRunner
	fpDir  string
}

const crashSiteID = "crash"

func newCrashSite(t *testing.T) *crashSite {
	t.Helper()
	bin := edgesyncBinary(t)
	t.Setenv("EDGESYNC_RAFT_SNAPSHOT_THRESHOLD", "64")
	t.Setenv("EDGESYNC_RAFT_SNAPSHOT_INTERVAL", "50ms")
	t.Setenv("EDGESYNC_RAFT_TRAILING_LOGS", "64")
	t.Setenv("EDGESYNC_RAFT_GC_INTERVAL", "100ms")
	t.Setenv("EDGESYNC_FAILPOINTS", "")
	net, err := procnet.New(bin, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("EDGESYNC_TEST_LOG") != "" {
		net.Log = os.Stderr
	}
	s := &crashSite{t: t, net: net, fpDir: t.TempDir()}
	if s.c, err = net.Central("c1", true, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.c.Kill)
	for i := range 3 {
		join := ""
		if i > 0 {
			join = s.relays[0].URL
		}
		r, err := net.Relay(crashSiteID, fmt.Sprintf("x%d", i+1), []string{s.c.SyncAddr("quic")}, "quic", i == 0, join)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Kill)
		s.relays = append(s.relays, r)
	}
	s.cli = &cliRunner{t: t, bin: bin, env: []string{
		"EDGESYNC_SERVER=" + s.c.URL, "EDGESYNC_TOKEN=" + net.AdminToken, "EDGESYNC_CA=" + filepath.Join(net.PKIDir, "ca.crt"),
	}}
	checkFor(t, 60*time.Second, func() error {
		if l, _ := s.leader(); l == nil {
			return errors.New("site not formed")
		}
		return nil
	})
	return s
}

// clusterStatus is the part of a relay's /api/v1/cluster read here.
type clusterStatus struct {
	Raft raftnode.Status `json:"raft"`
}

func (s *crashSite) status(p *procnet.Proc) (clusterStatus, error) {
	var st clusterStatus
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := p.Get(ctx, "/api/v1/cluster", &st)
	return st, err
}

// leader returns the relay that leads a site of three voters.
func (s *crashSite) leader() (*procnet.Proc, clusterStatus) {
	for _, r := range s.relays {
		if !r.Running() {
			continue
		}
		if st, err := s.status(r); err == nil && st.Raft.State == "Leader" && len(st.Raft.Members) == 3 {
			return r, st
		}
	}
	return nil, clusterStatus{}
}

// start (re)starts p with extra environment (failpoints) for this run only.
func (s *crashSite) start(p *procnet.Proc, env ...string) {
	s.t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v)
	}
	err := p.Start()
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		os.Setenv(k, "") // t.Setenv restores the original at the end
	}
	if err != nil {
		s.t.Fatal(err)
	}
}

// waitCaughtUp waits until p is a voter again and has applied at least what
// the leader had applied when called.
func (s *crashSite) waitCaughtUp(p *procnet.Proc) {
	s.t.Helper()
	var want uint64
	checkFor(s.t, 60*time.Second, func() error {
		l, st := s.leader()
		if l == nil {
			return errors.New("no leader with three voters")
		}
		want = st.Raft.AppliedIndex
		return nil
	})
	checkFor(s.t, 90*time.Second, func() error {
		select {
		case <-p.Exited():
			s.t.Fatalf("%s exited after restart (run with EDGESYNC_TEST_LOG=1 for its log)", p.Name)
		default:
		}
		st, err := s.status(p)
		if err != nil {
			return err
		}
		if st.Raft.AppliedIndex < want || (st.Raft.State != "Follower" && st.Raft.State != "Leader") {
			return fmt.Errorf("%s: %s, applied %d of %d", p.Name, st.Raft.State, st.Raft.AppliedIndex, want)
		}
		return nil
	})
}

// waitFile waits until path exists.
func waitFile(t *testing.T, path string, timeout time.Duration) {
	t.Helper()
	checkFor(t, timeout, func() error {
		_, err := os.Stat(path)
		return err
	})
}

func dirNames(dir string) []string {
	entries, _ := os.ReadDir(dir)
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// digests waits until the three relays report the same applied index and
// state hash (the load must be stopped and the outbox drained).
func (s *crashSite) digestsAgree() {
	s.t.Helper()
	var apart [2]*procnet.Proc
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := s.digestsEqual(&apart)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			if apart[0] != nil {
				s.t.Logf("state difference:\n%s", stateDiff(apart[0], apart[1]))
			}
			s.t.Fatalf("relays disagree for 60s: %v", err)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (s *crashSite) digestsEqual(apart *[2]*procnet.Proc) error {
	{
		var first raftnode.Digest
		for i, r := range s.relays {
			var d raftnode.Digest
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := r.Get(ctx, "/api/v1/cluster/digest", &d)
			cancel()
			if err != nil {
				return err
			}
			if i == 0 {
				first = d
				continue
			}
			if d.Applied != first.Applied || d.StateSHA256 != first.StateSHA256 {
				if d.Applied == first.Applied {
					apart[0], apart[1] = s.relays[0], r
				}
				return fmt.Errorf("%s applied %d state %s.., %s applied %d state %s..", first.Node, first.Applied, first.StateSHA256[:8], d.Node, d.Applied, d.StateSHA256[:8])
			}
		}
		s.t.Logf("relays agree: applied %d, %d keys, state %s", first.Applied, first.StateKeys, first.StateSHA256[:16])
		return nil
	}
}

// stateDiff stops a and b and lists the keys whose values differ between
// their state DBs (a finding B report: which part of the FSM diverged).
func stateDiff(a, b *procnet.Proc) string {
	read := func(p *procnet.Proc) (map[string][]byte, error) {
		p.Stop()
		cur := []byte("state-0") // until a snapshot is restored
		if b, err := os.ReadFile(filepath.Join(p.Data, "state.current")); err == nil {
			cur = b
		}
		db, err := badger.Open(badger.DefaultOptions(filepath.Join(p.Data, strings.TrimSpace(string(cur)))).
			WithExternalMagic(0xE502).WithLogger(nil))
		if err != nil {
			return nil, err
		}
		defer db.Close()
		kv := map[string][]byte{}
		err = db.View(func(txn *badger.Txn) error {
			it := txn.NewIterator(badger.DefaultIteratorOptions)
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				v, err := it.Item().ValueCopy(nil)
				if err != nil {
					return err
				}
				kv[string(it.Item().KeyCopy(nil))] = v
			}
			return nil
		})
		return kv, err
	}
	ka, err1 := read(a)
	kb, err2 := read(b)
	if err := errors.Join(err1, err2); err != nil {
		return "read state DBs: " + err.Error()
	}
	short := func(v []byte, ok bool) string {
		if !ok {
			return "(absent)"
		}
		if len(v) > 160 {
			return fmt.Sprintf("%q... (%d bytes)", v[:160], len(v))
		}
		return fmt.Sprintf("%q", v)
	}
	var out []string
	keys := map[string]bool{}
	for k := range ka {
		keys[k] = true
	}
	for k := range kb {
		keys[k] = true
	}
	sorted := slices.Sorted(maps.Keys(keys))
	for _, k := range sorted {
		va, oka := ka[k]
		vb, okb := kb[k]
		if oka != okb || !bytes.Equal(va, vb) {
			out = append(out, fmt.Sprintf("%q:\n  %s %s\n  %s %s", k, a.Name, short(va, oka), b.Name, short(vb, okb)))
		}
	}
	n := len(out)
	if n > 30 {
		out = append(out[:30], fmt.Sprintf("... %d more", n-30))
	}
	return fmt.Sprintf("%d keys on %s, %d on %s, %d differ:\n%s", len(ka), a.Name, len(kb), b.Name, n, strings.Join(out, "\n"))
}

// TestCrash_StorageOperations SIGKILLs a relay node in the middle of its
// storage work and checks that it restarts, rejoins and converges: a
// snapshot being written, the log truncation after a snapshot, a snapshot
// being installed, Badger flushing/compacting tables or value-log GC
// deleting a rewritten file, a package blob being written to the cache, and
// an offline import being committed. The first three are certain
// (failpoints hold the node half-way); Badger's work is caught by watching
// its directory and killing the moment a table appears or a value log goes.
func TestCrash_StorageOperations(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	// Quarantined from `make test`, not hidden: about one run in three ends
	// with two relays at the same applied index holding different state, an
	// open bug (docs/reliability.md, "Open findings"). `make crash` runs it.
	if os.Getenv("EDGESYNC_CRASH") == "" {
		t.Skip("quarantined open finding (state divergence after crashes); run make crash")
	}
	s := newCrashSite(t)
	ctx := ctxTimeout(t, 8*time.Minute)
	token, err := s.relays[0].JoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, r := range s.relays {
		urls = append(urls, r.URL)
	}
	loadCtx, cancelLoad := context.WithCancel(ctx)
	loadDone := make(chan agent.SimResult, 1)
	go func() {
		res, _ := agent.Simulate(loadCtx, agent.SimConfig{Relays: urls, JoinToken: token, Agents: 16, Reports: 1 << 20,
			RecordBytes: 768, BatchSize: 4, Concurrency: 4, MaxRetryWait: 500 * time.Millisecond, Logger: testLogger(t)})
		loadDone <- res
	}()
	var load agent.SimResult
	stopLoad := sync.OnceFunc(func() {
		cancelLoad()
		load = <-loadDone
	})
	defer stopLoad()

	victim := s.relays[2]
	fp := func(name string) string { return "EDGESYNC_FAILPOINTS=" + name }
	fpDir := "EDGESYNC_FAILPOINT_DIR=" + s.fpDir
	snapDir := filepath.Join(victim.Data, "snapshots", "snapshots")

	t.Run("snapshot-persist", func(t *testing.T) {
		victim.Kill()
		s.start(victim, fp("snapshot-persist"), fpDir)
		waitFile(t, filepath.Join(s.fpDir, "snapshot-persist"), 60*time.Second)
		var tmp []string
		for _, n := range dirNames(snapDir) {
			if strings.HasSuffix(n, ".tmp") {
				tmp = append(tmp, n)
			}
		}
		if len(tmp) == 0 {
			t.Fatalf("failpoint reached but no snapshot in progress in %v", dirNames(snapDir))
		}
		victim.Kill()
		s.start(victim)
		s.waitCaughtUp(victim)
		for _, n := range tmp {
			if slices.Contains(dirNames(snapDir), n) {
				t.Errorf("interrupted snapshot %s left behind", n)
			}
		}
		t.Logf("killed with %v half-written; restarted and caught up", tmp)
	})

	t.Run("log-truncate", func(t *testing.T) {
		victim.Kill()
		s.start(victim, fp("log-truncate"), fpDir)
		waitFile(t, filepath.Join(s.fpDir, "log-truncate"), 60*time.Second)
		victim.Kill()
		s.start(victim)
		s.waitCaughtUp(victim)
		// The digest reads every entry the node holds: a hole fails it.
		var d raftnode.Digest
		if err := victim.Get(ctx, "/api/v1/cluster/digest", &d); err != nil {
			t.Fatalf("digest after interrupted truncation: %v", err)
		}
		t.Logf("log after interrupted truncation: %d..%d readable", d.LogFirst, d.LogLast)
	})

	t.Run("snapshot-install", func(t *testing.T) {
		victim.Kill()
		// Let the site move past what the victim's log can catch up from.
		_, st := s.leader()
		from := st.Raft.AppliedIndex
		checkFor(t, 60*time.Second, func() error {
			if _, st := s.leader(); st.Raft.LastSnapshotIndex < from+128 {
				return fmt.Errorf("leader snapshot at %d, want past %d", st.Raft.LastSnapshotIndex, from+128)
			}
			return nil
		})
		s.start(victim, fp("snapshot-restore"), fpDir)
		waitFile(t, filepath.Join(s.fpDir, "snapshot-restore"), 60*time.Second)
		victim.Kill()
		s.start(victim)
		s.waitCaughtUp(victim)
	})

	t.Run("badger-background", func(t *testing.T) {
		dirs := []string{filepath.Join(victim.Data, "raft")}
		if b, err := os.ReadFile(filepath.Join(victim.Data, "state.current")); err == nil {
			dirs = append(dirs, filepath.Join(victim.Data, strings.TrimSpace(string(b))))
		} else {
			dirs = append(dirs, filepath.Join(victim.Data, "state-0"))
		}
		seen := func() map[string]bool {
			m := map[string]bool{}
			for _, d := range dirs {
				for _, n := range dirNames(d) {
					if strings.HasSuffix(n, ".sst") || strings.HasSuffix(n, ".vlog") {
						m[filepath.Join(d, n)] = true
					}
				}
			}
			return m
		}
		caught := 0
		for range 2 {
			before := seen()
			var what string
			deadline := time.Now().Add(15 * time.Second)
			for what == "" && time.Now().Before(deadline) {
				now := seen()
				for f := range now {
					if !before[f] && strings.HasSuffix(f, ".sst") {
						what = "table " + filepath.Base(f) + " being written (memtable flush or compaction)"
					}
				}
				for f := range before {
					if !now[f] && strings.HasSuffix(f, ".vlog") {
						what = "value log " + filepath.Base(f) + " rewritten by GC"
					}
				}
				before = now
				time.Sleep(2 * time.Millisecond) // sampling the directory, not waiting for a result
			}
			if what == "" {
				what = "no Badger change seen in 15s: killed at a random point"
				time.Sleep(time.Duration(rand.IntN(200)) * time.Millisecond)
			} else {
				caught++
			}
			victim.Kill()
			t.Logf("SIGKILL %s: %s", victim.Name, what)
			s.start(victim)
			s.waitCaughtUp(victim)
		}
		if caught == 0 {
			t.Log("no kill landed on a Badger flush, compaction or GC this run")
		}
	})

	t.Run("cache-fill", func(t *testing.T) {
		data := make([]byte, 48<<20)
		for i := range data {
			data[i] = byte(rand.Uint32())
		}
		file := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		var p central.Package
		s.cli.json(ctx, &p, "package", "add", file, "--name", "crash", "--version", "1", "--type", "file", "--dest", "/opt/crash", "-q")
		part := filepath.Join(victim.Data, "cache", "tmp", p.SHA256+".part")
		published := filepath.Join(victim.Data, "cache", "blobs")
		var tv central.TaskView
		s.cli.json(ctx, &tv, "task", "create", "--package", p.ID, "--site", crashSiteID)
		checkFor(t, 60*time.Second, func() error {
			if fi, err := os.Stat(part); err != nil || fi.Size() == 0 {
				return fmt.Errorf("no partial download at %s yet", part)
			}
			return nil
		})
		victim.Kill()
		fi, _ := os.Stat(part)
		if got := findFile(published, p.SHA256); got != "" {
			t.Fatalf("blob published while its download was partial: %s", got)
		}
		t.Logf("SIGKILL during cache fill at %d of %d bytes", fi.Size(), len(data))
		s.start(victim)
		s.waitCaughtUp(victim)
		relayAdmin := &cliRunner{t: t, bin: s.cli.bin, env: []string{
			"EDGESYNC_SERVER=" + victim.URL, "EDGESYNC_TOKEN=" + s.net.AdminToken, "EDGESYNC_CA=" + filepath.Join(s.net.PKIDir, "ca.crt"),
		}}
		checkFor(t, 90*time.Second, func() error {
			var st relay.CacheStatus
			res := relayAdmin.run(ctx, nil, "cache", "list", "--json")
			if res.code != 0 || json.Unmarshal([]byte(res.stdout), &st) != nil {
				return fmt.Errorf("cache list: exit %d %s", res.code, res.stderr)
			}
			for _, b := range st.Blobs {
				if b.SHA256 == p.SHA256 {
					if b.Size != int64(len(data)) {
						t.Fatalf("cache lists %s with %d bytes, want %d", b.SHA256, b.Size, len(data))
					}
					return nil
				}
			}
			return fmt.Errorf("%s not cached yet", p.SHA256[:12])
		})
		if out := relayAdmin.ok(ctx, "cache", "verify"); !strings.Contains(out, "checks out") {
			t.Errorf("cache verify after refill: %s", out)
		}
		if got := findFile(published, p.SHA256); got == "" || fileSum(t, got) != p.SHA256 {
			t.Errorf("published blob %q does not hash to %s", got, p.SHA256)
		}
	})

	t.Run("offline-import", func(t *testing.T) {
		const devices, per = 150, 2
		medium := t.TempDir()
		s.cli.ok(ctx, "offline", "kit", "create", "--out", medium, "--platform", "linux", "--name", "crash-kit")
		start := time.Now().Add(-time.Hour).Truncate(time.Second)
		ids, err := offlinetest.Collect(medium, filepath.Join(t.TempDir(), "state"), devices, per, 10, start)
		if err != nil {
			t.Fatalf("collect: %v", err)
		}
		pem, err := os.ReadFile(filepath.Join(s.net.PKIDir, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		tc, err := api.CATLS(pem)
		if err != nil {
			t.Fatal(err)
		}
		target := s.relays[1]
		// Kill the relay the moment the fourth batch has been sent to it:
		// three batches are committed, one is in flight, the rest unsent.
		var sent atomic.Int32
		hc := &http.Client{Transport: &killingTransport{base: &http.Transport{TLSClientConfig: tc}, onSent: func() {
			if sent.Add(1) == 4 {
				target.Kill()
			}
		}}}
		rep, err := offline.Import(ctx, medium, offline.ImportConfig{Server: target.URL, Token: s.net.AdminToken, HTTP: hc, BatchBytes: 16 << 10})
		if err == nil {
			t.Fatalf("import survived the SIGKILL of its relay: %v", rep.Counts)
		}
		t.Logf("first import, relay killed mid-way: %v", err)
		s.start(target)
		s.waitCaughtUp(target)
		hc2 := &http.Client{Transport: &http.Transport{TLSClientConfig: tc}}
		rep, err = offline.Import(ctx, medium, offline.ImportConfig{Server: target.URL, Token: s.net.AdminToken, HTTP: hc2, BatchBytes: 16 << 10})
		if err != nil {
			t.Fatalf("re-run import: %v", err)
		}
		if rep.Counts[offline.OutcomeDuplicate] == 0 || rep.Counts[offline.OutcomeRejected] != 0 ||
			rep.Counts[offline.OutcomeDuplicate]+rep.Counts[offline.OutcomeImported]+rep.Counts[offline.OutcomeHistory] != devices*per {
			t.Fatalf("re-run import counts %v, want %d records all imported or duplicate, some duplicate", rep.Counts, devices*per)
		}
		t.Logf("re-run after the kill: %v", rep.Counts)
		rep, err = offline.Import(ctx, medium, offline.ImportConfig{Server: s.relays[0].URL, Token: s.net.AdminToken, HTTP: hc2})
		if err != nil || rep.Counts[offline.OutcomeDuplicate] != devices*per {
			t.Fatalf("third import: %v %v, want all %d duplicate", rep.Counts, err, devices*per)
		}
		checkFor(t, 90*time.Second, func() error {
			for _, id := range ids {
				var d central.Device
				if err := s.c.Get(ctx, "/api/v1/devices/"+id, &d); err != nil {
					return err
				}
				if d.Records != per || d.Revisions != per {
					if d.Records > per {
						t.Fatalf("device %s has %d records at central, imported %d: applied twice", id, d.Records, per)
					}
					return fmt.Errorf("device %s: %d records, %d revisions at central, want %d", id, d.Records, d.Revisions, per)
				}
			}
			return nil
		})
	})

	stopLoad()
	t.Logf("agent load: %d records acknowledged", load.Acked)
	checkFor(t, 2*time.Minute, func() error {
		var st procnet.RelayStatus
		l, _ := s.leader()
		if l == nil {
			return errors.New("no leader")
		}
		if err := l.Get(ctx, "/api/v1/cluster", &st); err != nil {
			return err
		}
		if st.Outbox.Depth != 0 {
			return fmt.Errorf("outbox depth %d", st.Outbox.Depth)
		}
		return nil
	})
	s.digestsAgree()
}

// killingTransport calls onSent once a request's body has been sent.
type killingTransport struct {
	base   http.RoundTripper
	onSent func()
}

func (k *killingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body == nil {
		return k.base.RoundTrip(r)
	}
	body, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	r2 := r.Clone(r.Context())
	r2.Body = &notifyEOF{r: bytes.NewReader(body), fn: k.onSent}
	r2.ContentLength = int64(len(body))
	return k.base.RoundTrip(r2)
}

type notifyEOF struct {
	r    io.Reader
	fn   func()
	done bool
}

func (n *notifyEOF) Read(p []byte) (int, error) {
	m, err := n.r.Read(p)
	if errors.Is(err, io.EOF) && !n.done {
		n.done = true
		n.fn()
	}
	return m, err
}

func (n *notifyEOF) Close() error { return nil }

// findFile returns the path of a file named name under dir, "" if none.
func findFile(dir, name string) string {
	var found string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) == name {
			found = p
		}
		return nil
	})
	return found
}

// syncBuffer collects the output of node processes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestCrash_CorruptFollowerRunbook is docs/runbook.md end to end: a relay
// whose state DB has a flipped byte refuses to start with an error naming
// the file and the runbook; `edgesync relay rejoin` removes it from the
// site and moves its data aside; started again with --join it is added
// back, installs a snapshot and ends with the same state as its peers.
func TestCrash_CorruptFollowerRunbook(t *testing.T) {
	if testing.Short() {
		t.Skip("process test")
	}
	s := newCrashSite(t)
	out := &syncBuffer{}
	s.net.Log = out
	ctx := ctxTimeout(t, 5*time.Minute)
	token, err := s.relays[0].JoinToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var urls []string
	for _, r := range s.relays {
		urls = append(urls, r.URL)
	}
	res, err := agent.Simulate(ctx, agent.SimConfig{Relays: urls, JoinToken: token, Agents: 20, Reports: 30,
		RecordBytes: 768, BatchSize: 5, Logger: testLogger(t)})
	if err != nil || res.Acked != 600 {
		t.Fatalf("load: %d acked, %v", res.Acked, err)
	}
	victim := s.relays[2]
	s.waitCaughtUp(victim)
	pki := filepath.Join(s.net.PKIDir)
	rejoinArgs := []string{"relay", "rejoin", "--data", victim.Data, "--node-id", victim.Name, "--join", s.relays[0].URL, "--pki", pki, "--json"}
	s.cli.fails(ctx, 1, "stop the node first", rejoinArgs...)

	victim.Stop()
	name, err := os.ReadFile(filepath.Join(victim.Data, "state.current"))
	stateDir := filepath.Join(victim.Data, "state-0")
	if err == nil {
		stateDir = filepath.Join(victim.Data, strings.TrimSpace(string(name)))
	}
	var target string
	var size int64
	for _, n := range dirNames(stateDir) {
		if fi, err := os.Stat(filepath.Join(stateDir, n)); err == nil && strings.HasSuffix(n, ".vlog") && fi.Size() > size {
			target, size = filepath.Join(stateDir, n), fi.Size()
		}
	}
	if size < 1<<10 {
		t.Fatalf("no value log with data in %s: %v", stateDir, dirNames(stateDir))
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x20
	if err := os.WriteFile(target, b, 0o600); err != nil {
		t.Fatal(err)
	}

	s.start(victim)
	select {
	case <-victim.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("relay started on a corrupt state DB")
	}
	victim.Kill() // reap
	for _, want := range []string{target + " is corrupt", "relay rejoin", "docs/runbook.md"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("start-up error lacks %q:\n%s", want, out.String())
		}
	}

	var rr struct {
		Damage  string   `json:"damage"`
		MovedTo string   `json:"moved_to"`
		Moved   []string `json:"moved"`
		Next    string   `json:"next"`
	}
	s.cli.json(ctx, &rr, rejoinArgs[:len(rejoinArgs)-1]...)
	if !strings.Contains(rr.Damage, target) || rr.MovedTo == "" || !slices.Contains(rr.Moved, "raft") {
		t.Fatalf("rejoin result %+v", rr)
	}
	if _, err := os.Stat(filepath.Join(rr.MovedTo, filepath.Base(stateDir), filepath.Base(target))); err != nil {
		t.Errorf("damaged file not kept aside: %v", err)
	}
	checkFor(t, 30*time.Second, func() error {
		l, st := s.leader()
		if l != nil || len(st.Raft.Members) != 0 {
			return errors.New("site still lists three voters")
		}
		return nil
	})
	s.start(victim)
	checkFor(t, 60*time.Second, func() error {
		if l, _ := s.leader(); l == nil {
			return errors.New("victim not back as the third voter")
		}
		return nil
	})
	s.waitCaughtUp(victim)
	s.digestsAgree()
	m, err := victim.Fetch(ctx, "/metrics")
	if err != nil || !regexp.MustCompile(`(?m)^edgesync_raftnode_snapshot_restores_total [1-9]`).Match(m) {
		t.Errorf("the rejoined node did not install a snapshot (metrics: %v)", err)
	}
	if _, err := os.Stat(filepath.Join(victim.Data, raftnode.RejoinMarker)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rejoin marker left after the node joined: %v", err)
	}
}
