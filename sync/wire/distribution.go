package wire

import (
	"fmt"
	"time"
)

// Frame types of the distribution streams (DESIGN.md §7: a catalog stream and blob streams).
// Each request opens its own stream (QUIC) or connection (TCP) and the stream ends with the answer.
const (
	TypeCatalogRequest Type = 20 // relay → central: changes since a catalog version
	TypeCatalog        Type = 21 // central → relay: the changes
	TypeBlobRequest    Type = 22 // relay → central: SHA-256 + offset
	TypeBlobInfo       Type = 23 // central → relay: size, then Size-Offset raw bytes, then end of stream
)

// CatalogRequest asks for the catalog changes after version Since (0 = everything).
type CatalogRequest struct {
	Since uint64 `json:"since"`
}

// CatalogPackage is one package as relays mirror it.
type CatalogPackage struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Version     string    `json:"version"`
	Type        string    `json:"type"`
	Command     string    `json:"command,omitempty"`
	Dest        string    `json:"dest,omitempty"`
	Mode        string    `json:"mode,omitempty"` // octal permission bits of a placed file; empty = 0644
	Description string    `json:"description,omitempty"`
	FileName    string    `json:"fileName"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	CreatedAt   time.Time `json:"createdAt"`
	Rev         uint64    `json:"rev"` // catalog version of its last change
}

// CatalogTask is one distribution task as relays mirror it. Devices is the resolved target list.
type CatalogTask struct {
	ID        string         `json:"id"`
	Package   string         `json:"package"`
	Devices   []string       `json:"devices"`
	At        time.Time      `json:"at,omitzero"`
	Stopped   bool           `json:"stopped,omitempty"`
	Cancelled []string       `json:"cancelled,omitempty"`
	Attempts  map[string]int `json:"attempts,omitempty"` // devices retried, with their attempt number
	CreatedAt time.Time      `json:"createdAt"`
	Rev       uint64         `json:"rev"`
}

// Catalog answers CatalogRequest: the packages and tasks changed after Since, and the IDs of every
// package and task that still exists (so the relay can drop removed ones).
type Catalog struct {
	Version  uint64           `json:"version"`
	Packages []CatalogPackage `json:"packages,omitempty"`
	Tasks    []CatalogTask    `json:"tasks,omitempty"`
	LivePkgs []string         `json:"livePackages"`
	LiveTask []string         `json:"liveTasks"`
}

// BlobRequest asks for the bytes of a blob from Offset on.
type BlobRequest struct {
	SHA256 string `json:"sha256"`
	Offset int64  `json:"offset"`
}

// BlobInfo answers BlobRequest; Size-Offset raw bytes follow on the stream.
type BlobInfo struct {
	Size   int64 `json:"size"`
	Offset int64 `json:"offset"`
}

func (CatalogRequest) Type() Type { return TypeCatalogRequest }
func (Catalog) Type() Type        { return TypeCatalog }
func (BlobRequest) Type() Type    { return TypeBlobRequest }
func (BlobInfo) Type() Type       { return TypeBlobInfo }

// decodeDistribution decodes the distribution frame types; ok is false for other types.
func decodeDistribution(f Frame) (m Message, ok bool, err error) {
	switch f.Type {
	case TypeCatalogRequest:
		m, err = decodeJSON[CatalogRequest](f.Payload)
	case TypeCatalog:
		m, err = decodeJSON[Catalog](f.Payload)
	case TypeBlobRequest:
		m, err = decodeJSON[BlobRequest](f.Payload)
	case TypeBlobInfo:
		m, err = decodeJSON[BlobInfo](f.Payload)
	default:
		return nil, false, nil
	}
	if err != nil {
		return nil, true, fmt.Errorf("decode %s: %w: %w", f.Type, ErrMalformed, err)
	}
	return m, true, nil
}
