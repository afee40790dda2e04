// Package relay is the branch-site node: a member of the site's Raft cluster
// that serves the agent API, commits agent reports into a replicated outbox
// (many reports per log entry), and, while it leads, drains the outbox to
// central over the QUIC uplink. See DESIGN.md in this directory for why it is
// built this way.
package relay
