#!/bin/sh
# tools/deb.sh - builds the Debian package of a finished build (`make deb`,
# `make ARCH=aarch64 deb`): `make install PREFIX=/usr` into a staging tree,
# binaries stripped, the manual page (docs/man/clipdex.1), the copyright
# file and a compressed changelog in
# /usr/share/doc/clipdex, an ldconfig trigger and a shlibs file for
# libclipdex.so.0, md5sums, and Depends computed from the libraries the
# program and the library link (the Debian package that holds each one, at
# least its installed version). Writes BUILD/clipdex_VERSION-1_DEBARCH.deb
# and prints its path. Needs dpkg-deb and the packages the build used.
#
#   sh tools/deb.sh BUILD DEBARCH [STRIP] [MAKEFLAGS...]
set -eu
BUILD=$1 DEBARCH=$2 STRIP=${3:-strip}
[ $# -ge 3 ] && shift 3 || shift $#
VERSION=$(sed -n 's/^#define CLIPDEX_VERSION "\(.*\)"/\1/p' include/clipdex.h)
DEBVER=$VERSION-1
STAGE=$BUILD/deb/clipdex_${DEBVER}_$DEBARCH
rm -rf "$STAGE"
make -s install PREFIX=/usr DESTDIR="$STAGE" BUILD="$BUILD" "$@" >/dev/null
"$STRIP" --strip-unneeded --remove-section=.comment --remove-section=.note "$STAGE/usr/bin/clipdex" \
    "$STAGE/usr/lib/libclipdex.so.$VERSION"
"$STRIP" --strip-debug "$STAGE/usr/lib/libclipdex.a"
chmod 644 "$STAGE/usr/lib/libclipdex.so.$VERSION"

install -d "$STAGE/usr/share/man/man1"
gzip -9n <docs/man/clipdex.1 >"$STAGE/usr/share/man/man1/clipdex.1.gz"
DOC=$STAGE/usr/share/doc/clipdex
mkdir -p "$DOC"
cat >"$DOC/copyright" <<'EOF'
clipdex: a CLIP engine (libclipdex) and semantic image and video search.

Copyright (C) 2026 the clipdex developers.

License: none chosen yet; until the project publishes one, no licence is
granted beyond what the law allows without one.

The package links, dynamically, only libraries of Debian (see its Depends);
it contains no code or data of others. The person detector that
`clipdex detect` and `--detector person` use is not in the package (sh
tools/get_detector.sh downloads it; README.md gives its licences).
EOF
DATE=$(date -u -R -d "@$(git log -1 --format=%ct 2>/dev/null || date +%s)")
cat <<EOF | gzip -9n >"$DOC/changelog.Debian.gz"
clipdex ($DEBVER) unstable; urgency=medium

  * Package built from the clipdex tree by tools/deb.sh.

 -- clipdex developers <clipdex@clipdex.invalid>  $DATE
EOF

# Depends: the package of every library the program and the library link
OBJDUMP=${OBJDUMP:-objdump}
needed=$( ("$OBJDUMP" -p "$STAGE/usr/bin/clipdex"; "$OBJDUMP" -p "$STAGE/usr/lib/libclipdex.so.$VERSION") |
    sed -n 's/^ *NEEDED *//p' | sort -u)
triplet=$(gcc -print-multiarch)
[ "$DEBARCH" = arm64 ] && triplet=aarch64-linux-gnu
deps=""
for lib in $needed; do
    pkg=""
    for path in /lib/$triplet/$lib /usr/lib/$triplet/$lib $(readlink -f /usr/lib/$triplet/$lib 2>/dev/null); do
        pkg=$(dpkg -S "$path" 2>/dev/null | head -n 1 | cut -d: -f1) && [ -n "$pkg" ] && break
    done
    [ -n "$pkg" ] || { echo "deb.sh: no package holds $lib" >&2; exit 1; }
    q=$pkg; [ "$DEBARCH" = arm64 ] && q=$pkg:arm64
    deps="$deps$pkg (>= $(dpkg-query -W -f '${Version}' "$q"))
"
done
depends=$(printf '%s' "$deps" | sort -u | paste -sd, - | sed 's/,/, /g')

mkdir -p "$STAGE/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
cat >"$STAGE/DEBIAN/control" <<EOF
Package: clipdex
Version: $DEBVER
Architecture: $DEBARCH
Maintainer: clipdex developers <clipdex@clipdex.invalid>
Installed-Size: $size
Depends: $depends
Section: graphics
Priority: optional
Homepage: https://clipdex.invalid/
Description: CLIP engine and semantic image and video search
 clipdex embeds images and texts with CLIP checkpoints (Hugging Face,
 OpenCLIP, GGUF; F32, F16, BF16, Q8, Q4) and searches photo and video
 folders by text or image: an incremental SQLite index, a command line, an
 HTTP server with a search page, live matching of video streams and a
 person detector. It contains the program, the library libclipdex (shared
 and static), its header and its pkg-config file.
EOF
echo "libclipdex 0 clipdex (>= $DEBVER)" >"$STAGE/DEBIAN/shlibs"
echo "activate-noawait ldconfig" >"$STAGE/DEBIAN/triggers"
(cd "$STAGE" && find usr -type f | sort | xargs md5sum) >"$STAGE/DEBIAN/md5sums"
chmod 644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/shlibs" "$STAGE/DEBIAN/triggers" "$STAGE/DEBIAN/md5sums"
OUT=$BUILD/clipdex_${DEBVER}_$DEBARCH.deb
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$OUT" >/dev/null
echo "$OUT"
