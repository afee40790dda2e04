//go:build !windows

package agent

// DefaultStateDir is where the agent keeps its device ID, token and spool.
const DefaultStateDir = "/var/lib/edgesync-agent"

// DefaultOfflineStateDir is where the offline collector keeps its device
// key on a PC without the agent.
const DefaultOfflineStateDir = "/var/lib/edgesync-offline"
