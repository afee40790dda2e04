package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/account"
)

// The account commands: administrators as people (central only).

var passwordFlags = []cli.Flag{
	&cli.StringFlag{Name: "password-file", Usage: "read the password from the first line of this file"},
	&cli.BoolFlag{Name: "password-stdin", Usage: "read the password from the first line of standard input"},
}

// readPassword reads --password-file, --password-stdin, or asks on the
// terminal (twice when confirm); "" when optional and none was given.
func readPassword(c *cli.Context, prompt string, confirm, optional bool) (string, error) {
	line := func(r io.Reader) (string, error) {
		s, err := bufio.NewReader(r).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		return strings.TrimRight(s, "\r\n"), nil
	}
	switch {
	case c.String("password-file") != "":
		f, err := os.Open(c.String("password-file"))
		if err != nil {
			return "", usageError("--password-file: %v", err)
		}
		defer f.Close()
		return line(f)
	case c.Bool("password-stdin"):
		return line(c.App.Reader)
	case optional:
		return "", nil
	case !term.IsTerminal(int(os.Stdin.Fd())):
		return "", usageError("no terminal to ask for the password: give --password-file or --password-stdin")
	}
	ask := func(p string) (string, error) {
		fmt.Fprint(c.App.ErrWriter, p)
		b, err := term.ReadPassword(int(os.Stdin.Fd()))
		fmt.Fprintln(c.App.ErrWriter)
		return string(b), err
	}
	pw, err := ask(prompt)
	if err != nil || !confirm {
		return pw, err
	}
	again, err := ask("Again: ")
	if err == nil && again != pw {
		return "", usageError("the passwords differ")
	}
	return pw, err
}

var accountFlags = []cli.Flag{
	&cli.StringFlag{Name: "role", Usage: "system-admin, admin-no-oplog, site-operator or viewer"},
	&cli.StringFlag{Name: "sites", Usage: "comma-separated sites (site-operator: required; viewer: optional)"},
	&cli.StringFlag{Name: "permissions", Usage: "site-operator permissions, comma-separated: " + joinPerms(account.OperatorPermissions)},
	&cli.StringFlag{Name: "full-name", Usage: "the person's name"},
	&cli.StringFlag{Name: "email", Usage: "e-mail address"},
}

func joinPerms(ps []account.Permission) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

func perms(s string) []account.Permission {
	var out []account.Permission
	for _, p := range splitList(s) {
		out = append(out, account.Permission(p))
	}
	return out
}

func printAccount(c *cli.Context, a account.Account) error {
	tw := newTable(c)
	fmt.Fprintf(tw, "name\t%s\nrole\t%s\n", a.Name, a.Role)
	if len(a.Permissions) > 0 {
		fmt.Fprintf(tw, "permissions\t%s\n", joinPerms(a.Permissions))
	}
	sites := strings.Join(a.Sites, ",")
	if sites == "" {
		sites = "(all)"
	}
	fmt.Fprintf(tw, "sites\t%s\nfull name\t%s\ne-mail\t%s\ndisabled\t%v\npassword set\t%v\ncreated\t%s\nupdated\t%s\n",
		sites, a.FullName, a.Email, a.Disabled, a.HasPassword, localTime(a.CreatedAt), localTime(a.UpdatedAt))
	return tw.Flush()
}

func accountCommand() *cli.Command {
	name := func(args []string) string { return url.PathEscape(args[0]) }
	return &cli.Command{
		Name:  "account",
		Usage: "administrator accounts: roles, sites, passwords, ISM CSV import and export (against central)",
		Subcommands: []*cli.Command{
			apiCommand[account.Account]{
				Name: "add", Usage: "add an account", Args: 1,
				UsageText: "edgesync account add NAME --role ROLE [--sites S,S] [--permissions P,P] [--full-name N] [--email E] [--password-file F | --password-stdin | --no-password] [--json]",
				Description: fmt.Sprintf("Without --password-file or --password-stdin the password is asked on the terminal.\n"+
					"Passwords are %d to %d characters; central stores them as argon2id hashes.", account.MinPasswordLength, account.MaxPasswordLength),
				Flags: append(append([]cli.Flag{&cli.BoolFlag{Name: "no-password", Usage: "no password: sign-in refused until `account passwd`"}}, accountFlags...), passwordFlags...),
				Request: func(c *cli.Context, args []string) (apiRequest, error) {
					req := central.AccountRequest{Account: account.Account{Name: args[0], Role: account.Role(c.String("role")), Sites: splitList(c.String("sites")),
						Permissions: perms(c.String("permissions")), FullName: c.String("full-name"), Email: c.String("email")}}
					if req.Role == "" {
						return apiRequest{}, usageError("--role is required\nusage: %s", c.Command.UsageText)
					}
					if !c.Bool("no-password") {
						pw, err := readPassword(c, "Password for "+args[0]+": ", true, false)
						if err != nil {
							return apiRequest{}, err
						}
						req.Password = pw
					}
					return postRequest("/api/v1/accounts", req), nil
				},
				Print: printAccount,
			}.command(),
			apiCommand[[]account.Account]{
				Name: "list", Usage: "list the accounts", UsageText: "edgesync account list [--json]",
				Request: func(*cli.Context, []string) (apiRequest, error) { return getRequest("/api/v1/accounts"), nil },
				Print: func(c *cli.Context, as []account.Account) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "NAME\tROLE\tSITES\tPERMISSIONS\tSTATE\tFULL NAME")
					for _, a := range as {
						state := "enabled"
						if a.Disabled {
							state = "disabled"
						} else if !a.HasPassword {
							state = "no password"
						}
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.Name, a.Role, strings.Join(a.Sites, ","), joinPerms(a.Permissions), state, a.FullName)
					}
					return tw.Flush()
				},
			}.command(),
			apiCommand[account.Account]{
				Name: "show", Usage: "show one account", UsageText: "edgesync account show NAME [--json]", Args: 1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return getRequest("/api/v1/accounts/" + name(args)), nil
				},
				Print: printAccount,
			}.command(),
			apiCommand[account.Account]{
				Name: "set", Usage: "change an account's role, sites, permissions or details", Args: 1,
				UsageText: "edgesync account set NAME [--role R] [--sites S,S] [--permissions P,P] [--full-name N] [--email E] [--json]",
				Flags:     accountFlags,
				Request: func(c *cli.Context, args []string) (apiRequest, error) {
					var p central.AccountPatch
					str := func(flag string) *string {
						if !c.IsSet(flag) {
							return nil
						}
						v := c.String(flag)
						return &v
					}
					p.FullName, p.Email = str("full-name"), str("email")
					if v := str("role"); v != nil {
						r := account.Role(*v)
						p.Role = &r
					}
					if c.IsSet("sites") {
						s := splitList(c.String("sites"))
						p.Sites = &s
					}
					if c.IsSet("permissions") {
						ps := perms(c.String("permissions"))
						p.Permissions = &ps
					}
					return apiRequest{Method: http.MethodPatch, Path: "/api/v1/accounts/" + name(args), Body: p}, nil
				},
				Print: printAccount,
			}.command(),
			enableCommand("disable", true),
			enableCommand("enable", false),
			apiCommand[map[string]any]{
				Name: "delete", Usage: "delete an account and its tokens", UsageText: "edgesync account delete NAME", Args: 1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return deleteRequest("/api/v1/accounts/" + name(args)), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "account %s deleted\n", c.Args().First())
					return err
				},
			}.command(),
			apiCommand[map[string]any]{
				Name: "passwd", Usage: "set an account's password (manage-accounts)", Args: 1,
				UsageText: "edgesync account passwd NAME [--password-file F | --password-stdin]",
				Flags:     passwordFlags,
				Request: func(c *cli.Context, args []string) (apiRequest, error) {
					pw, err := readPassword(c, "New password for "+args[0]+": ", true, false)
					if err != nil {
						return apiRequest{}, err
					}
					return apiRequest{Method: http.MethodPut, Path: "/api/v1/accounts/" + name(args) + "/password", Body: central.PasswordRequest{Password: pw}}, nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "password of %s changed\n", c.Args().First())
					return err
				},
			}.command(),
			signinCommand(),
			totpCommand(),
			importCommand(),
			exportCommand(),
		},
	}
}

func enableCommand(verb string, disabled bool) *cli.Command {
	return apiCommand[account.Account]{
		Name: verb, Usage: verb + " an account (a disabled account cannot sign in; its tokens and sessions stop working)",
		UsageText: "edgesync account " + verb + " NAME [--json]", Args: 1,
		Request: func(_ *cli.Context, args []string) (apiRequest, error) {
			return apiRequest{Method: http.MethodPatch, Path: "/api/v1/accounts/" + url.PathEscape(args[0]), Body: central.AccountPatch{Disabled: &disabled}}, nil
		},
		Print: func(c *cli.Context, a account.Account) error {
			_, err := fmt.Fprintf(c.App.Writer, "account %s %sd\n", a.Name, verb)
			return err
		},
	}.command()
}

func signinCommand() *cli.Command {
	const usage = "edgesync account signin NAME [--password-file F | --password-stdin] [--code CODE] [--json]"
	return &cli.Command{
		Name: "signin", Usage: "sign in with a password and print a token for EDGESYNC_TOKEN (valid 8 hours)", UsageText: usage,
		Flags: append(append([]cli.Flag{&cli.StringFlag{Name: "code", Usage: "two-step sign-in: the authenticator's code or a recovery code"}}, passwordFlags...), clientFlags...),
		Action: func(c *cli.Context) error {
			args, err := interspersed(c, 1, 1, usage)
			if err != nil {
				return err
			}
			pw, err := readPassword(c, "Password for "+args[0]+": ", false, false)
			if err != nil {
				return err
			}
			a, err := newClient(c, false)
			if err != nil {
				return err
			}
			var res central.SignInResult
			if err := a.call(c.Context, http.MethodPost, "/api/v1/signin", central.SignInRequest{Account: args[0], Password: pw, Code: c.String("code")}, &res); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, res)
			}
			_, err = fmt.Fprintln(c.App.Writer, res.Token)
			return err
		},
	}
}

func importCommand() *cli.Command {
	const usage = "edgesync account import FILE [--json]"
	return &cli.Command{
		Name: "import", Usage: "add, update and delete accounts from an ISM account CSV (UTF-16LE, tab, quoted): all rows or none",
		UsageText: usage, Flags: clientFlags,
		Description: "Columns: 種別 (Add/Upd/Del), 管理者アカウント, パスワード, 氏名, 氏名(よみがな), 任意項目1-5, 管理権限\n" +
			"(SYS_ALL, SYS_LOG_EXCL, GRP), 管理権限詳細, メールアドレス, 管理グループ (sites), 二段階認証,\n" +
			"and optionally edgesync権限 (ROLE[:PERMISSION,...]). Line 1 is the header.",
		Action: func(c *cli.Context) error {
			args, err := interspersed(c, 1, 1, usage)
			if err != nil {
				return err
			}
			b, err := os.ReadFile(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, callTimeout)
			defer cancel()
			resp, err := a.open(ctx, http.MethodPost, "/api/v1/accounts/import", "text/csv", bytes.NewReader(b), int64(len(b)))
			if err != nil {
				return err
			}
			var res central.ImportResult
			if err := decode(resp, &res); err != nil {
				return err
			}
			if c.Bool("json") {
				return printJSON(c.App.Writer, res)
			}
			_, err = fmt.Fprintf(c.App.Writer, "%d added, %d updated, %d deleted\n", res.Added, res.Updated, res.Deleted)
			return err
		},
	}
}

func exportCommand() *cli.Command {
	const usage = "edgesync account export [--out FILE] [--encoding utf-16le|utf-8]"
	return &cli.Command{
		Name: "export", Usage: "write the accounts as an ISM account CSV (no passwords)", UsageText: usage,
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "file to write (default: standard output)"},
			&cli.StringFlag{Name: "encoding", Value: "utf-16le", Usage: "utf-16le (the ISM dialect) or utf-8"},
		}, clientFlags...),
		Action: func(c *cli.Context) error {
			if _, err := interspersed(c, 0, 0, usage); err != nil {
				return err
			}
			a, err := newAdminClient(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, callTimeout)
			defer cancel()
			resp, err := a.open(ctx, http.MethodGet, "/api/v1/accounts/export?encoding="+url.QueryEscape(c.String("encoding")), "", nil, 0)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			w := c.App.Writer
			if p := c.String("out"); p != "" {
				f, err := os.Create(p)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			_, err = io.Copy(w, io.LimitReader(resp.Body, maxAnswer))
			return err
		},
	}
}

func totpCommand() *cli.Command {
	return &cli.Command{
		Name:  "totp",
		Usage: "two-step sign-in (TOTP, RFC 6238) of your account; the console shows the QR code",
		Subcommands: []*cli.Command{
			apiCommand[central.TOTPEnrolment]{
				Name: "enrol", Usage: "start enrolment: print the otpauth URL and key for an authenticator app", UsageText: "edgesync account totp enrol [--json]",
				Request: func(*cli.Context, []string) (apiRequest, error) { return postRequest("/api/v1/account/totp", nil), nil },
				Print: func(c *cli.Context, e central.TOTPEnrolment) error {
					_, err := fmt.Fprintf(c.App.Writer, "key\t%s\nurl\t%s\nthen: edgesync account totp confirm CODE\n", e.Secret, e.URL)
					return err
				},
			}.command(),
			apiCommand[struct {
				Recovery []string `json:"recovery_codes"`
			}]{
				Name: "confirm", Usage: "turn two-step sign-in on with a first code; prints the recovery codes once", UsageText: "edgesync account totp confirm CODE [--json]", Args: 1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return postRequest("/api/v1/account/totp/confirm", central.CodeRequest{Code: args[0]}), nil
				},
				Print: func(c *cli.Context, v struct {
					Recovery []string `json:"recovery_codes"`
				}) error {
					_, err := fmt.Fprintf(c.App.Writer, "two-step sign-in is on; recovery codes (each works once):\n%s\n", strings.Join(v.Recovery, "\n"))
					return err
				},
			}.command(),
			apiCommand[map[string]any]{
				Name: "reset", Usage: "turn another account's two-step sign-in off (manage-accounts)", UsageText: "edgesync account totp reset NAME", Args: 1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return deleteRequest("/api/v1/accounts/" + url.PathEscape(args[0]) + "/totp"), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "two-step sign-in of %s is off\n", c.Args().First())
					return err
				},
			}.command(),
		},
	}
}
