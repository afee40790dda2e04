// Package windows runs the Windows build of edgesync for real, under Wine,
// against a Linux central and relay on 127.0.0.1. `make test-windows`
// (test/windows/run.sh) prepares the Wine prefix and sets
// EDGESYNC_WINE_EXE; without it the test skips.
package windows
