package node

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/edgesync/edgesync/internal/hostfs"
	"github.com/edgesync/edgesync/internal/secret"
)

// IdentityFile, in the data dir, records what the data dir belongs to.
const IdentityFile = "cluster.json"

// How a data dir came to belong to its cluster (Identity.Created).
const (
	CreatedBootstrap = "bootstrap"
	CreatedJoin      = "join"
)

// Identity is the content of IdentityFile. It is written when a node
// bootstraps (before raft is), when its join succeeds, and on the first
// start of a data dir from a release without it.
type Identity struct {
	Version int `json:"version"`
	// ClusterID is generated at bootstrap; a joiner learns it from the
	// member it joined through. "" means unknown: a data dir from an older
	// release, or a join answered by an older peer.
	ClusterID string `json:"cluster_id"`
	NodeID    string `json:"node_id"`
	Role      string `json:"role"`
	Site      string `json:"site,omitempty"`
	// Created is CreatedBootstrap or CreatedJoin; "" when unknown (an older
	// data dir first started without flags).
	Created   string    `json:"created,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

const identityVersion = 1

// String says what the data dir belongs to, for error messages.
func (id Identity) String() string {
	cluster := id.ClusterID
	if cluster == "" {
		cluster = "(unknown)"
	}
	s := fmt.Sprintf("cluster %s, node %s, role %s", cluster, id.NodeID, id.Role)
	if id.Site != "" {
		s += ", site " + id.Site
	}
	switch id.Created {
	case CreatedBootstrap:
		s += ", which it bootstrapped"
	case CreatedJoin:
		s += ", which it joined"
	}
	return s
}

// ReadIdentity reads dir's IdentityFile; ok is false when there is none.
func ReadIdentity(dir string) (id Identity, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, IdentityFile))
	if errors.Is(err, os.ErrNotExist) {
		return Identity{}, false, nil
	}
	if err != nil {
		return Identity{}, false, fmt.Errorf("read %s: %w", IdentityFile, err)
	}
	if err := json.Unmarshal(b, &id); err != nil {
		return Identity{}, false, fmt.Errorf("parse %s: %w", filepath.Join(dir, IdentityFile), err)
	}
	if id.Version != identityVersion {
		return Identity{}, false, fmt.Errorf("%s: version %d, want %d", filepath.Join(dir, IdentityFile), id.Version, identityVersion)
	}
	return id, true, nil
}

// writeIdentity replaces dir's IdentityFile atomically (temp file, fsync,
// rename, fsync of the directory).
func writeIdentity(dir string, id Identity) error {
	id.Version = identityVersion
	b, err := json.MarshalIndent(id, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", IdentityFile, err)
	}
	if err := secret.WriteFile(filepath.Join(dir, IdentityFile), append(b, '\n')); err != nil {
		return err
	}
	return hostfs.SyncDir(dir)
}

// newClusterID returns 16 random bytes in hex.
func newClusterID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
