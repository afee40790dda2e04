package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/edgesync/edgesync/internal/pki"
	"github.com/edgesync/edgesync/internal/raftnode"
)

// rejoinResult is what `relay|central rejoin` did (--json).
type rejoinResult struct {
	NodeID     string   `json:"node_id"`
	Data       string   `json:"data"`
	Damage     string   `json:"damage,omitempty"` // what the integrity check found, "" = nothing
	RemovedVia string   `json:"removed_via"`      // the member that removed this node from the cluster
	MovedTo    string   `json:"moved_to,omitempty"`
	Moved      []string `json:"moved,omitempty"`
	Next       string   `json:"next"`
}

// rejoinCommand is the automated runbook for a node whose data cannot be
// trusted (docs/runbook.md): role is "relay" or "central".
func rejoinCommand(role string) *cli.Command {
	return &cli.Command{
		Name:  "rejoin",
		Usage: "rebuild a stopped " + role + " node's replicated data from its peers (after corruption)",
		UsageText: "edgesync " + role + " rejoin --data DIR --node-id ID --join URL --pki DIR [--cert-name NAME] [--json]\n\n" +
			"Run it on the node, with the node stopped, when it refuses to start with \"... is corrupt ...\"\n" +
			"(or whenever its data should be rebuilt). It:\n" +
			"  1. checks the data dir and reports any damage it finds (it goes on either way);\n" +
			"  2. asks the cluster, through the member at --join, to remove this node's ID, so the\n" +
			"     remaining members commit every entry without it (needs a quorum of them);\n" +
			"  3. moves the raft log, state DBs and snapshots into DIR/damaged-<time>/ (nothing is\n" +
			"     deleted: remove that directory yourself once the node is healthy) and marks the\n" +
			"     dir so that --bootstrap is refused.\n" +
			"Then start the node as usual but with --join URL: the leader adds it back and sends it a\n" +
			"snapshot and the log after it. Running rejoin again is safe. Exit status 0 done, 1 failed\n" +
			"(nothing moved if the removal failed), 2 usage.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Required: true, Usage: "the node's data directory"},
			&cli.StringFlag{Name: "node-id", Required: true, Usage: "the node's ID, as given to " + role + " run --node-id"},
			&cli.StringFlag{Name: "join", Required: true, Usage: "HTTPS URL of a healthy member of the cluster (any member; a follower forwards)"},
			&cli.StringFlag{Name: "pki", Required: true, Usage: "PKI directory with ca.crt and this node's certificate", EnvVars: []string{"EDGESYNC_PKI"}},
			&cli.StringFlag{Name: "cert-name", Usage: "certificate name in --pki (default: the node ID)"},
			&cli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long to wait for the cluster to remove the node"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usageError("unexpected arguments: %v", c.Args().Slice())
			}
			return runRejoin(c, role)
		},
	}
}

func runRejoin(c *cli.Context, role string) error {
	res := rejoinResult{NodeID: c.String("node-id"), Data: c.String("data"), RemovedVia: c.String("join")}
	if fi, err := os.Stat(res.Data); err != nil || !fi.IsDir() {
		return usageError("--data %s: not a directory", res.Data)
	}
	name := c.String("cert-name")
	if name == "" {
		name = res.NodeID
	}
	bundle, err := pki.Load(c.String("pki"), name)
	if err != nil {
		return fmt.Errorf("load certificate %q: %w", name, err)
	}
	if err := raftnode.CheckStopped(res.Data); err != nil {
		return err
	}
	if err := raftnode.CheckDir(res.Data); err != nil {
		if !errors.Is(err, raftnode.ErrCorrupt) {
			return fmt.Errorf("check %s: %w", res.Data, err)
		}
		var ce *raftnode.CorruptError
		if errors.As(err, &ce) {
			res.Damage = fmt.Sprintf("%s: %v", ce.Path, ce.Err)
		}
	}
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	if err := raftnode.RemoveMember(ctx, res.RemovedVia, res.NodeID, bundle.ClientTLS()); err != nil {
		return fmt.Errorf("remove %s from the cluster via %s (nothing was moved): %w", res.NodeID, res.RemovedVia, err)
	}
	w, err := raftnode.Wipe(res.Data, time.Now())
	if err != nil {
		return fmt.Errorf("%s was removed from the cluster, but: %w (fix it and run rejoin again)", res.NodeID, err)
	}
	res.MovedTo, res.Moved = w.MovedTo, w.Moved
	res.Next = fmt.Sprintf("start the node with `edgesync %s run` and its usual flags, but --join %s instead of --bootstrap", role, res.RemovedVia)
	if c.Bool("json") {
		return printJSON(c.App.Writer, res)
	}
	out := c.App.Writer
	if res.Damage != "" {
		fmt.Fprintf(out, "damage found: %s\n", res.Damage)
	} else {
		fmt.Fprintln(out, "no damage found by the integrity check (rebuilding anyway)")
	}
	fmt.Fprintf(out, "removed %s from the cluster via %s\n", res.NodeID, res.RemovedVia)
	if res.MovedTo != "" {
		fmt.Fprintf(out, "moved %v aside to %s (delete it once the node is healthy)\n", res.Moved, res.MovedTo)
	}
	fmt.Fprintf(out, "next: %s\n", res.Next)
	return nil
}
