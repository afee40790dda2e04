package central

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/cmdenc"
	"github.com/edgesync/edgesync/internal/httpx"
	"github.com/edgesync/edgesync/internal/kv"
)

// Accounts and API tokens in central's replicated state. The proposer
// hashes passwords (argon2id) and tokens (SHA-256) before proposing, so the
// Raft log holds neither; Apply only checks preconditions and writes.

var (
	prefixAccount = []byte("u/") // u/<lower-case name> → storedAccount JSON
	prefixToken   = []byte("t/") // t/<token SHA-256 hex> → storedToken JSON
)

// Account refusals decided in Apply (nothing written).
var (
	// ErrNoAccount means the named account does not exist.
	ErrNoAccount = errors.New("central: no such account")
	// ErrAccountExists means an account of that name exists.
	ErrAccountExists = errors.New("central: account exists")
	// ErrAccountChanged means the account changed since it was read.
	ErrAccountChanged = errors.New("central: account changed concurrently")
	// ErrNoToken means the token ID is unknown (or not the caller's).
	ErrNoToken = errors.New("central: no such token")
)

// storedAccount is an account with its password hash, as stored.
type storedAccount struct {
	account.Account
	Hash string `json:"hash,omitempty"`
	twoStepState
}

// twoStepState is an account's TOTP (RFC 6238) enrolment: the secret in
// use, one being enrolled, and the SHA-256 of the unused recovery codes.
type twoStepState struct {
	TOTP        string   `json:"totp,omitempty"`
	TOTPPending string   `json:"totp_pending,omitempty"`
	Recovery    []string `json:"recovery,omitempty"`
}

// Token is an API token as listed (never the token itself).
type Token struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Account   string         `json:"account"`
	Role      account.Role   `json:"role"`
	Sites     []string       `json:"sites,omitempty"` // narrower than the account's; empty: the account's
	Session   bool           `json:"session,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at,omitzero"`
	Access    account.Access `json:"access"` // what the token may do now (filled when listed)
}

type storedToken struct {
	Token
	Hash string `json:"hash"`
}

// accountOp is one change of an accounts command.
type accountOp struct {
	Op      string          `json:"op"` // add, update, delete
	Account account.Account `json:"account"`
	Hash    string          `json:"hash,omitempty"`     // add, update: the new password hash
	SetHash bool            `json:"set_hash,omitempty"` // update: replace the hash (with Hash, "" clears)
	Prev    uint64          `json:"prev,omitempty"`     // update: the Rev read; 0: any
	TwoStep *twoStepState   `json:"two_step,omitempty"` // update: replaces the TOTP state (totp.go)
}

// accountsCommand applies all its ops or none.
type accountsCommand struct {
	At  time.Time   `json:"at"`
	Ops []accountOp `json:"ops"`
}

type tokenCommand struct {
	Op    string      `json:"op"` // create, revoke
	At    time.Time   `json:"at"`
	Token storedToken `json:"token,omitzero"`
	ID    string      `json:"id,omitempty"` // revoke
	Owner string      `json:"owner,omitempty"`
}

func accountKey(name string) []byte { return key(prefixAccount, strings.ToLower(name)) }

// applyAccounts applies the account and token commands.
func (f *fsm) applyAccounts(txn *badger.Txn, index uint64, typ commandType, r *cmdenc.Reader) []byte {
	var err error
	switch typ {
	case cmdAccounts:
		var c accountsCommand
		if err := decodeJSONCommand(r, &c); err != nil {
			return errorResult(err)
		}
		err = applyAccountOps(txn, index, &c)
	case cmdTokens:
		var c tokenCommand
		if err := decodeJSONCommand(r, &c); err != nil {
			return errorResult(err)
		}
		err = applyTokenOp(txn, &c)
	}
	var refused refusal
	switch {
	case errors.As(err, &refused):
		return errorResult(refused.error)
	case err != nil:
		return storageFailure(err)
	}
	return nil
}

// refusal marks an error decided before anything was written.
type refusal struct{ error }

func applyAccountOps(txn *badger.Txn, index uint64, c *accountsCommand) error {
	cur := make([]*storedAccount, len(c.Ops))
	for i, op := range c.Ops { // check everything first: all or nothing
		var a storedAccount
		found, err := kv.GetJSON(txn, accountKey(op.Account.Name), &a)
		if err != nil {
			return err
		}
		switch {
		case op.Op == "add" && found:
			return refusal{fmt.Errorf("%s: %w", op.Account.Name, ErrAccountExists)}
		case op.Op != "add" && !found:
			return refusal{fmt.Errorf("%s: %w", op.Account.Name, ErrNoAccount)}
		case op.Op == "update" && op.Prev != 0 && a.Rev != op.Prev:
			return refusal{fmt.Errorf("%s: %w", op.Account.Name, ErrAccountChanged)}
		case op.Op != "add" && op.Op != "update" && op.Op != "delete":
			return refusal{fmt.Errorf("account op %q", op.Op)}
		}
		cur[i] = &a
	}
	for i, op := range c.Ops {
		k := accountKey(op.Account.Name)
		if op.Op == "delete" {
			if err := txn.Delete(k); err != nil {
				return err
			}
			if err := deleteTokens(txn, func(t *storedToken) bool { return strings.EqualFold(t.Account, op.Account.Name) }); err != nil {
				return err
			}
			continue
		}
		a := storedAccount{Account: op.Account, Hash: op.Hash}
		if op.Op == "update" {
			a.Name, a.CreatedAt, a.twoStepState = cur[i].Name, cur[i].CreatedAt, cur[i].twoStepState
			if !op.SetHash {
				a.Hash = cur[i].Hash
			}
			if op.TwoStep != nil {
				a.twoStepState = *op.TwoStep
			}
		} else {
			a.CreatedAt = c.At
		}
		a.UpdatedAt, a.Rev, a.HasPassword, a.TwoStep = c.At, index, a.Hash != "", a.TOTP != ""
		if err := kv.PutJSON(txn, k, &a); err != nil {
			return err
		}
	}
	return nil
}

func applyTokenOp(txn *badger.Txn, c *tokenCommand) error {
	switch c.Op {
	case "create":
		t := c.Token
		if t.Account != "" {
			if found, err := kv.GetJSON(txn, accountKey(t.Account), &storedAccount{}); err != nil {
				return err
			} else if !found {
				return refusal{fmt.Errorf("%s: %w", t.Account, ErrNoAccount)}
			}
		}
		if _, err := txn.Get(key(prefixToken, t.Hash)); err == nil {
			return refusal{fmt.Errorf("token %s: %w", t.ID, ErrExists)}
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		// Expired tokens go when a new one comes (the command's time, so
		// every replica drops the same ones).
		if err := deleteTokens(txn, func(o *storedToken) bool { return !o.ExpiresAt.IsZero() && !c.At.Before(o.ExpiresAt) }); err != nil {
			return err
		}
		return kv.PutJSON(txn, key(prefixToken, t.Hash), &t)
	case "revoke":
		n := 0
		err := deleteTokens(txn, func(t *storedToken) bool {
			ok := t.ID == c.ID && (c.Owner == "" || strings.EqualFold(t.Account, c.Owner))
			if ok {
				n++
			}
			return ok
		})
		if err == nil && n == 0 {
			return refusal{fmt.Errorf("token %s: %w", c.ID, ErrNoToken)}
		}
		return err
	}
	return refusal{fmt.Errorf("token op %q", c.Op)}
}

// deleteTokens deletes the tokens match selects, in key order.
func deleteTokens(txn *badger.Txn, match func(*storedToken) bool) error {
	var doomed [][]byte
	err := eachTokenTxn(txn, func(k []byte, t *storedToken) error {
		if match(t) {
			doomed = append(doomed, k)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := txn.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func eachTokenTxn(txn *badger.Txn, fn func(k []byte, t *storedToken) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefixToken
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		var t storedToken
		if err := it.Item().Value(func(b []byte) error { return json.Unmarshal(b, &t) }); err != nil {
			return err
		}
		if err := fn(it.Item().KeyCopy(nil), &t); err != nil {
			return err
		}
	}
	return nil
}

// ---- node API ----

// proposeAccounts commits account ops and maps refusals to their errors.
func (n *Node) proposeAccounts(ctx context.Context, c accountsCommand) error {
	c.At = time.Now().UTC()
	return n.proposeRefusable(ctx, encodeJSONCommand(cmdAccounts, &c))
}

func (n *Node) proposeRefusable(ctx context.Context, cmd []byte) error {
	out, err := n.raft.Propose(ctx, cmd)
	if err != nil {
		return err
	}
	if err := resultError(out); err != nil {
		for _, known := range []error{ErrNoAccount, ErrAccountExists, ErrAccountChanged, ErrNoToken, ErrExists} {
			if strings.Contains(err.Error(), known.Error()) {
				return fmt.Errorf("%s: %w", strings.TrimSuffix(string(out[1:]), ": "+known.Error()), known)
			}
		}
		return err
	}
	return nil
}

func getAccount(txn *badger.Txn, name string) (*storedAccount, error) {
	var a storedAccount
	found, err := kv.GetJSON(txn, accountKey(name), &a)
	if err == nil && !found {
		return nil, fmt.Errorf("%s: %w", name, ErrNoAccount)
	}
	return &a, err
}

// Accounts lists the accounts by name.
func (n *Node) Accounts() ([]account.Account, error) {
	out := []account.Account{}
	err := n.raft.View(func(txn *badger.Txn) error {
		return eachJSON(txn, prefixAccount, func(b []byte) error {
			var a storedAccount
			if err := json.Unmarshal(b, &a); err != nil {
				return err
			}
			out = append(out, a.Account)
			return nil
		})
	})
	return out, err
}

// Account returns one account.
func (n *Node) Account(name string) (account.Account, error) {
	var a *storedAccount
	err := n.raft.View(func(txn *badger.Txn) (err error) { a, err = getAccount(txn, name); return err })
	if err != nil {
		return account.Account{}, err
	}
	return a.Account, nil
}

func (n *Node) freshAccount(ctx context.Context, name string) (*storedAccount, error) {
	var a *storedAccount
	err := n.raft.ConsistentView(ctx, func(txn *badger.Txn) (err error) { a, err = getAccount(txn, name); return err })
	return a, err
}

// AddAccount creates an account; password may be empty (no sign-in with a
// password until one is set).
func (n *Node) AddAccount(ctx context.Context, a account.Account, password string) (account.Account, error) {
	a.Normalize()
	if err := a.Validate(); err != nil {
		return account.Account{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	op := accountOp{Op: "add", Account: a}
	if password != "" {
		h, err := n.hashPassword(ctx, password)
		if err != nil {
			return account.Account{}, err
		}
		op.Hash = h
	}
	if err := n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{op}}); err != nil {
		return account.Account{}, err
	}
	n.log.Info("Account added", "account", a.Name, "role", a.Role)
	s, err := n.freshAccount(ctx, a.Name)
	if err != nil {
		return account.Account{}, err
	}
	return s.Account, nil
}

// AccountPatch changes some fields of an account; nil fields stay.
type AccountPatch struct {
	FullName    *string               `json:"full_name,omitempty"`
	Reading     *string               `json:"reading,omitempty"`
	Email       *string               `json:"email,omitempty"`
	Custom      *[]string             `json:"custom,omitempty"`
	Role        *account.Role         `json:"role,omitempty"`
	Permissions *[]account.Permission `json:"permissions,omitempty"`
	Sites       *[]string             `json:"sites,omitempty"`
	Disabled    *bool                 `json:"disabled,omitempty"`
}

func (p *AccountPatch) apply(a *account.Account) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&a.FullName, p.FullName)
	set(&a.Reading, p.Reading)
	set(&a.Email, p.Email)
	if p.Custom != nil {
		a.Custom = *p.Custom
	}
	if p.Role != nil {
		a.Role = *p.Role
		if *p.Role != account.RoleSiteOperator && p.Permissions == nil {
			a.Permissions = nil
		}
		if (*p.Role == account.RoleSystemAdmin || *p.Role == account.RoleAdminNoOplog) && p.Sites == nil {
			a.Sites = nil
		}
	}
	if p.Permissions != nil {
		a.Permissions = *p.Permissions
	}
	if p.Sites != nil {
		a.Sites = *p.Sites
	}
	if p.Disabled != nil {
		a.Disabled = *p.Disabled
	}
}

// UpdateAccount applies patch to the named account.
func (n *Node) UpdateAccount(ctx context.Context, name string, patch AccountPatch) (account.Account, error) {
	cur, err := n.freshAccount(ctx, name)
	if err != nil {
		return account.Account{}, err
	}
	a := cur.Account
	patch.apply(&a)
	a.Normalize()
	if err := a.Validate(); err != nil {
		return account.Account{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: a, Prev: cur.Rev}}}); err != nil {
		return account.Account{}, err
	}
	s, err := n.freshAccount(ctx, name)
	if err != nil {
		return account.Account{}, err
	}
	return s.Account, nil
}

// DeleteAccount deletes an account and its tokens.
func (n *Node) DeleteAccount(ctx context.Context, name string) error {
	if !account.ValidName(name) {
		return fmt.Errorf("%s: %w", name, ErrNoAccount)
	}
	return n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "delete", Account: account.Account{Name: name}}}})
}

// SetPassword replaces an account's password.
func (n *Node) SetPassword(ctx context.Context, name, password string) error {
	cur, err := n.freshAccount(ctx, name)
	if err != nil {
		return err
	}
	h, err := n.hashPassword(ctx, password)
	if err != nil {
		return err
	}
	return n.proposeAccounts(ctx, accountsCommand{Ops: []accountOp{{Op: "update", Account: cur.Account, Hash: h, SetHash: true, Prev: cur.Rev}}})
}

// hashPassword applies the policy and hashes, at most hashSlots at a time
// (argon2id takes memory and CPU; the appliance has little of either).
func (n *Node) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := account.CheckPassword(pw); err != nil {
		return "", fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	release, err := n.auth.hashSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return account.HashPassword(pw)
}

// TokenRequest is the body of POST /api/v1/tokens.
type TokenRequest struct {
	Name    string        `json:"name"`
	Role    account.Role  `json:"role,omitempty"`  // narrower than the account's; empty: the account's
	Sites   []string      `json:"sites,omitempty"` // narrower than the account's
	Expires time.Duration `json:"expires,omitempty"`
	Account string        `json:"account,omitempty"` // another account's (manage-accounts only)
}

// TokenCreated is the answer to a token creation: the token, shown once.
type TokenCreated struct {
	Token
	Secret string `json:"token"`
}

// maxTokenLife bounds --expires.
const maxTokenLife = 5 * 365 * 24 * time.Hour

// CreateToken makes an API token for an account.
func (n *Node) CreateToken(ctx context.Context, owner string, req TokenRequest, session bool) (TokenCreated, error) {
	if !tokenNameOK(req.Name) {
		return TokenCreated{}, fmt.Errorf("%w: token name %q: want 1-64 of A-Z, a-z, 0-9, '_', '.', '-'", ErrBadRequest, req.Name)
	}
	if req.Expires < 0 || req.Expires > maxTokenLife {
		return TokenCreated{}, fmt.Errorf("%w: expires %s: want 0 (never) up to %s", ErrBadRequest, req.Expires, maxTokenLife)
	}
	cur, err := n.freshAccount(ctx, owner)
	if err != nil {
		return TokenCreated{}, err
	}
	acc := cur.Access()
	t := Token{Name: req.Name, Account: cur.Name, Role: cur.Role, Session: session, CreatedAt: time.Now().UTC()}
	if req.Role != "" {
		if !account.ValidRole(req.Role) {
			return TokenCreated{}, fmt.Errorf("%w: role %q: want one of %v", ErrBadRequest, req.Role, account.Roles)
		}
		if slices.Index(account.Roles, req.Role) < slices.Index(account.Roles, cur.Role) {
			return TokenCreated{}, fmt.Errorf("%w: role %s is broader than the account's (%s)", ErrBadRequest, req.Role, cur.Role)
		}
		t.Role = req.Role
	}
	for _, s := range req.Sites {
		if !account.ValidSite(s) || !acc.InScope(s) {
			return TokenCreated{}, fmt.Errorf("%w: site %q is not one of the account's", ErrBadRequest, s)
		}
	}
	t.Sites = slices.Compact(slices.Sorted(slices.Values(req.Sites)))
	if req.Expires > 0 {
		t.ExpiresAt = t.CreatedAt.Add(req.Expires)
	}
	secret, id := newSecret()
	t.ID = id
	st := storedToken{Token: t, Hash: httpx.HashToken(secret)}
	if err := n.proposeRefusable(ctx, encodeJSONCommand(cmdTokens, &tokenCommand{Op: "create", At: t.CreatedAt, Token: st})); err != nil {
		return TokenCreated{}, err
	}
	t.Access = tokenAccess(&cur.Account, &t)
	return TokenCreated{Token: t, Secret: secret}, nil
}

func tokenNameOK(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	return !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-')
	})
}

// newSecret returns a token (prefix "est_" and 32 random bytes in hex) and
// a short random ID to list and revoke it by.
func newSecret() (secret, id string) {
	b := make([]byte, 38)
	rand.Read(b)
	return "est_" + hex.EncodeToString(b[:32]), hex.EncodeToString(b[32:])
}

// tokenAccess is what a token may do: its role over its sites, within what
// its account may do now.
func tokenAccess(a *account.Account, t *Token) account.Access {
	own := a.Access()
	want := account.AccessOf(t.Role, a.Permissions, t.Sites)
	if t.Role == account.RoleSiteOperator && len(t.Sites) == 0 {
		want.Sites = own.Sites
	}
	if len(t.Sites) > 0 {
		want.Sites = t.Sites
	}
	return account.Narrow(own, want)
}

// Tokens lists tokens: one account's, or every account's when owner is "".
func (n *Node) Tokens(owner string) ([]Token, error) {
	out := []Token{}
	err := n.raft.View(func(txn *badger.Txn) error {
		return eachTokenTxn(txn, func(_ []byte, t *storedToken) error {
			if owner != "" && !strings.EqualFold(t.Account, owner) {
				return nil
			}
			if a, err := getAccount(txn, t.Account); err == nil {
				t.Access = tokenAccess(&a.Account, &t.Token)
			}
			out = append(out, t.Token)
			return nil
		})
	})
	slices.SortFunc(out, func(a, b Token) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, err
}

// RevokeToken deletes a token by ID: owner's only, or anyone's when owner
// is "".
func (n *Node) RevokeToken(ctx context.Context, owner, id string) error {
	return n.proposeRefusable(ctx, encodeJSONCommand(cmdTokens, &tokenCommand{Op: "revoke", At: time.Now().UTC(), ID: id, Owner: owner}))
}
