package central

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/edgesync/edgesync/internal/account"
)

// TestTOTP_TwoStepSignIn: enrol (QR code and key), confirm with a first
// code, then signing in needs a code; a recovery code works once; a wrong
// code is refused and audited; an administrator can reset it.
func TestTOTP_TwoStepSignIn(t *testing.T) {
	tn := startTestNode(t, "")
	tn.waitDenyBudget(t)
	tn.addAccount(t, account.Account{Name: "kim", Role: account.RoleViewer}, testPassword)
	tok := tn.signIn(t, "kim", testPassword)

	tn.must(t, 409, tok, "POST", "/api/v1/account/totp/confirm", CodeRequest{Code: "123456"})
	var e TOTPEnrolment
	tn.must(t, 200, tok, "POST", "/api/v1/account/totp", nil).decode(t, &e)
	if e.Secret == "" || !bytes.HasPrefix(e.QRPNG, []byte("\x89PNG")) {
		t.Fatalf("enrolment: secret %q, QR %d bytes", e.Secret, len(e.QRPNG))
	}
	// Until confirmed, sign-in takes the password alone.
	tn.signIn(t, "kim", testPassword)
	if r := tn.call(t, tok, "POST", "/api/v1/account/totp/confirm", CodeRequest{Code: "000000x"}); r.Status != 400 || r.Code != "wrong_code" {
		t.Fatalf("confirm with a wrong code: %d %s", r.Status, r.Body)
	}
	code, err := totp.GenerateCode(e.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Recovery []string `json:"recovery_codes"`
	}
	tn.must(t, 200, tok, "POST", "/api/v1/account/totp/confirm", CodeRequest{Code: code}).decode(t, &conf)
	if len(conf.Recovery) != recoveryCodes {
		t.Fatalf("%d recovery codes", len(conf.Recovery))
	}
	if a, _ := tn.Account("kim"); !a.TwoStep {
		t.Fatalf("account after enrolment: %+v", a)
	}
	signIn := func(code string) apiResult {
		return tn.call(t, "", "POST", "/api/v1/signin", SignInRequest{Account: "kim", Password: testPassword, Code: code})
	}
	if r := signIn(""); r.Status != 401 || r.Code != "code_required" {
		t.Fatalf("password only: %d %s", r.Status, r.Body)
	}
	if r := signIn("not-a-code"); r.Status != 401 || r.Code != "wrong_code" {
		t.Fatalf("wrong code: %d %s", r.Status, r.Body)
	}
	code, _ = totp.GenerateCode(e.Secret, time.Now())
	if r := signIn(code); r.Status != 200 {
		t.Fatalf("password and code: %d %s", r.Status, r.Body)
	}
	if r := signIn(conf.Recovery[0]); r.Status != 200 {
		t.Fatalf("recovery code: %d %s", r.Status, r.Body)
	}
	if r := signIn(conf.Recovery[0]); r.Code != "wrong_code" {
		t.Fatalf("recovery code used twice: %d %s", r.Status, r.Body)
	}
	waitFor(t, 10*time.Second, "wrong code audited", func() bool { return tn.auditHas(t, "kim", "sign in", "refused: wrong code") })
	tn.must(t, 200, tn.token, "DELETE", "/api/v1/accounts/kim/totp", nil)
	tn.must(t, 404, tn.token, "DELETE", "/api/v1/accounts/nobody/totp", nil)
	if r := signIn(""); r.Status != http.StatusOK {
		t.Fatalf("after reset: %d %s", r.Status, r.Body)
	}
	// The secret never leaves central in an account answer.
	if r := tn.must(t, 200, tn.token, "GET", "/api/v1/accounts", nil); bytes.Contains(r.Body, []byte(e.Secret)) {
		t.Fatal("account list holds the TOTP secret")
	}
}
