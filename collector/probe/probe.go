package probe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgesync/edgesync/collector/record"
)

// Options controls Collect.
type Options struct {
	// Root is prepended to every file path read ("/" when empty), so tests
	// can run against a fake root. Commands (rpm, who) and the live
	// uname/hostname calls are used only when Root is "/".
	Root string
	// Interfaces lists network interfaces; nil means the live interfaces
	// from net.Interfaces when Root is "/", or /sys/class/net under Root.
	Interfaces func() ([]record.Interface, error)
}

func (o Options) live() bool { return o.Root == "" || o.Root == "/" }

func (o Options) path(p string) string {
	if o.live() {
		return p
	}
	return filepath.Join(o.Root, p)
}

func (o Options) read(p string) (string, error) {
	b, err := os.ReadFile(o.path(p))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// part is one independent piece of the inventory. A part that fails leaves
// its fields empty and a warning; it never stops the others.
type part struct {
	name string
	fn   func(context.Context, Options, *record.Inventory) error
}

// linuxParts read /proc, /sys and the package databases under Options.Root.
var linuxParts = []part{
	{"hostname", collectHostname},
	{"os", collectOS},
	{"kernel", collectKernel},
	{"cpu", collectCPU},
	{"memory", collectMemory},
	{"dmi", collectDMI},
	{"disks", collectDisks},
	{"network", collectNetwork},
	{"software", collectSoftware},
	{"users", collectUsers},
	{"local users", collectLocalUsers},
}

// Collect gathers the inventory. It always returns what it could collect;
// each part that failed adds a line to inv.Warnings, and the error, when
// non-nil, joins them.
func Collect(ctx context.Context, opts Options) (record.Inventory, error) {
	var inv record.Inventory
	var errs []error
	for _, p := range partsFor(opts) {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("probe: %w", err))
			break
		}
		if err := p.fn(ctx, opts, &inv); err != nil {
			err = fmt.Errorf("probe %s: %w", p.name, err)
			errs = append(errs, err)
			inv.Warnings = append(inv.Warnings, err.Error())
		}
	}
	cleanInventory(&inv)
	return inv, errors.Join(errs...)
}
