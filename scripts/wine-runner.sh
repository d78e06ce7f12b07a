#!/bin/sh
# Cargo runner for x86_64-pc-windows-gnu: runs a Windows .exe under Wine.
# Creates the Wine prefix on first use and installs the ProcessPrng shim
# (bcryptprimitives.dll, missing from Wine < 9) into the prefix's system32,
# so every .exe in the prefix (test binaries, and the children they spawn) finds it.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${WINEPREFIX:=${HOME:-/tmp}/.wine-rust-tests}"
: "${WINEDEBUG:=-all}"                    # silence fixme/err chatter (and the wine32 hint)
: "${WINEDLLOVERRIDES:=mscoree,mshtml=}"  # never try to install Mono / Gecko
export WINEPREFIX WINEDEBUG WINEDLLOVERRIDES
WINE=${WINE:-$(command -v wine || echo /usr/lib/wine/wine64)}   # `wine` pkg, or plain `wine64`
shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim" ]; then
    mkdir -p "$WINEPREFIX"
    (
        flock 9                            # parallel cargo invocations: init once
        if [ ! -f "$shim" ]; then
            "$WINE" wineboot -i >/dev/null 2>&1 || true
            "${WINESERVER:-$(command -v wineserver || echo /usr/lib/wine/wineserver64)}" -w 2>/dev/null || true
            x86_64-w64-mingw32-gcc -shared -O2 -s -o "$shim.tmp" \
                "$here/bcryptprimitives.c" -ladvapi32
            mv "$shim.tmp" "$shim"
        fi
    ) 9>"$WINEPREFIX/.init.lock"
fi
exec "$WINE" "$@"
