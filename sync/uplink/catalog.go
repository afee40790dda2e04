package uplink

import (
	"context"
	"fmt"

	"github.com/edgesync/edgesync/sync/wire"
)

// Catalog asks central for the catalog changes after version since (DESIGN.md §2 flow 2).
func (f *Fetcher) Catalog(ctx context.Context, since uint64) (wire.Catalog, error) {
	s, _, ans, err := f.request(ctx, wire.CatalogRequest{Since: since})
	if err != nil {
		return wire.Catalog{}, fmt.Errorf("request catalog since %d: %w", since, err)
	}
	s.Close()
	c, ok := ans.(wire.Catalog)
	if !ok {
		return wire.Catalog{}, fmt.Errorf("%s instead of catalog: %w", ans.Type(), ErrProtocol)
	}
	return c, nil
}
