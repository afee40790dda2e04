package central

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/audit"
	"github.com/edgesync/edgesync/internal/csvx"
	"github.com/edgesync/edgesync/internal/httpx"
)

// The account, sign-in and token routes of the admin API.

// SignInTTL is how long a sign-in token lasts.
const SignInTTL = 8 * time.Hour

// maxImportBytes caps an account CSV upload.
const maxImportBytes = 4 << 20

func (n *Node) accountRoutes(h func(string, http.HandlerFunc)) {
	h("POST /api/v1/signin", n.handleSignIn)
	h("GET /api/v1/whoami", n.handleWhoami)
	h("POST /api/v1/account/password", n.handleOwnPassword)
	h("GET /api/v1/accounts", func(w http.ResponseWriter, r *http.Request) {
		as, err := n.Accounts()
		writeAccountResult(w, 0, as, err)
	})
	h("POST /api/v1/accounts", n.handleAccountAdd)
	h("GET /api/v1/accounts/{name}", func(w http.ResponseWriter, r *http.Request) {
		a, err := n.Account(r.PathValue("name"))
		writeAccountResult(w, 0, a, err)
	})
	h("PATCH /api/v1/accounts/{name}", n.handleAccountSet)
	h("DELETE /api/v1/accounts/{name}", func(w http.ResponseWriter, r *http.Request) {
		err := n.DeleteAccount(r.Context(), r.PathValue("name"))
		writeAccountResult(w, 0, map[string]any{"deleted": r.PathValue("name")}, err)
	})
	h("PUT /api/v1/accounts/{name}/password", n.handleAccountPassword)
	h("GET /api/v1/accounts/export", n.handleAccountExport)
	h("POST /api/v1/accounts/import", n.handleAccountImport)
	n.totpRoutes(h) // totp.go
	h("GET /api/v1/tokens", n.handleTokens)
	h("POST /api/v1/tokens", n.handleTokenCreate)
	h("DELETE /api/v1/tokens/{id}", n.handleTokenRevoke)
}

// writeAccountResult maps account errors to statuses with a stable code.
func writeAccountResult(w http.ResponseWriter, status int, v any, err error) {
	if status == 0 {
		status = http.StatusOK
	}
	var mbe *http.MaxBytesError
	switch {
	case err == nil:
		httpx.WriteJSON(w, status, v)
	case errors.Is(err, ErrBadRequest):
		httpx.WriteError(w, http.StatusBadRequest, "bad_request", err.Error())
	case errors.As(err, &mbe):
		httpx.WriteError(w, http.StatusRequestEntityTooLarge, "too_large", err.Error())
	case errors.Is(err, ErrNoAccount):
		httpx.WriteError(w, http.StatusNotFound, "no_account", err.Error())
	case errors.Is(err, ErrNoToken):
		httpx.WriteError(w, http.StatusNotFound, "no_token", err.Error())
	case errors.Is(err, ErrAccountExists):
		httpx.WriteError(w, http.StatusConflict, "account_exists", err.Error())
	case errors.Is(err, ErrAccountChanged):
		httpx.WriteError(w, http.StatusConflict, "changed", err.Error())
	case errors.Is(err, errOutOfScope):
		httpx.WriteError(w, http.StatusForbidden, "out_of_scope", err.Error())
	default:
		httpx.WriteError(w, http.StatusServiceUnavailable, "unavailable", err.Error())
	}
}

// decodeBody decodes a small JSON body strictly.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}

// ---- sign-in ----

// SignInRequest is the body of POST /api/v1/signin.
type SignInRequest struct {
	Account  string `json:"account"`
	Password string `json:"password"`
	Code     string `json:"code,omitempty"` // TOTP or recovery code, for two-step sign-in
}

// SignInResult is the answer to a sign-in: a token that lasts SignInTTL.
type SignInResult struct {
	Token     string         `json:"token"`
	ExpiresAt time.Time      `json:"expires_at"`
	Account   string         `json:"account"`
	Access    account.Access `json:"access"`
}

// ErrBadCredentials is a refused sign-in: the same answer for an unknown
// account, a wrong password, a disabled account and one with no password.
var ErrBadCredentials = errors.New("central: wrong account or password")

// LockedOutError is a sign-in refused because of earlier failures.
type LockedOutError struct{ RetryAfter time.Duration }

func (e *LockedOutError) Error() string {
	return fmt.Sprintf("central: too many failed sign-ins: try again in %s", e.RetryAfter.Round(time.Second))
}

// dummyHash is verified against when the account does not exist, so the
// answer takes as long as for a wrong password.
var dummyHash, _ = account.HashPassword("not a password of anyone")

// SignIn checks an account's password, rate-limited per account and per
// address (from), and audits the attempt.
func (n *Node) SignIn(ctx context.Context, name, password, code, from string) (account.Account, error) {
	who := name
	if !account.ValidName(name) {
		who = "(invalid account name)"
	}
	record := func(result string) {
		n.view.audit.Record(AuditEntry{Who: who, Action: "sign in", From: from, Result: result}, result != "ok")
	}
	akey, fkey := "account:"+strings.ToLower(name), "addr:"+from
	for _, c := range []struct {
		l *account.Limiter
		k string
	}{{n.auth.byAccount, akey}, {n.auth.byAddr, fkey}} {
		if ok, wait := c.l.Allow(c.k); !ok {
			record("refused: locked out")
			return account.Account{}, &LockedOutError{RetryAfter: wait}
		}
	}
	var a *storedAccount
	if account.ValidName(name) {
		n.raft.View(func(txn *badger.Txn) error { a, _ = getAccount(txn, name); return nil })
	}
	hash := dummyHash
	if a != nil && a.Hash != "" {
		hash = a.Hash
	}
	release, err := n.auth.hashSlot(ctx)
	if err != nil {
		return account.Account{}, err
	}
	ok, verr := account.VerifyPassword(hash, password)
	release()
	if verr != nil {
		n.log.Warn("Stored password hash unreadable", "account", name, "err", verr)
	}
	if !ok || a == nil || a.Hash == "" || a.Disabled {
		reason := "refused: wrong account or password"
		if ok && a != nil && a.Disabled {
			reason = "refused: account disabled"
		}
		lockedA, lockedF := n.auth.byAccount.Fail(akey), n.auth.byAddr.Fail(fkey)
		if lockedA || lockedF {
			reason += " (now locked out)"
			n.log.Warn("Sign-in locked out after repeated failures", "account", who, "from", from)
		}
		record(reason)
		return account.Account{}, ErrBadCredentials
	}
	if err := n.checkSecondStep(ctx, a, code); err != nil {
		if errors.Is(err, ErrCodeRequired) {
			record("refused: code required")
			return account.Account{}, err
		}
		reason := "refused: wrong code"
		if n.auth.byAccount.Fail(akey) || n.auth.byAddr.Fail(fkey) {
			reason += " (now locked out)"
		}
		record(reason)
		return account.Account{}, ErrWrongCode
	}
	n.auth.byAccount.Succeed(akey)
	n.auth.byAddr.Succeed(fkey)
	record("ok")
	return a.Account, nil
}

func (n *Node) handleSignIn(w http.ResponseWriter, r *http.Request) {
	var req SignInRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	a, err := n.SignIn(r.Context(), req.Account, req.Password, req.Code, audit.RemoteHost(r))
	var locked *LockedOutError
	switch {
	case errors.As(err, &locked):
		w.Header().Set("Retry-After", strconv.Itoa(int(locked.RetryAfter.Seconds())+1))
		httpx.WriteError(w, http.StatusTooManyRequests, "locked_out", err.Error())
		return
	case errors.Is(err, ErrBadCredentials):
		httpx.WriteError(w, http.StatusUnauthorized, "bad_credentials", err.Error())
		return
	case errors.Is(err, ErrCodeRequired):
		httpx.WriteError(w, http.StatusUnauthorized, "code_required", err.Error())
		return
	case errors.Is(err, ErrWrongCode):
		httpx.WriteError(w, http.StatusUnauthorized, "wrong_code", err.Error())
		return
	case err != nil:
		writeAccountResult(w, 0, nil, err)
		return
	}
	t, err := n.CreateToken(r.Context(), a.Name, TokenRequest{Name: "signin", Expires: SignInTTL}, true)
	if err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, SignInResult{Token: t.Secret, ExpiresAt: t.ExpiresAt, Account: a.Name, Access: t.Access})
}

// Whoami is what GET /api/v1/whoami answers.
type Whoami struct {
	Who     string         `json:"who"`
	Account string         `json:"account,omitempty"`
	Token   string         `json:"token_id,omitempty"`
	Access  account.Access `json:"access"`
}

func (n *Node) handleWhoami(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	httpx.WriteJSON(w, http.StatusOK, Whoami{Who: p.Who, Account: p.Account, Token: p.TokenID, Access: p.Access})
}

// ---- accounts ----

// AccountRequest is the body of POST /api/v1/accounts.
type AccountRequest struct {
	account.Account
	Password string `json:"password,omitempty"`
}

func (n *Node) handleAccountAdd(w http.ResponseWriter, r *http.Request) {
	var req AccountRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	a := req.Account
	a.Disabled, a.HasPassword, a.CreatedAt, a.UpdatedAt, a.Rev = req.Disabled, false, time.Time{}, time.Time{}, 0
	out, err := n.AddAccount(r.Context(), a, req.Password)
	writeAccountResult(w, http.StatusCreated, out, err)
}

func (n *Node) handleAccountSet(w http.ResponseWriter, r *http.Request) {
	var patch AccountPatch
	if err := decodeBody(w, r, &patch); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	a, err := n.UpdateAccount(r.Context(), r.PathValue("name"), patch)
	writeAccountResult(w, 0, a, err)
}

// PasswordRequest is the body of the password routes.
type PasswordRequest struct {
	Current  string `json:"current,omitempty"` // one's own password change only
	Code     string `json:"code,omitempty"`    // and, with two-step sign-in, a code
	Password string `json:"password"`
}

func (n *Node) handleAccountPassword(w http.ResponseWriter, r *http.Request) {
	var req PasswordRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	err := n.SetPassword(r.Context(), r.PathValue("name"), req.Password)
	writeAccountResult(w, 0, map[string]any{"account": r.PathValue("name"), "password": "changed"}, err)
}

func (n *Node) handleOwnPassword(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	var req PasswordRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	if p.Account == "" {
		httpx.WriteError(w, http.StatusBadRequest, "no_account", "the admin token belongs to no account: use PUT /api/v1/accounts/{name}/password")
		return
	}
	if _, err := n.SignIn(r.Context(), p.Account, req.Current, req.Code, audit.RemoteHost(r)); err != nil {
		httpx.WriteError(w, http.StatusForbidden, "bad_credentials", "the current password is wrong")
		return
	}
	err := n.SetPassword(r.Context(), p.Account, req.Password)
	writeAccountResult(w, 0, map[string]any{"account": p.Account, "password": "changed"}, err)
}

// ImportResult answers an account CSV import.
type ImportResult struct {
	Added   int                `json:"added"`
	Updated int                `json:"updated"`
	Deleted int                `json:"deleted"`
	Errors  []account.RowError `json:"errors,omitempty"`
}

// ImportAccounts applies the rows of an account CSV, all or none.
func (n *Node) ImportAccounts(ctx context.Context, rows []account.ImportRow) (ImportResult, error) {
	var res ImportResult
	var ops []accountOp
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) error {
		for _, row := range rows {
			cur, err := getAccount(txn, row.Account.Name)
			exists := err == nil
			if err != nil && !errors.Is(err, ErrNoAccount) {
				return err
			}
			bad := func(msg string) { res.Errors = append(res.Errors, account.RowError{Line: row.Line, Error: msg}) }
			switch {
			case row.Op == account.OpAdd && exists:
				bad("Add: account " + row.Account.Name + " exists (use Upd)")
			case row.Op != account.OpAdd && !exists:
				bad(row.Op + ": no account " + row.Account.Name)
			case row.Op == account.OpDel:
				ops = append(ops, accountOp{Op: "delete", Account: row.Account})
				res.Deleted++
			case row.Op == account.OpAdd:
				ops = append(ops, accountOp{Op: "add", Account: row.Account})
				res.Added++
			default:
				a := row.Account
				a.Name, a.Disabled = cur.Name, cur.Disabled
				ops = append(ops, accountOp{Op: "update", Account: a, Prev: cur.Rev})
				res.Updated++
			}
		}
		return nil
	})
	if err != nil || len(res.Errors) > 0 {
		return res, err
	}
	for i, row := range rows {
		if row.Password == "" {
			continue
		}
		h, err := n.hashPassword(ctx, row.Password)
		if err != nil {
			return res, err
		}
		ops[i].Hash, ops[i].SetHash = h, true
	}
	if len(ops) > 0 {
		err = n.proposeAccounts(ctx, accountsCommand{Ops: ops})
	}
	return res, err
}

func (n *Node) handleAccountImport(w http.ResponseWriter, r *http.Request) {
	body := http.MaxBytesReader(w, r.Body, maxImportBytes)
	table, err := csvx.ReadISM(body, maxImportBytes)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_csv", err.Error())
		return
	}
	rows, rowErrs := account.ParseISM(table)
	if len(rowErrs) > 0 {
		httpx.WriteJSON(w, http.StatusBadRequest, map[string]any{"code": "bad_rows", "message": fmt.Sprintf("%d bad rows: nothing imported", len(rowErrs)), "errors": rowErrs})
		return
	}
	res, err := n.ImportAccounts(r.Context(), rows)
	if err == nil && len(res.Errors) > 0 {
		httpx.WriteJSON(w, http.StatusConflict, map[string]any{"code": "bad_rows", "message": fmt.Sprintf("%d rows conflict with the accounts held: nothing imported", len(res.Errors)), "errors": res.Errors})
		return
	}
	n.log.Info("Accounts imported", "added", res.Added, "updated", res.Updated, "deleted", res.Deleted, "by", principalOf(r).Who)
	writeAccountResult(w, 0, res, err)
}

func (n *Node) handleAccountExport(w http.ResponseWriter, r *http.Request) {
	as, err := n.Accounts()
	if err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	enc := r.URL.Query().Get("encoding")
	if enc == "" {
		enc = csvx.UTF16LE
	}
	cw, err := csvx.NewWriter(w, enc)
	if err != nil {
		httpx.WriteError(w, http.StatusBadRequest, "bad_encoding", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/csv")
	w.Header().Set("Content-Disposition", `attachment; filename="accounts.csv"`)
	cw.Write(account.ISMHeader)
	for i := range as {
		cw.Write(account.ISMRow(&as[i], as[i].TwoStep))
	}
	if err := cw.Flush(); err != nil {
		n.log.Debug("Account export cut short", "err", err)
	}
}

// ---- tokens ----

func (n *Node) handleTokens(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	owner := p.Account
	if r.URL.Query().Get("all") == "1" {
		if !p.Access.Has(account.PermAccounts) || p.Access.Scoped() {
			httpx.WriteError(w, http.StatusForbidden, "forbidden", "listing every account's tokens needs manage-accounts")
			return
		}
		owner = ""
	} else if owner == "" {
		httpx.WriteJSON(w, http.StatusOK, []Token{}) // the admin token owns none
		return
	}
	ts, err := n.Tokens(owner)
	writeAccountResult(w, 0, ts, err)
}

func (n *Node) handleTokenCreate(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	var req TokenRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeAccountResult(w, 0, nil, err)
		return
	}
	owner := p.Account
	if req.Account != "" && !strings.EqualFold(req.Account, p.Account) {
		if !p.Access.Has(account.PermAccounts) || p.Access.Scoped() {
			httpx.WriteError(w, http.StatusForbidden, "forbidden", "a token for another account needs manage-accounts")
			return
		}
		owner = req.Account
	}
	if owner == "" {
		httpx.WriteError(w, http.StatusBadRequest, "no_account", "the admin token belongs to no account: give --account NAME")
		return
	}
	if p.Account != "" && strings.EqualFold(owner, p.Account) && p.TokenID != "" && !p.Session {
		// A token may only make tokens as narrow as itself.
		if req.Role == "" {
			req.Role = p.Access.Role
		}
		if len(req.Sites) == 0 && p.Access.Scoped() {
			req.Sites = p.Access.Sites
		}
	}
	t, err := n.CreateToken(r.Context(), owner, req, false)
	if err == nil {
		n.log.Info("API token created", "account", owner, "token", t.ID, "name", t.Name, "by", p.Who)
	}
	writeAccountResult(w, http.StatusCreated, t, err)
}

func (n *Node) handleTokenRevoke(w http.ResponseWriter, r *http.Request) {
	p := principalOf(r)
	owner := p.Account
	if p.Access.Has(account.PermAccounts) && !p.Access.Scoped() {
		owner = ""
	} else if owner == "" {
		writeAccountResult(w, 0, nil, ErrNoToken)
		return
	}
	id := r.PathValue("id")
	err := n.RevokeToken(r.Context(), owner, id)
	writeAccountResult(w, 0, map[string]any{"revoked": id}, err)
}
