//go:build windows

package agent

import (
	"os"
	"path/filepath"
)

// programData is %ProgramData% (C:\ProgramData on every Windows since
// Vista), where machine-wide service state belongs.
func programData() string {
	if p := os.Getenv("ProgramData"); p != "" {
		return p
	}
	return `C:\ProgramData`
}

// DefaultStateDir is where the agent keeps its device ID, token and spool.
var DefaultStateDir = filepath.Join(programData(), "edgesync", "agent")

// DefaultOfflineStateDir is where the offline collector keeps its device
// key on a PC without the agent.
var DefaultOfflineStateDir = filepath.Join(programData(), "edgesync", "offline")
