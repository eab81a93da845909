#!/bin/sh
# tests/test_deb.sh - `make deb` (tools/deb.sh) gives a package Debian's
# tools accept: lintian reports no error; it holds the program, its manual
# page (which lists every command of `clipdex help`), the header,
# the static and shared library with its soname links, the .pc, the
# copyright file and changelog; its Depends names the package of every
# library the program and the library link; its shlibs and ldconfig
# trigger are there; and the program unpacked from it runs. Skipped
# without dpkg-deb or lintian, under emulation, and for a sanitizer build
# (not something to package).
NAME=test_deb
. tests/app/lib.sh
if [ -n "$CLIPDEX_EXEC" ]; then skip "under emulation (build the arm64 package with make ARCH=aarch64 deb)"; done_; fi
command -v dpkg-deb >/dev/null 2>&1 && command -v lintian >/dev/null 2>&1 || { skip "needs dpkg-deb and lintian"; done_; }
[ -x "$CLIPDEX" ] || { fail "$BUILD is not built"; done_; }
if objdump -p "$CLIPDEX" | grep -q 'NEEDED *libasan'; then skip "a sanitizer build is not packaged"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-deb.XXXXXX") || { fail "mktemp"; done_; }
ARCH=$(dpkg --print-architecture)
DEB=$(env -u MAKEFLAGS -u MAKELEVEL sh tools/deb.sh "$BUILD" "$ARCH" 2>"$TMP/err")
check "tools/deb.sh builds the package" test -f "$DEB"
[ -f "$DEB" ] || { cat "$TMP/err" >&2; done_; }
lintian --fail-on error "$DEB" >"$TMP/lintian" 2>&1
check "lintian reports no error" [ $? -eq 0 ]
grep '^E:' "$TMP/lintian" >&2
dpkg-deb -c "$DEB" | awk '{ print $6 }' | sed 's|^\./|/|' >"$TMP/files"
V=$(sed -n 's/^#define CLIPDEX_VERSION "\(.*\)"/\1/p' include/clipdex.h)
for f in /usr/bin/clipdex /usr/include/clipdex.h /usr/lib/libclipdex.a /usr/lib/libclipdex.so.$V /usr/lib/libclipdex.so.0 \
    /usr/lib/libclipdex.so /usr/lib/pkgconfig/clipdex.pc /usr/share/doc/clipdex/copyright \
    /usr/share/doc/clipdex/changelog.Debian.gz /usr/share/man/man1/clipdex.1.gz; do
    check "the package holds $f" grep -qx "$f" "$TMP/files"
done
cmds=$("$CLIPDEX" help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { exit } on { print $1 }')
absent=""
for c in $cmds; do grep -qx "\.B $c" docs/man/clipdex.1 || absent="$absent $c"; done
check "the manual page lists every command of clipdex help${absent:+ (absent:$absent)}" [ -n "$cmds" -a -z "$absent" ]
dpkg-deb -f "$DEB" Depends >"$TMP/depends"
missing=""
for lib in $(objdump -p "$CLIPDEX" "$BUILD/libclipdex.so" | sed -n 's/^ *NEEDED *//p' | sort -u); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l { print $NF; exit }')
    pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1)
    [ -n "$pkg" ] || pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -n 1 | cut -d: -f1)
    grep -q "\(^\|, \)$pkg (" "$TMP/depends" || missing="$missing $lib($pkg)"
done
check "Depends names the package of every linked library${missing:+ (missing:$missing)}" [ -z "$missing" ]
dpkg-deb -e "$DEB" "$TMP/control"
check "shlibs maps libclipdex 0 to the package" grep -qx "libclipdex 0 clipdex (>= $V-1)" "$TMP/control/shlibs"
check "the ldconfig trigger is there" grep -qx "activate-noawait ldconfig" "$TMP/control/triggers"
dpkg-deb -x "$DEB" "$TMP/root"
check "the unpacked program runs" sh -c "'$TMP/root/usr/bin/clipdex' --version | grep -q '$V'"
check "the unpacked library has its soname" sh -c "objdump -p '$TMP/root/usr/lib/libclipdex.so.$V' | grep -q 'SONAME *libclipdex.so.0'"
rm -rf "$BUILD/deb" "$DEB"
done_
