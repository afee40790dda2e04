package central

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/pquerna/otp/totp"
	"github.com/skip2/go-qrcode"

	"github.com/edgesync/edgesync/internal/httpx"
)

// Two-step sign-in: TOTP (RFC 6238) per account, with single-use recovery
// codes. The TOTP secret must be readable to check a code, so it is stored
// as is in central's replicated state (like the offline signing keys);
// recovery codes are stored as SHA-256 hashes.

const recoveryCodes = 10

var (
	// ErrCodeRequired is a right password for an account with two-step
	// sign-in, given without a code.
	ErrCodeRequired = errors.New("central: two-step sign-in: a code is required")
	// ErrNoEnrolment means there is no TOTP enrolment to confirm.
	ErrNoEnrolment = errors.New("central: no two-step enrolment started")
	// ErrWrongCode is a TOTP or recovery code that does not match.
	ErrWrongCode = errors.New("central: wrong code")
)

// TOTPEnrolment is what an account needs to add central to its
// authenticator app: the otpauth URL, its secret and a QR code of the URL.
type TOTPEnrolment struct {
	URL    string `json:"url"`
	Secret string `json:"secret"`
	QRPNG  []byte `json:"qr_png"` // base64 in JSON
}

// BeginTOTP starts (or restarts) an account's enrolment; two-step sign-in
// is on once ConfirmTOTP has checked a first code.
func (n *Node) BeginTOTP(ctx context.Context, name string) (TOTPEnrolment, error) {
	cur, err := n.freshAccount(ctx, name)
	if err != nil {
		return TOTPEnrolment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "edgesync", AccountName: cur.Name})
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("generate TOTP key: %w", err)
	}
	png, err := qrcode.Encode(key.URL(), qrcode.Medium, 256)
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("encode QR code: %w", err)
	}
	st := cur.twoStepState
	st.TOTPPending = key.Secret()
	if err := n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: cur.Account, Prev: cur.Rev, TwoStep: &st}}}); err != nil {
		return TOTPEnrolment{}, err
	}
	return TOTPEnrolment{URL: key.URL(), Secret: key.Secret(), QRPNG: png}, nil
}

// ConfirmTOTP turns two-step sign-in on with a first code from the pending
// enrolment and returns new recovery codes (shown once).
func (n *Node) ConfirmTOTP(ctx context.Context, name, code string) ([]string, error) {
	cur, err := n.freshAccount(ctx, name)
	if err != nil {
		return nil, err
	}
	if cur.TOTPPending == "" {
		return nil, ErrNoEnrolment
	}
	if !totp.Validate(strings.TrimSpace(code), cur.TOTPPending) {
		return nil, ErrWrongCode
	}
	codes, hashes := newRecoveryCodes()
	st := twoStepState{TOTP: cur.TOTPPending, Recovery: hashes}
	if err := n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: cur.Account, Prev: cur.Rev, TwoStep: &st}}}); err != nil {
		return nil, err
	}
	n.log.Info("Two-step sign-in enrolled", "account", cur.Name)
	return codes, nil
}

// ResetTOTP turns two-step sign-in off for an account (an administrator's
// reset after a lost phone and lost recovery codes).
func (n *Node) ResetTOTP(ctx context.Context, name string) error {
	cur, err := n.freshAccount(ctx, name)
	if err != nil {
		return err
	}
	return n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: cur.Account, Prev: cur.Rev, TwoStep: &twoStepState{}}}})
}

func newRecoveryCodes() (codes, hashes []string) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	for range recoveryCodes {
		b := make([]byte, 6)
		rand.Read(b)
		c := strings.ToLower(enc.EncodeToString(b))
		c = c[:5] + "-" + c[5:]
		codes = append(codes, c)
		hashes = append(hashes, recoveryHash(c))
	}
	return codes, hashes
}

func recoveryHash(code string) string {
	s := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(code))))
	return hex.EncodeToString(s[:])
}

// checkSecondStep checks code for an account whose password was right: a
// current TOTP code, or an unused recovery code (then used up).
func (n *Node) checkSecondStep(ctx context.Context, a *storedAccount, code string) error {
	code = strings.TrimSpace(code)
	if a.TOTP == "" {
		return nil
	}
	if code == "" {
		return ErrCodeRequired
	}
	if totp.Validate(code, a.TOTP) {
		return nil
	}
	h := recoveryHash(code)
	i := slices.IndexFunc(a.Recovery, func(r string) bool { return subtle.ConstantTimeCompare([]byte(r), []byte(h)) == 1 })
	if i < 0 {
		return ErrWrongCode
	}
	st := a.twoStepState
	st.Recovery = slices.Delete(slices.Clone(st.Recovery), i, i+1)
	// Prev makes a code usable once even when two sign-ins race.
	if err := n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: a.Account, Prev: a.Rev, TwoStep: &st}}}); err != nil {
		return fmt.Errorf("use recovery code: %w", err)
	}
	n.log.Info("Recovery code used", "account", a.Name, "left", len(st.Recovery))
	return nil
}

// ---- HTTP ----

// CodeRequest is the body of the TOTP confirmation.
type CodeRequest struct {
	Code string `json:"code"`
}

func (n *Node) totpRoutes(h func(string, http.HandlerFunc)) {
	h("POST /api/v1/account/totp", func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		if p.Account == "" {
			httpx.WriteError(w, http.StatusBadRequest, "no_account", "the admin token belongs to no account")
			return
		}
		e, err := n.BeginTOTP(r.Context(), p.Account)
		writeAccountResult(w, 0, e, err)
	})
	h("POST /api/v1/account/totp/confirm", func(w http.ResponseWriter, r *http.Request) {
		p := principalOf(r)
		var req CodeRequest
		if err := decodeBody(w, r, &req); err != nil {
			writeAccountResult(w, 0, nil, err)
			return
		}
		if p.Account == "" {
			httpx.WriteError(w, http.StatusBadRequest, "no_account", "the admin token belongs to no account")
			return
		}
		codes, err := n.ConfirmTOTP(r.Context(), p.Account, req.Code)
		switch {
		case errors.Is(err, ErrNoEnrolment):
			httpx.WriteError(w, http.StatusConflict, "no_enrolment", err.Error())
		case errors.Is(err, ErrWrongCode):
			httpx.WriteError(w, http.StatusBadRequest, "wrong_code", err.Error())
		default:
			writeAccountResult(w, 0, map[string]any{"recovery_codes": codes}, err)
		}
	})
	h("DELETE /api/v1/accounts/{name}/totp", func(w http.ResponseWriter, r *http.Request) {
		err := n.ResetTOTP(r.Context(), r.PathValue("name"))
		writeAccountResult(w, 0, map[string]any{"account": r.PathValue("name"), "two_step": false}, err)
	})
}
