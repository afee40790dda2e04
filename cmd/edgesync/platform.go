package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

// applianceOnly makes a role that only runs on the Linux appliance (relay,
// central, the demo deployment) refuse to start on Windows with one line
// that says what to run there instead. --help still works.
func applianceOnly(cmd *cli.Command) *cli.Command {
	if runtime.GOOS != "windows" {
		return cmd
	}
	before := cmd.Before
	cmd.Before = func(c *cli.Context) error {
		if c.Args().First() == "help" || c.Bool("help") {
			return nil
		}
		if before != nil {
			if err := before(c); err != nil {
				return err
			}
		}
		return cli.Exit(fmt.Sprintf("%s runs on the Linux relay or central appliance, not on Windows; "+
			"on a Windows PC use `edgesync agent`, `edgesync offline collect` or the client commands", cmd.Name), 2)
	}
	return cmd
}
