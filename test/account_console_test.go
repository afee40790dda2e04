package test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/account"
)

// TestConsoleAccountBrowser signs in to the console in headless Chromium
// with an account and its password: a wrong password is refused, a
// site-operator scoped to another site sees none of branch-1, and one
// scoped to branch-1 sees its devices and acknowledges an event under its
// own name.
func TestConsoleAccountBrowser(t *testing.T) {
	n, _, _ := consoleNet(t)
	c := n.Centrals[0].Node
	base := c.URL()
	hc := insecureClient(t, n)
	defer hc.CloseIdleConnections()
	const pw = "a long enough password"
	for _, a := range []account.Account{
		{Name: "olivia", Role: account.RoleSiteOperator, Sites: []string{"branch-1"}, Permissions: []account.Permission{account.PermEvents}},
		{Name: "oscar", Role: account.RoleSiteOperator, Sites: []string{"branch-9"}},
	} {
		b, _ := json.Marshal(central.AccountRequest{Account: a, Password: pw})
		req, _ := http.NewRequest("POST", base+"/api/v1/accounts", bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+n.AdminToken())
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("add account %s: %s", a.Name, resp.Status)
		}
	}
	dir := artifactDir(t)
	ctx, cancel := browser(t)
	defer cancel()
	var text string
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	signIn := func(name, pass string) chromedp.Tasks {
		return chromedp.Tasks{
			chromedp.Navigate(base + "/login"),
			chromedp.WaitVisible("#account", chromedp.ByID),
			chromedp.SendKeys("#account", name, chromedp.ByID),
			chromedp.SendKeys("#password", pass, chromedp.ByID),
			chromedp.Click("#signin-account", chromedp.ByID),
		}
	}
	run("wrong password", signIn("olivia", "not the password at all"),
		chromedp.WaitVisible(".error", chromedp.ByQuery),
		chromedp.Text(".error", &text, chromedp.ByQuery),
		screenshot(dir, "01-wrong-password"))
	if !strings.Contains(text, "Wrong account or password") {
		t.Fatalf("wrong password: page says %q", text)
	}
	run("other site's operator", signIn("oscar", pw),
		chromedp.WaitVisible("#sites", chromedp.ByID),
		chromedp.Text("body", &text, chromedp.ByQuery),
		screenshot(dir, "02-other-site"))
	if strings.Contains(text, "branch-1") {
		t.Fatalf("an operator of branch-9 sees branch-1: %q", text)
	}
	run("other site's devices",
		chromedp.Navigate(base+"/devices"),
		chromedp.WaitVisible("#q", chromedp.ByID),
		chromedp.Text("body", &text, chromedp.ByQuery))
	if strings.Contains(text, "web-01") {
		t.Fatalf("an operator of branch-9 lists web-01: %q", text)
	}
	run("sign out",
		chromedp.Click("form.logout button", chromedp.ByQuery),
		chromedp.WaitVisible("#account", chromedp.ByID))
	run("operator of branch-1", signIn("olivia", pw),
		chromedp.WaitVisible("#sites", chromedp.ByID),
		chromedp.Text("#sites", &text, chromedp.ByID),
		screenshot(dir, "03-overview"))
	if !strings.Contains(text, "branch-1") {
		t.Fatalf("olivia's overview: %q", text)
	}
	run("devices",
		chromedp.Navigate(base+"/devices?q=web-01"),
		chromedp.WaitVisible(`a.device`, chromedp.ByQuery),
		chromedp.Text("#devices tbody", &text, chromedp.ByQuery))
	if !strings.Contains(text, "web-01") {
		t.Fatalf("olivia's devices: %q", text)
	}
	var qr string
	run("two-step enrolment",
		chromedp.Navigate(base+"/account/totp"),
		chromedp.WaitVisible("#totp-begin", chromedp.ByID),
		chromedp.Click("#totp-begin", chromedp.ByID),
		chromedp.WaitVisible("#totp-qr", chromedp.ByID),
		chromedp.AttributeValue("#totp-qr", "src", &qr, nil, chromedp.ByID),
		screenshot(dir, "04-totp-qr"))
	if !strings.HasPrefix(qr, "data:image/png;base64,") {
		t.Fatalf("enrolment QR image: %.40q", qr)
	}
	evs, err := c.EventList(central.EventFilter{Limit: 1000, In: func(s string) bool { return s == "branch-1" }})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) == 0 {
		t.Log("no event of branch-1 to acknowledge here: acknowledgement by scope is covered in central (TestScope_SiteOperator)")
		return
	}
	run("acknowledge",
		chromedp.Navigate(base+"/events"),
		chromedp.WaitVisible("#events form button", chromedp.ByQuery),
		chromedp.Click("#events form button", chromedp.ByQuery),
		chromedp.WaitVisible(`//td[contains(., "acknowledged by olivia")]`, chromedp.BySearch),
		screenshot(dir, "05-acked"))
}
