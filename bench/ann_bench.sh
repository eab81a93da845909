#!/bin/sh
# bench/ann_bench.sh [N] [Q] [FACTORY] [THREADS] - builds bench/ann_bench.c
# against the objects of `make` (app/ann with its FAISS wrapper, the store
# it names, the library) and runs it: N synthetic clustered 512-d vectors
# (default 1000000), Q queries (200), the rule's factory unless FACTORY, on
# THREADS threads (2). Prints the command, CPU, compile flags and figures.
# Needs about 4.5 GB of memory at N = 1M (the matrix and FAISS's copy).
set -e
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FLAGS="-std=c11 -D_GNU_SOURCE -O2 -g -Iinclude -Iapp $(pkg-config --cflags sqlite3)"
O=$BUILD/obj/app
cc $FLAGS -o "$BUILD/ann_bench" bench/ann_bench.c "$O/ann/ann.o" "$O/ann/faiss_glue.o" "$O/store/store.o" \
    "$O/util/report.o" "$O/util/sha256.o" "$BUILD/libclipdex.a" $(pkg-config --libs sqlite3) \
    -lfaiss -fopenmp -lblas -llapack -lstdc++ -lm -lpthread \
    $(pkg-config --libs libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson) -lgif
echo "flags: cc $FLAGS; clipdex objects from $BUILD (make's -O2); FAISS: Debian's static libfaiss $(dpkg-query -W -f='${Version}' libfaiss-dev 2>/dev/null), BLAS $(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3)"
exec "$BUILD/ann_bench" "${1:-1000000}" "${2:-200}" "${3:-}" "${4:-2}"
