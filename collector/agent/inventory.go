package agent

import (
	"encoding/json"
	"fmt"
	"maps"
	"runtime"

	"github.com/edgesync/edgesync/collector/record"
)

func goarch() string { return runtime.GOARCH }

// fitInventory encodes inv within limit bytes: if it is too big it drops the
// software publishers, then truncates the software list, and marks the
// payload with the custom field "edgesync.software_truncated".
func fitInventory(inv record.Inventory, limit int) (json.RawMessage, error) {
	b, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("encode inventory: %w", err)
	}
	if len(b) <= limit {
		return b, nil
	}
	sw := make([]record.Software, len(inv.Software))
	for i, s := range inv.Software {
		sw[i] = record.Software{Name: s.Name, Version: s.Version}
	}
	inv.Software = sw
	inv.CustomFields = maps.Clone(inv.CustomFields)
	if inv.CustomFields == nil {
		inv.CustomFields = map[string]string{}
	}
	inv.CustomFields["edgesync.software_truncated"] = fmt.Sprint(len(sw))
	for {
		b, err = json.Marshal(inv)
		if err != nil {
			return nil, fmt.Errorf("encode inventory: %w", err)
		}
		if len(b) <= limit {
			return b, nil
		}
		if len(inv.Software) == 0 {
			return nil, fmt.Errorf("agent: inventory is %d bytes without software, limit %d", len(b), limit)
		}
		keep := len(inv.Software) * limit / len(b) * 9 / 10
		inv.Software = inv.Software[:min(keep, len(inv.Software)-1)]
	}
}
