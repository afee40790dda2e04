package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/internal/pki"
)

func pkiCommand() *cli.Command {
	return &cli.Command{
		Name:  "pki",
		Usage: "create the CA and issue node certificates",
		Subcommands: []*cli.Command{
			{
				Name:      "init",
				Usage:     "create a CA (ca.crt, ca.key) in --dir",
				UsageText: "edgesync pki init --dir DIR",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Required: true, Usage: "PKI directory", EnvVars: []string{"EDGESYNC_PKI"}},
				},
				Action: func(c *cli.Context) error {
					if err := pki.Init(c.String("dir")); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "CA created in %s\n", c.String("dir"))
					return nil
				},
			},
			{
				Name:      "issue",
				Usage:     "issue a certificate and key for a central or relay node",
				UsageText: "edgesync pki issue --dir DIR --role central|relay --name NAME [--site SITE] [--hosts 127.0.0.1,localhost]",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "dir", Required: true, Usage: "PKI directory holding the CA", EnvVars: []string{"EDGESYNC_PKI"}},
					&cli.StringFlag{Name: "role", Required: true, Usage: "central or relay"},
					&cli.StringFlag{Name: "name", Required: true, Usage: "certificate name; use the node ID"},
					&cli.StringFlag{Name: "site", Usage: "site ID (relay certificates only)"},
					&cli.StringFlag{Name: "hosts", Value: "127.0.0.1,localhost", Usage: "IP addresses and DNS names the node serves on"},
				},
				Action: func(c *cli.Context) error {
					role := pki.Role(c.String("role"))
					if !role.Valid() {
						return usageError("--role %q: want central or relay", role)
					}
					crt, key, err := pki.Issue(c.String("dir"), pki.IssueRequest{
						Role: role, Name: c.String("name"), Site: c.String("site"), Hosts: splitList(c.String("hosts")),
					})
					if err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "certificate %s\nkey         %s\n", crt, key)
					return nil
				},
			},
		},
	}
}
