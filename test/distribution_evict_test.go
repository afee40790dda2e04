package test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/collector/api"
	"github.com/edgesync/edgesync/relay"
)

// TestDistribution_CacheEvictTargetSize: `edgesync cache evict --target-size`
// removes blobs no active task needs, least recently used first, until the
// cache is at or under the size; blobs of active tasks stay even when that
// leaves the cache above it.
func TestDistribution_CacheEvictTargetSize(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const site, size = "evict", 1 << 20
	bin := edgesyncBinary(t)
	n := startNet(t, site, fastCatalog)
	ctx := ctxTimeout(t, 60*time.Second)
	c := n.Centrals[0]
	devs := enrollSims(t, ctx, n, site, 1)
	rl := n.Sites[site][0]
	r := &cliRunner{t: t, bin: bin, env: []string{
		"EDGESYNC_SERVER=" + rl.URL(), "EDGESYNC_TOKEN=" + rl.Node.AdminToken(), "EDGESYNC_CA=" + n.CAFile(),
	}}

	// Three packages cached by pull-through in the order a, b, cc (LRU: a oldest).
	hc := agentClient(t, n)
	sums := map[string]string{}
	var ids []string
	for _, name := range []string{"a", "b", "cc"} {
		data, sum := randomBlob(t, size)
		p, err := c.Node.AddPackage(ctx, central.Package{Name: name, Version: "1", Type: central.PackageFile, Dest: "/opt/x", FileName: name}, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		sums[name] = sum
		ids = append(ids, p.ID)
		checkFor(t, 20*time.Second, func() error {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, rl.URL()+api.PathBlobs+sum, nil)
			req.Header.Set(api.HeaderDevice, devs[0].ID)
			req.Header.Set("Authorization", "Bearer "+devs[0].Token)
			resp, err := hc.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			nb, _ := io.Copy(io.Discard, resp.Body)
			if resp.StatusCode != http.StatusOK || nb != size {
				return fmt.Errorf("GET %s: %s, %d bytes", name, resp.Status, nb)
			}
			return nil
		})
	}
	// An active task needs a.
	if _, err := c.Node.CreateTask(ctx, central.TaskRequest{Package: ids[0], Devices: []string{devs[0].ID}}); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 20*time.Second, func() error {
		st, err := rl.Node.Cache()
		if err != nil {
			return err
		}
		for _, b := range st.Blobs {
			if b.SHA256 == sums["a"] && b.Needed {
				return nil
			}
		}
		return fmt.Errorf("relay does not see blob a as needed yet")
	})

	r.fails(ctx, 2, "--target-size", "cache", "evict", "--target-size", "lots")
	var res relay.EvictResult
	r.json(ctx, &res, "cache", "evict", "--target-size", "2MiB")
	if !slices.Equal(res.Evicted, []string{sums["b"]}) || res.Bytes != 2*size || res.Freed != size || !res.AtTarget || res.TargetSize != 2*size {
		t.Fatalf("evict to 2MiB: %+v, want b evicted (LRU, a is needed), 2 MiB left", res)
	}
	out := r.ok(ctx, "cache", "evict", "--target-size", "0")
	if !strings.Contains(out, "1 blobs evicted") || !strings.Contains(out, sums["cc"]) || !strings.Contains(out, "still above the target") {
		t.Fatalf("evict to 0:\n%s", out)
	}
	st, err := rl.Node.Cache()
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Blobs) != 1 || st.Blobs[0].SHA256 != sums["a"] {
		t.Fatalf("cache after evictions: %+v, want only a (needed)", st.Blobs)
	}
}
