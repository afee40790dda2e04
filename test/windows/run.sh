#!/usr/bin/env bash
# make test-windows: the Windows build run for real under Wine, against a
# Linux central and relay on 127.0.0.1 (test/windows/wine_test.go).
#
# It installs what it needs from Debian's packages when missing, makes a
# 64-bit Wine prefix under test/artifacts/, and puts a ProcessPrng shim into
# it: Go >= 1.22 Windows binaries import ProcessPrng from
# bcryptprimitives.dll, which Wine 8 (Debian bookworm) lacks.
set -euo pipefail
cd "$(dirname "$0")/../.."

need=()
command -v wine >/dev/null 2>&1 || need+=(wine wine64)
command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || need+=(gcc-mingw-w64-x86-64)
if ((${#need[@]})); then
  echo "== installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" ||
    { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; }
fi

exe=${EDGESYNC_WINE_EXE:-$PWD/bin/windows-amd64/edgesync.exe}
[ -f "$exe" ] || { echo "test-windows: $exe missing: run make build-windows" >&2; exit 1; }

export WINEPREFIX=${WINEPREFIX:-$PWD/test/artifacts/wineprefix}
export WINEARCH=win64 WINEDEBUG=${WINEDEBUG:--all} DISPLAY=
export WINEDLLOVERRIDES="bcryptprimitives=n;mscoree,mshtml="
mkdir -p "$(dirname "$WINEPREFIX")"
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "== wineboot $WINEPREFIX"
  wineboot --init
  wineserver -w
fi
sys32=$WINEPREFIX/drive_c/windows/system32
x86_64-w64-mingw32-gcc -shared -O2 -o "$sys32/bcryptprimitives.dll" \
  test/windows/wineshim/bcryptprimitives.c test/windows/wineshim/bcryptprimitives.def -lbcrypt

# Processes the service manager starts do not inherit WINEDLLOVERRIDES: the
# agent service reads the override from the prefix's registry.
wine reg add 'HKCU\Software\Wine\DllOverrides' /v bcryptprimitives /d native /f >/dev/null

# A service a failed run left installed would make the next install fail.
trap 'wineserver -k >/dev/null 2>&1 || true' EXIT
wine --version
EDGESYNC_WINE_EXE=$exe EDGESYNC_WINE_REPORT=${EDGESYNC_WINE_REPORT:-$PWD/test/artifacts/wine-inventory.json} \
  go test -count=1 -v -run '^TestWine$' -timeout 20m ./test/windows/
