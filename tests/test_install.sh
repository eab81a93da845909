#!/bin/sh
# tests/test_install.sh - `make install` gives a user what links the library:
# into a temporary PREFIX (and once with DESTDIR) it checks the header, the
# static library, libclipdex.so.VERSION with its soname links and a .pc that
# names that PREFIX; then builds examples/cosine.c with pkg-config pointing
# there (PKG_CONFIG_PATH), against the shared library and the static one, runs
# it on a seeded tiny model from genmodel and a shared image, and checks its
# cosine against `clipdex compare` on the same inputs. A sanitizer build's
# library is linked with the same sanitizers.
NAME=test_install
. tests/app/lib.sh
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-install.XXXXXX") || { fail "mktemp"; done_; }
IMG=$SHARED/data/images/photos/chelsea.png
TEXT="a photo of a cat"
P=$TMP/prefix
mk() { env -u MAKEFLAGS -u MAKELEVEL make -s BUILD="$BUILD" "$@" >"$TMP/make.out" 2>&1; }

if [ ! -f "$BUILD/libclipdex.so" ] || [ ! -x "$CLIPDEX" ]; then fail "$BUILD is not built"; done_; fi
command -v pkg-config >/dev/null 2>&1 || { skip "no pkg-config"; done_; }
check "make install PREFIX=..." mk install PREFIX="$P"
[ -f "$P/lib/libclipdex.so.0" ] || cat "$TMP/make.out" >&2
check "the header is installed" cmp -s include/clipdex.h "$P/include/clipdex.h"
check "the static library is installed" test -f "$P/lib/libclipdex.a"
V=$(sed -n 's/^#define CLIPDEX_VERSION "\(.*\)"/\1/p' include/clipdex.h)
check "libclipdex.so.$V is a file" test -f "$P/lib/libclipdex.so.$V" -a ! -L "$P/lib/libclipdex.so.$V"
check "libclipdex.so.0 links to it" test "$(readlink "$P/lib/libclipdex.so.0")" = "libclipdex.so.$V"
check "libclipdex.so links to the soname" test "$(readlink "$P/lib/libclipdex.so")" = libclipdex.so.0
check "the soname is libclipdex.so.0" sh -c "objdump -p '$P/lib/libclipdex.so.$V' | grep -q 'SONAME *libclipdex.so.0'"
PKG_CONFIG_PATH=$P/lib/pkgconfig; export PKG_CONFIG_PATH
check "pkg-config knows the version" test "$(pkg-config --modversion clipdex)" = "$V"
cflags=$(pkg-config --cflags clipdex); libs=$(pkg-config --libs clipdex); slibs=$(pkg-config --static --libs clipdex)
check "--cflags names the PREFIX ($cflags)" test "${cflags%% *}" = "-I$P/include"
check "--libs names the PREFIX ($libs)" test "$(echo $libs)" = "-L$P/lib -lclipdex"
for l in -lgif -lpthread -ljpeg -lpng16 -lwebp -ltiff -lutf8proc -lz -ljansson; do
    case " $slibs " in *" $l "*) ok ;; *) fail "--static --libs lacks $l: $slibs" ;; esac
done
check "make install DESTDIR=... PREFIX=/opt/cx" mk install DESTDIR="$TMP/dest" PREFIX=/opt/cx
check "DESTDIR holds the tree" test -f "$TMP/dest/opt/cx/lib/libclipdex.so.0" -a -f "$TMP/dest/opt/cx/include/clipdex.h"
check "the DESTDIR .pc names the PREFIX, not DESTDIR" grep -qx "prefix=/opt/cx" "$TMP/dest/opt/cx/lib/pkgconfig/clipdex.pc"

if [ ! -x "$GENMODEL" ] || [ ! -d "$SHARED/data/vocab" ] || [ ! -f "$IMG" ]; then
    skip "genmodel, $SHARED/data/vocab or $IMG is missing: the example is not run"; done_
fi
"$GENMODEL" --config tiny --layout hf --seed 5 --out "$TMP/tiny" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 ||
    { fail "genmodel failed"; done_; }
want=$("$CLIPDEX" compare --model "$TMP/tiny" --image "$IMG" "$TEXT" | sed -n 's/.*"cosine":\([-0-9.e]*\).*/\1/p')
check "clipdex compare gives a cosine" test -n "$want"
SAN=""
nm -D "$BUILD/libclipdex.so" 2>/dev/null | grep -q __asan_init && SAN="-fsanitize=address,undefined"
cp examples/cosine.c examples/Makefile "$TMP/"
for kind in shared static; do
    rm -f "$TMP/cosine"
    st=""; [ $kind = static ] && st="STATIC=1"
    if env -u MAKEFLAGS -u MAKELEVEL make -s -C "$TMP" $st CFLAGS="-O2 -Wall -Wextra -Werror $SAN" \
        LDFLAGS="$SAN" cosine >"$TMP/cc.out" 2>&1; then ok; else fail "examples/ builds ($kind)"; cat "$TMP/cc.out" >&2; continue; fi
    if [ $kind = static ]; then
        check "the static example does not need libclipdex.so" sh -c "! ldd '$TMP/cosine' | grep -q libclipdex"
    fi
    got=$(LD_LIBRARY_PATH=$P/lib "$TMP/cosine" "$TMP/tiny" "$IMG" "$TEXT")
    check "the $kind example's cosine $got is clipdex compare's $want" near "$got" "$want" 1e-6
done
got=$(LD_LIBRARY_PATH=$P/lib "$TMP/cosine" "$TMP/tiny" "$IMG" "a photo of a dog")
if near "$got" "$want" 1e-4; then fail "another text gives the same cosine ($got)"; else ok; fi
LD_LIBRARY_PATH=$P/lib "$TMP/cosine" "$TMP/tiny" "$TMP/nothing.png" "$TEXT" >/dev/null 2>"$TMP/err"
check "a missing image exits 1" test $? -eq 1
check "and says why" grep -q "cannot load the image" "$TMP/err"
done_
