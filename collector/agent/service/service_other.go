//go:build !windows

package service

import (
	"context"
	"log/slog"
)

// Install is Windows-only.
func Install(exe, stateDir string, c Config) error { return ErrUnsupported }

// Uninstall is Windows-only.
func Uninstall() error { return ErrUnsupported }

// Start is Windows-only.
func Start() error { return ErrUnsupported }

// Stop is Windows-only.
func Stop() error { return ErrUnsupported }

// Status is Windows-only.
func Status() (State, error) { return State{}, ErrUnsupported }

// IsService is false off Windows.
func IsService() bool { return false }

// RunService is Windows-only.
func RunService(func(ctx context.Context, log *slog.Logger) error) error { return ErrUnsupported }
