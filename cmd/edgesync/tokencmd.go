package main

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/central"
	"github.com/edgesync/edgesync/internal/account"
)

// parseExpires reads --expires: a Go duration or N followed by d (days).
func parseExpires(s string) (time.Duration, error) {
	if s == "" || s == "never" {
		return 0, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n <= 0 {
			return 0, usageError("--expires %q: want N days (30d) or a duration (12h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	dur, err := time.ParseDuration(s)
	if err != nil || dur <= 0 {
		return 0, usageError("--expires %q: want N days (30d) or a duration (12h)", s)
	}
	return dur, nil
}

func tokenCommand() *cli.Command {
	return &cli.Command{
		Name:  "token",
		Usage: "API tokens of accounts, for scripts (against central)",
		Subcommands: []*cli.Command{
			apiCommand[central.TokenCreated]{
				Name: "create", Usage: "create an API token and print it once (central keeps only its hash)",
				UsageText: "edgesync token create --name NAME [--expires 30d] [--role ROLE] [--sites S,S] [--account NAME] [--json]",
				Description: "The token acts as your account, or narrower: --role and --sites may only reduce what it\n" +
					"may do. Changing the account later narrows its tokens too. Use it as --token or EDGESYNC_TOKEN.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "name", Usage: "what the token is for (ci, backup)"},
					&cli.StringFlag{Name: "expires", Usage: "lifetime: 30d, 12h, or never", Value: "90d"},
					&cli.StringFlag{Name: "role", Usage: "a role no broader than the account's"},
					&cli.StringFlag{Name: "sites", Usage: "comma-separated sites, among the account's"},
					&cli.StringFlag{Name: "account", Usage: "another account's token (manage-accounts; required with the bootstrap admin token)"},
				},
				Request: func(c *cli.Context, _ []string) (apiRequest, error) {
					exp, err := parseExpires(c.String("expires"))
					if err != nil {
						return apiRequest{}, err
					}
					if c.String("name") == "" {
						return apiRequest{}, usageError("--name is required\nusage: %s", c.Command.UsageText)
					}
					return postRequest("/api/v1/tokens", central.TokenRequest{Name: c.String("name"), Expires: exp, Role: account.Role(c.String("role")),
						Sites: splitList(c.String("sites")), Account: c.String("account")}), nil
				},
				Print: func(c *cli.Context, t central.TokenCreated) error {
					fmt.Fprintf(c.App.ErrWriter, "token %s (%s) for %s, role %s, expires %s; it is shown only now:\n", t.ID, t.Name, t.Account, t.Role, expiry(t.ExpiresAt))
					_, err := fmt.Fprintln(c.App.Writer, t.Secret)
					return err
				},
			}.command(),
			apiCommand[[]central.Token]{
				Name: "list", Usage: "list your tokens (--all: every account's, with manage-accounts)", UsageText: "edgesync token list [--all] [--json]",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "all", Usage: "every account's tokens"}},
				Request: func(c *cli.Context, _ []string) (apiRequest, error) {
					q := url.Values{}
					if c.Bool("all") {
						q.Set("all", "1")
					}
					return getRequest("/api/v1/tokens?" + q.Encode()), nil
				},
				Print: func(c *cli.Context, ts []central.Token) error {
					tw := newTable(c)
					fmt.Fprintln(tw, "ID\tNAME\tACCOUNT\tROLE\tSITES\tCREATED\tEXPIRES")
					for _, t := range ts {
						fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.Account, t.Access.Role, strings.Join(t.Access.Sites, ","), localTime(t.CreatedAt), expiry(t.ExpiresAt))
					}
					return tw.Flush()
				},
			}.command(),
			apiCommand[map[string]any]{
				Name: "revoke", Usage: "revoke a token by ID (yours, or any with manage-accounts)", UsageText: "edgesync token revoke ID", Args: 1,
				Request: func(_ *cli.Context, args []string) (apiRequest, error) {
					return deleteRequest("/api/v1/tokens/" + url.PathEscape(args[0])), nil
				},
				Print: func(c *cli.Context, _ map[string]any) error {
					_, err := fmt.Fprintf(c.App.Writer, "token %s revoked\n", c.Args().First())
					return err
				},
			}.command(),
		},
	}
}

func expiry(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return localTime(t)
}
