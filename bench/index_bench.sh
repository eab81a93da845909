#!/bin/sh
# bench/index_bench.sh - the figures in docs/search.md:
#   1. search latency of the vector scan at 10k, 100k and 1M synthetic
#      vectors (512 dimensions, top-10) with 1 and 2 threads;
#   2. end-to-end `clipdex index` throughput on the 1000 ImageNet sample
#      photos against encoder-only throughput (clipdex_pixels_embed on the
#      same batch size, bench/index_encoder.c).
# Usage: sh bench/index_bench.sh [BUILD] [MODEL]   (MODEL: default a tiny genmodel)
BUILD=${1:-build}
MODEL=$2
SHARED=${CLIPDEX_SHARED:-../shared}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
LIBS="$(pkg-config --libs libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson) -lgif -lpthread -lm"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o "$OUT/index_search" bench/index_search.c "$BUILD/libclipdex.a" $LIBS || exit 1
for n in 10000 100000 1000000; do  # data: see bench/index_search.c
    "$OUT/index_search" $n 512 21 random 1 2
    "$OUT/index_search" $n 512 21 clustered 1 2
    "$OUT/index_search" $n 512 21 onecluster 1 2
done
if [ -z "$MODEL" ]; then
    MODEL=$OUT/model
    "$BUILD/tools/genmodel" --config tiny --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null || exit 1
fi
echo "model: $MODEL"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -o "$OUT/index_encoder" bench/index_encoder.c "$BUILD/libclipdex.a" $LIBS || exit 1
"$OUT/index_encoder" "$MODEL" 1000 16
t0=$(date +%s.%N)
"$BUILD/clipdex" index --model "$MODEL" --db "$OUT/bench.db" --quiet --json "$SHARED/data/imagenet-samples"
t1=$(date +%s.%N)
echo "index wall: $(echo "$t1 - $t0" | bc) s"
