package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/edgesync/edgesync/collector/record"
)

// State file names.
const (
	fileDeviceID = "device_id"
	fileIdentity = "identity.json"
	fileCA       = "ca.pem"
	fileNextSeq  = "next_seq"
	dirSpool     = "spool"
)

// identity is what enrollment gives the agent.
type identity struct {
	DeviceID    string `json:"device_id"`
	DeviceToken string `json:"device_token"`
	SiteID      string `json:"site_id"`
}

// loadDeviceID returns the device ID in dir, creating one on first run.
func loadDeviceID(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileDeviceID))
	if errors.Is(err, fs.ErrNotExist) {
		id := record.NewDeviceID()
		if err := writeFileAtomic(filepath.Join(dir, fileDeviceID), []byte(id+"\n"), 0o644); err != nil {
			return "", err
		}
		return id, nil
	}
	if err != nil {
		return "", fmt.Errorf("read device id: %w", err)
	}
	id := strings.TrimSpace(string(b))
	if !record.ValidDeviceID(id) {
		return "", fmt.Errorf("agent: %s holds %q, not a device ID (run reset-id)", fileDeviceID, id)
	}
	return id, nil
}

// ResetID gives the agent in stateDir a new device ID, for a cloned disk
// image: the old identity, sequence and spool (which belong to the machine
// the image was taken from) are removed; the pinned CA is kept. It returns
// the new ID.
func ResetID(stateDir string) (string, error) {
	for _, name := range []string{fileIdentity, fileNextSeq} {
		if err := os.Remove(filepath.Join(stateDir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("reset id: %w", err)
		}
	}
	if err := os.RemoveAll(filepath.Join(stateDir, dirSpool)); err != nil {
		return "", fmt.Errorf("reset id: remove spool: %w", err)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("reset id: %w", err)
	}
	id := record.NewDeviceID()
	if err := writeFileAtomic(filepath.Join(stateDir, fileDeviceID), []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("reset id: %w", err)
	}
	return id, nil
}

func loadIdentity(dir string) (identity, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileIdentity))
	if errors.Is(err, fs.ErrNotExist) {
		return identity{}, false, nil
	}
	if err != nil {
		return identity{}, false, fmt.Errorf("read identity: %w", err)
	}
	var id identity
	if err := json.Unmarshal(b, &id); err != nil {
		return identity{}, false, fmt.Errorf("parse identity: %w", err)
	}
	return id, id.DeviceToken != "", nil
}

func saveIdentity(dir string, id identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("encode identity: %w", err)
	}
	return writeFileAtomic(filepath.Join(dir, fileIdentity), b, 0o600)
}

func loadNextSeq(dir string) (uint64, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileNextSeq))
	if errors.Is(err, fs.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read next seq: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n == 0 {
		return 0, fmt.Errorf("agent: %s holds %q, not a sequence number", fileNextSeq, b)
	}
	return n, nil
}

func saveNextSeq(dir string, n uint64) error {
	return writeFileAtomic(filepath.Join(dir, fileNextSeq), []byte(strconv.FormatUint(n, 10)+"\n"), 0o644)
}
