// Package hostfs holds the few file-system facts that differ between the
// Linux appliance and the Windows PCs the agent and offline collector run on:
// advisory locks, free space and hard links. Everything else in edgesync is
// portable Go.
package hostfs
