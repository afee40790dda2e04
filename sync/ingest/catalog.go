package ingest

import (
	"context"
	"fmt"

	"github.com/edgesync/edgesync/sync/wire"
)

// Catalog is central's package and task catalog as a site sees it. Central implements it.
type Catalog interface {
	// CatalogSince returns what changed for site after version since, and the IDs still alive.
	CatalogSince(ctx context.Context, site string, since uint64) (wire.Catalog, error)
}

// catalog answers one CatalogRequest on its own stream. It needs no hello: the site comes from
// the certificate, and any relay node of the site (not only the uplink leader) may ask.
func (ss *session) catalog(wc *wire.Conn, req wire.CatalogRequest) error {
	if ss.s.cfg.Catalog == nil {
		return fmt.Errorf("no catalog on this server: %w", wire.ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ss.ctx, registryTimeout)
	defer cancel()
	c, err := ss.s.cfg.Catalog.CatalogSince(ctx, ss.site, req.Since)
	if err != nil {
		return fmt.Errorf("catalog since %d: %w", req.Since, err)
	}
	_, err = wc.Send(c)
	return err
}
