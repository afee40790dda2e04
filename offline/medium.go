package offline

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/edgesync/edgesync/internal/hostfs"
)

// Platform is an operating system a collection medium carries a collector
// for.
type Platform string

// The platforms a kit can carry.
const (
	PlatformWindows Platform = "windows"
	PlatformLinux   Platform = "linux"
)

// Files a medium carries next to kit.json, besides the Linux BinaryName.
// Names are FAT-safe: 8.3-friendly, no ':' or other reserved characters,
// and distinct without regard to case.
const (
	WindowsBinaryName = "edgesync.exe"
	LauncherName      = "collect.cmd" // the getinv.vbs of this product
	ShellLauncherName = "collect.sh"
)

// DefaultPlatforms is what `offline kit create` puts on a medium unless told.
var DefaultPlatforms = []Platform{PlatformWindows, PlatformLinux}

// ParsePlatforms reads a comma-separated platform list such as
// "windows,linux".
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	seen := map[Platform]bool{}
	for _, f := range strings.Split(s, ",") {
		p := Platform(strings.ToLower(strings.TrimSpace(f)))
		switch p {
		case PlatformWindows, PlatformLinux:
		case "":
			continue
		default:
			return nil, fmt.Errorf("unknown platform %q: want windows, linux or both", f)
		}
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no platform given: want windows, linux or both")
	}
	return out, nil
}

// MediumConfig says what to write onto a collection medium.
type MediumConfig struct {
	Root string // the medium root; EDGESYNC/ is created in it
	Kit  []byte // the signed kit.json
	// Binaries maps each platform the medium carries to the path of its
	// edgesync binary.
	Binaries map[Platform]string
}

// WriteMedium lays out a collection medium (DESIGN.md §9): kit.json, the
// Data folder, and for each platform its collector binary and launcher. It
// returns the EDGESYNC folder. Every file is written through a temporary
// name, fsynced and renamed, so a stick pulled out half-way never holds a
// truncated binary under its final name.
func WriteMedium(cfg MediumConfig) (string, error) {
	if _, err := ParseKit(cfg.Kit, nil); err != nil {
		return "", err
	}
	if len(cfg.Binaries) == 0 {
		return "", errors.New("medium: no platform binary given")
	}
	for p, src := range cfg.Binaries {
		if err := checkBinary(p, src); err != nil {
			return "", err
		}
	}
	root := filepath.Join(cfg.Root, RootDir)
	if err := os.MkdirAll(filepath.Join(root, DataDir), 0o755); err != nil {
		return "", fmt.Errorf("medium: %w", err)
	}
	if err := writeMediumFile(root, KitFile, bytes.NewReader(cfg.Kit), 0o644); err != nil {
		return "", err
	}
	for _, p := range []Platform{PlatformWindows, PlatformLinux} {
		src, ok := cfg.Binaries[p]
		if !ok {
			continue
		}
		f, err := os.Open(src)
		if err != nil {
			return "", fmt.Errorf("medium: %s binary: %w", p, err)
		}
		name, launcher, script := BinaryName, ShellLauncherName, shellLauncher
		if p == PlatformWindows {
			name, launcher, script = WindowsBinaryName, LauncherName, cmdLauncher
		}
		err = writeMediumFile(root, name, f, 0o755)
		f.Close()
		if err != nil {
			return "", err
		}
		if err := writeMediumFile(root, launcher, strings.NewReader(script), 0o755); err != nil {
			return "", err
		}
	}
	if err := hostfs.SyncDir(root); err != nil {
		return "", fmt.Errorf("medium: %w", err)
	}
	return root, nil
}

// checkBinary catches the wrong file given for a platform (a Linux binary
// as the Windows one, a script, a truncated download) before it is copied.
func checkBinary(p Platform, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("medium: %s binary: %w", p, err)
	}
	defer f.Close()
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil {
		return fmt.Errorf("medium: %s binary %s: too short to be a program", p, path)
	}
	want, kind := []byte("\x7fELF"), "an ELF (Linux) program"
	if p == PlatformWindows {
		want, kind = []byte("MZ"), "a PE (Windows .exe) program"
	}
	if !bytes.HasPrefix(magic, want) {
		return fmt.Errorf("medium: %s binary %s is not %s", p, path, kind)
	}
	return nil
}

func writeMediumFile(dir, name string, r io.Reader, perm os.FileMode) error {
	dst := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("medium: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return fmt.Errorf("medium: write %s: %w", dst, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("medium: fsync %s: %w", dst, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("medium: write %s: %w", dst, err)
	}
	// FAT keeps no modes; elsewhere the binary must be executable.
	os.Chmod(tmp.Name(), perm)
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("medium: %w", err)
	}
	return nil
}

// cmdLauncher is collect.cmd, run from the stick on an offline Windows PC
// as the product's getinv.vbs is: the same switches, exit codes and result
// files. CRLF line ends, because cmd.exe mis-parses labels and goto in LF
// files. %~dp0 ends in a backslash, which would escape the closing quote
// in the argument Go parses, hence the trailing dot.
var cmdLauncher = strings.ReplaceAll(`@echo off
rem edgesync offline collection: collect.cmd [/u] [/s] [/silent]
rem   /u       do not show the end-user form
rem   /s       skip the installed-software search
rem   /silent  no window output and no form
rem Exit codes: 0 success; 10001 form cancelled; 10011 bad arguments; 10031 another
rem collection running; 10051 path too long; 10101 collection failed; 10102 medium not
rem writable; 10105 kit invalid; 10106 device ID or key corrupt.
setlocal
set ESARGS=
:next
if "%~1"=="" goto run
if /i "%~1"=="/u" set ESARGS=%ESARGS% --no-form& shift& goto next
if /i "%~1"=="/s" set ESARGS=%ESARGS% --skip-software& shift& goto next
if /i "%~1"=="/silent" set ESARGS=%ESARGS% --silent& shift& goto next
echo collect.cmd: unknown option %1 1>&2
echo usage: collect.cmd [/u] [/s] [/silent] 1>&2
exit /b 10011
:run
"%~dp0edgesync.exe" offline collect --kit "%~dp0." %ESARGS%
exit /b %ERRORLEVEL%
`, "\n", "\r\n")

// shellLauncher is collect.sh for Linux PCs: `sh collect.sh [/u] [/s] [/silent]`
// works even where the stick is mounted noexec or without modes.
const shellLauncher = `#!/bin/sh
# edgesync offline collection: sh collect.sh [/u] [/s] [/silent]
dir=$(cd "$(dirname "$0")" && pwd)
args=""
for a in "$@"; do
  case "$a" in
    /u|-u) args="$args --no-form" ;;
    /s|-s) args="$args --skip-software" ;;
    /silent|-silent|--silent) args="$args --silent" ;;
    *) echo "collect.sh: unknown option $a" >&2; echo "usage: sh collect.sh [/u] [/s] [/silent]" >&2; exit 27 ;; # 10011 mod 256, as the binary exits
  esac
done
bin="$dir/edgesync"
if [ ! -x "$bin" ]; then
  # A FAT stick mounted without exec: run a copy from /tmp.
  tmp=$(mktemp /tmp/edgesync.XXXXXX) && cp "$bin" "$tmp" && chmod 700 "$tmp" && bin="$tmp"
  trap 'rm -f "$tmp"' EXIT
fi
# shellcheck disable=SC2086
"$bin" offline collect --kit "$dir" $args
`
