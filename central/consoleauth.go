package central

import (
	"context"
	"errors"
	"strings"

	"github.com/edgesync/edgesync/central/console"
	"github.com/edgesync/edgesync/internal/account"
	"github.com/edgesync/edgesync/internal/httpx"
)

// Console sessions name their credential: "account:NAME" after a password
// sign-in, "token:SHA256" after a pasted token (the bootstrap admin token or
// an API token). Central resolves it on every request, so disabling an
// account or revoking a token ends the sessions made with it.
const (
	credAccount = "account:"
	credToken   = "token:"
)

func (s *consoleSource) TokenSignIn(ctx context.Context, tok, from string) (string, string, bool) {
	hash := httpx.HashToken(tok)
	p := (*Node)(s).principalByHash(hash)
	if p == nil {
		return "", "", false
	}
	if p.Account == "" {
		return "console", credToken + hash, true // the bootstrap token's console name, as before accounts
	}
	return p.Who, credToken + hash, true
}

func (s *consoleSource) SignIn(ctx context.Context, name, password, code, from string) (string, string, error) {
	a, err := (*Node)(s).SignIn(ctx, name, password, code, from)
	var locked *LockedOutError
	switch {
	case errors.Is(err, ErrCodeRequired):
		return "", "", console.ErrCodeRequired
	case errors.Is(err, ErrWrongCode):
		return "", "", errors.New("Wrong code.")
	case errors.As(err, &locked):
		return "", "", errors.New("Too many failed sign-ins: try again in " + locked.RetryAfter.Round(1e9).String() + ".")
	case err != nil:
		return "", "", errors.New("Wrong account or password.")
	}
	return a.Name, credAccount + a.Name, nil
}

func (s *consoleSource) Allowed(ctx context.Context, perm string) (bool, bool) {
	p := s.resolve(console.CredOf(ctx))
	if p == nil {
		return false, false
	}
	return p.Access.Has(account.Permission(perm)), true
}

// resolve is the caller of a console credential (nil: no longer valid).
func (s *consoleSource) resolve(cred string) *principal {
	n := (*Node)(s)
	switch {
	case strings.HasPrefix(cred, credAccount):
		return n.principalByAccount(strings.TrimPrefix(cred, credAccount))
	case strings.HasPrefix(cred, credToken):
		return n.principalByHash(strings.TrimPrefix(cred, credToken))
	}
	return nil
}

// principal is the caller of a console request; one that sees nothing
// when the credential is gone.
func (s *consoleSource) principal(ctx context.Context) *principal {
	if p := s.resolve(console.CredOf(ctx)); p != nil {
		return p
	}
	return principalFrom(context.Background())
}

// inScopeRows keeps the index rows of the sites in accepts (nil: all).
func inScopeRows(rows []indexRow, in func(string) bool) []indexRow {
	if in == nil {
		return rows
	}
	out := make([]indexRow, 0, len(rows)/4)
	for i := range rows {
		if in(rows[i].Site) {
			out = append(out, rows[i])
		}
	}
	return out
}

func (s *consoleSource) BeginTOTP(ctx context.Context) (console.TOTPEnrolment, error) {
	p := s.principal(ctx)
	if p.Account == "" {
		return console.TOTPEnrolment{}, errors.New("the admin token belongs to no account: sign in with an account")
	}
	e, err := (*Node)(s).BeginTOTP(ctx, p.Account)
	return console.TOTPEnrolment{Secret: e.Secret, QRPNG: e.QRPNG}, err
}

func (s *consoleSource) ConfirmTOTP(ctx context.Context, code string) ([]string, error) {
	p := s.principal(ctx)
	if p.Account == "" {
		return nil, errors.New("the admin token belongs to no account")
	}
	return (*Node)(s).ConfirmTOTP(ctx, p.Account, code)
}
