#!/bin/sh
# bench/profile.sh BUILD MODEL [ISA] - where the time goes (docs/profile.md).
#
# Runs bench/clipdex_bench.c (built against BUILD/libclipdex.a) under
# `perf record` for three tasks at 2 threads - images at batch 16, one image,
# a 7-token text query - and prints each task's speed and its top symbols
# (self time, no children). ISA (scalar|avx2|avx-vnni|avx512) is passed as
# CLIPDEX_ISA; default: the best path. Needs Debian's linux-perf.
set -eu
BUILD=${1:?usage: bench/profile.sh BUILD MODEL [ISA]}
MODEL=${2:?usage: bench/profile.sh BUILD MODEL [ISA]}
[ -n "${3:-}" ] && export CLIPDEX_ISA="$3"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
PKGS="libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson"
# shellcheck disable=SC2046  # pkg-config prints a word list
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -g -Iinclude -o "$OUT/bench" bench/clipdex_bench.c \
    "$BUILD/libclipdex.a" $(pkg-config --libs $PKGS) -lgif -lpthread -lm
for task in "image 16 2 8" "image 1 2 6" "text q7 2 5"; do
    name=$(echo "$task" | cut -d' ' -f1-2 | tr ' ' _)
    res=$(printf '%s\nquit\n' "$task" | perf record -q -o "$OUT/$name.data" "$OUT/bench" --serve \
          --model "$MODEL" --text "q7=a photo of a dog" 2>/dev/null | grep '^result')
    rate=$(echo "$res" | awk '{ per = ($2 == "image") ? $3 : 1; printf "%.1f/s", $5 / $6 * per }')
    echo "== $task, path ${CLIPDEX_ISA:-best}: $rate ($res)"
    perf report -i "$OUT/$name.data" --no-children --sort symbol -q -g none 2>/dev/null |
        grep -v '^$' | head -n "${PROFILE_TOP:-10}"
done
