package service

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// Name is the service name, DisplayName what services.msc shows.
const (
	Name        = "edgesync-agent"
	DisplayName = "edgesync agent"
	Description = "Reports this PC's inventory to the site's edgesync relays and installs the packages they distribute."
)

// ErrUnsupported is returned off Windows.
var ErrUnsupported = errors.New("the agent service commands are for Windows; on Linux run `edgesync agent run` under systemd")

// ConfigFile is the name of the service configuration in the state dir.
const ConfigFile = "service.json"

// Config is what the service runs with.
type Config struct {
	Relays      []string      `json:"relays"`
	JoinToken   string        `json:"join_token"`
	TaskTimeout time.Duration `json:"task_timeout,omitempty"`
}

// maxConfigBytes bounds service.json; a real one is a few hundred bytes.
const maxConfigBytes = 64 << 10

// Validate checks what Install writes and Run reads.
func (c Config) Validate() error {
	if len(c.Relays) == 0 {
		return errors.New("service config: no relays")
	}
	if c.JoinToken == "" {
		return errors.New("service config: no join token")
	}
	if c.TaskTimeout < 0 {
		return errors.New("service config: negative task timeout")
	}
	return nil
}

// SaveConfig writes stateDir\service.json, readable by its owner only
// (on Windows the ProgramData ACL already keeps it from users).
func SaveConfig(stateDir string, c Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("service config: %w", err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(stateDir, ConfigFile)
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("service config: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("service config: %w", err)
	}
	return nil
}

// LoadConfig reads and validates stateDir\service.json.
func LoadConfig(stateDir string) (Config, error) {
	var c Config
	p := filepath.Join(stateDir, ConfigFile)
	f, err := os.Open(p)
	if err != nil {
		return c, fmt.Errorf("service config: %w", err)
	}
	defer f.Close()
	dec := json.NewDecoder(io.LimitReader(f, maxConfigBytes+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("service config %s: %w", p, err)
	}
	return c, c.Validate()
}

// ErrNotService is RunService's answer when no service manager started this
// process: the caller runs in the foreground instead.
var ErrNotService = errors.New("service: not started by the service manager")

// State is what Status reports.
type State struct {
	Installed bool   `json:"installed"`
	State     string `json:"state,omitempty"` // "running", "stopped", ...
	PID       uint32 `json:"pid,omitempty"`
	Command   string `json:"command,omitempty"`
	StartType string `json:"start_type,omitempty"`
}
