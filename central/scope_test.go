package central

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edgesync/edgesync/collector/record"
	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/event"
)

func (tn *testNode) propose(t *testing.T, cmd []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := tn.raft.Propose(ctx, cmd)
	if err == nil {
		err = resultError(out)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func oplogRec(id, site string, seq uint64) []byte {
	r := record.Record{DeviceID: id, Seq: seq, Kind: record.KindOplog, CollectedAt: time.Unix(1500, 0).UTC(), Schema: 1, Payload: json.RawMessage(`{"op":"logon"}`),
		ReceivedAt: time.Unix(2500, 0).UTC(), Channel: record.ChannelOnline, SiteID: site, RelayNode: site + "-r1"}
	b, _ := json.Marshal(r)
	return b
}

// TestScope_SiteOperator: an account scoped to s1 sees and changes only s1
// on the server: device lists and details, sites, events and their
// acknowledgement, tasks, and the console's pages and CSV export; an
// admin-no-oplog account reads no operation logs.
func TestScope_SiteOperator(t *testing.T) {
	const (
		a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" // at s1
		b = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb" // at s2
	)
	tn := startTestNode(t, "")
	at := time.Now().UTC()
	for _, s := range []string{"s1", "s2"} {
		tn.propose(t, (&contactCommand{Site: s, Relay: s + "-r1", At: at}).encode())
	}
	tn.propose(t, siteIngest("s1", 1, siteRec(a, "s1", 1), oplogRec(a, "s1", 2)))
	tn.propose(t, siteIngest("s2", 1, siteRec(b, "s2", 1)))
	for _, s := range []string{"s1", "s2"} {
		tn.propose(t, encodeEvent(event.Event{Number: 1, Severity: event.Warning, Type: event.TypeError, Source: s + "-r1", Time: at, Message: "event at " + s}))
	}
	tn.propose(t, encodeJSONCommand(cmdPackageAdd, &Package{ID: "p@1", Name: "p", Version: "1", Type: PackageFile, FileName: "p", SHA256: strings.Repeat("ab", 32), Size: 1, CreatedAt: at}))
	var s2Task TaskView
	tn.must(t, 201, tn.token, "POST", "/api/v1/tasks", TaskRequest{Package: "p@1", Site: "s2"}).decode(t, &s2Task)

	tn.addAccount(t, account.Account{Name: "op", Role: account.RoleSiteOperator, Sites: []string{"s1"}, Permissions: account.OperatorPermissions}, testPassword)
	tn.addAccount(t, account.Account{Name: "nolog", Role: account.RoleAdminNoOplog}, testPassword)
	op, nolog := tn.signIn(t, "op", testPassword), tn.signIn(t, "nolog", testPassword)

	var devs DeviceList
	tn.must(t, 200, op, "GET", "/api/v1/devices", nil).decode(t, &devs)
	if devs.Total != 1 || devs.Devices[0].ID != a {
		t.Errorf("operator's device list: %+v", devs)
	}
	tn.must(t, 200, op, "GET", "/api/v1/devices?site=s2", nil).decode(t, &devs)
	if devs.Total != 0 {
		t.Errorf("operator's device list of s2: %+v", devs)
	}
	tn.must(t, 200, op, "GET", "/api/v1/devices/"+a, nil)
	for _, p := range []string{"", "/history", "/records"} {
		if r := tn.call(t, op, "GET", "/api/v1/devices/"+b+p, nil); r.Status != 404 {
			t.Errorf("operator GET device at s2%s: %d, want 404", p, r.Status)
		}
	}
	tn.must(t, 404, op, "GET", "/api/v1/offline/devices/"+b, nil)
	var sites []SiteView
	tn.must(t, 200, op, "GET", "/api/v1/sites", nil).decode(t, &sites)
	if len(sites) != 1 || sites[0].ID != "s1" {
		t.Errorf("operator's sites: %+v", sites)
	}
	var evs []EventView
	tn.must(t, 200, op, "GET", "/api/v1/events", nil).decode(t, &evs)
	var s1Event, s2Event uint64
	for _, e := range evs {
		if e.Source != "s1-r1" {
			t.Errorf("operator sees event %+v", e)
		}
	}
	var all []EventView
	tn.must(t, 200, tn.token, "GET", "/api/v1/events", nil).decode(t, &all)
	for _, e := range all {
		switch e.Message {
		case "event at s1":
			s1Event = e.ID
		case "event at s2":
			s2Event = e.ID
		}
	}
	if len(evs) == 0 || s1Event == 0 || s2Event == 0 {
		t.Fatalf("events: operator %d, all %+v", len(evs), all)
	}
	tn.must(t, 404, op, "POST", fmt.Sprintf("/api/v1/events/%d/ack", s2Event), nil)
	tn.must(t, 200, op, "POST", fmt.Sprintf("/api/v1/events/%d/ack", s1Event), nil)

	var tasks []TaskView
	tn.must(t, 200, op, "GET", "/api/v1/tasks", nil).decode(t, &tasks)
	if len(tasks) != 0 {
		t.Errorf("operator sees tasks of s2: %+v", tasks)
	}
	tn.must(t, 404, op, "GET", "/api/v1/tasks/"+s2Task.ID, nil)
	tn.must(t, 404, op, "POST", "/api/v1/tasks/"+s2Task.ID+"/stop", nil)
	tn.must(t, 404, op, "DELETE", "/api/v1/tasks/"+s2Task.ID, nil)
	for _, req := range []TaskRequest{{Package: "p@1", Site: "s2"}, {Package: "p@1", All: true}, {Package: "p@1", Devices: []string{b}}} {
		if r := tn.call(t, op, "POST", "/api/v1/tasks", req); r.Status != 403 || r.Code != "out_of_scope" {
			t.Errorf("operator creates task %+v: %d %s", req, r.Status, r.Body)
		}
	}
	var own TaskView
	tn.must(t, 201, op, "POST", "/api/v1/tasks", TaskRequest{Package: "p@1", Site: "s1"}).decode(t, &own)
	tn.must(t, 200, op, "GET", "/api/v1/tasks", nil).decode(t, &tasks)
	if len(tasks) != 1 || tasks[0].ID != own.ID {
		t.Errorf("operator's tasks: %+v", tasks)
	}

	// Operation logs: the operator has read-oplog, admin-no-oplog has not.
	var recs []record.Record
	tn.must(t, 200, op, "GET", "/api/v1/devices/"+a+"/records", nil).decode(t, &recs)
	if len(recs) != 2 {
		t.Errorf("operator reads %d records of a, want 2 (inventory and oplog)", len(recs))
	}
	tn.must(t, 200, nolog, "GET", "/api/v1/devices/"+a+"/records", nil).decode(t, &recs)
	if len(recs) != 1 || recs[0].Kind != record.KindInventory {
		t.Errorf("admin-no-oplog reads %+v, want the inventory only", recs)
	}

	// The console, signed in with the password, filters on the server too.
	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Transport: tn.hc.Transport, Timeout: 10 * time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.PostForm(tn.base+"/login", url.Values{"account": {"op"}, "password": {testPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	get := func(path string) string {
		resp, err := hc.Get(tn.base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("console GET %s: %s", path, resp.Status)
		}
		return string(body)
	}
	if page := get("/devices"); !strings.Contains(page, a) || strings.Contains(page, b) {
		t.Errorf("console device list of the operator shows s2 or misses s1")
	}
	if csv := get("/devices.csv"); !strings.Contains(csv, a) || strings.Contains(csv, b) {
		t.Errorf("console CSV export of the operator:\n%s", csv)
	}
	if page := get("/"); strings.Contains(page, "s2-r1") || !strings.Contains(page, "s1-r1") {
		t.Errorf("console overview of the operator shows s2 or misses s1")
	}
	if resp, err := hc.Get(tn.base + "/devices/" + b); err != nil || resp.StatusCode != 404 {
		t.Errorf("console device at s2: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	// Disabling the account ends its console session.
	tn.must(t, 200, tn.token, "PATCH", "/api/v1/accounts/op", AccountPatch{Disabled: ptr(true)})
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if resp, err := hc.Get(tn.base + "/devices"); err != nil || resp.StatusCode != http.StatusSeeOther {
		t.Errorf("console after disable: %v %v, want a redirect to sign in", resp.Status, err)
	} else {
		resp.Body.Close()
	}
}
