#!/bin/sh
# bench/run.sh BUILD - `make bench`: clipdex against ONNX Runtime and PyTorch on ViT-B/32 shapes.
#
# Builds bench/peak.c and bench/clipdex_bench.c against BUILD/libclipdex.a,
# generates the seeded ViT-B/32 models (cached in BUILD/bench-models/), exports
# them to ONNX with tools/export_onnx.py (cached), then bench/driver.py runs
# clipdex and the peers interleaved and prints the table, also written to
# BUILD/bench-results.txt (every measurement: BUILD/bench-raw.tsv).
#
# Knobs (environment):
#   BENCH_ROUNDS=3         interleaved rounds
#   BENCH_AVX2_ROUNDS=2    rounds that also run clipdex fp32 and Q8 with CLIPDEX_ISA=avx2 (0: none;
#                          skipped anyway when AVX2 is already the best path)
#   BENCH_SECONDS=1        seconds per task, system and round
#   BENCH_PEERS=all        all | none | a list of: ort torch
#   BENCH_F16=PATH  BENCH_BF16=PATH  BENCH_Q8=PATH  BENCH_I8=PATH  BENCH_Q4=PATH
#                          clipdex models for the F16/BF16/Q8/Q4 columns (a directory or weight
#                          file clipdex_model_load accepts); by default every clipdex column, fp32
#                          included, runs BUILD/bench-models/b32-{f32p,f16p,bf16p,q8p,i8p,q4p}: the
#                          seeded fp32 model written by `clipdex quantize --layout packed` (the
#                          BF16 column is skipped, with a note, while `--type bf16` fails)
#   BENCH_JPEG=DIR         JPEGs clipdex decodes in the image tasks (default: ../shared/data/
#                          imagenet-samples if present, else synthetic ones)
#   BENCH_ST=1             also run clipdex on the fp32 safetensors directory itself (the
#                          row layout: weight panels are packed per call), as "clipdex-fp32st"
#   PYTHON=/usr/bin/python3  NODE=node  CC=cc
# Needs: the build; for the peers (tools/deps.sh bench installs them) Debian's python3-torch, python3-regex, python3-pil (and libopenblas0-openmp, or
# PyTorch uses the reference BLAS) and node + `npm ci --ignore-scripts` in bench/peers
# (done here when node_modules is missing; the only step that needs a network).
set -eu
BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PYTHON=${PYTHON:-/usr/bin/python3}
NODE=${NODE:-node}
CC=${CC:-cc}
PEERS=${BENCH_PEERS:-all}
MODELS=$BUILD/bench-models
say() { echo "bench: $*" >&2; }

if [ ! -f "$BUILD/libclipdex.a" ] || [ ! -x "$BUILD/clipdex" ] || [ ! -x "$BUILD/tools/genmodel" ]; then
    say "build first: make BUILD=$BUILD"
    exit 1
fi

# ---- the two C programs (same warnings as the Makefile; -O2 like its default)
mkdir -p "$BUILD/bench" "$MODELS"
PKGS="libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson"
WARN="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter"
# shellcheck disable=SC2086  # $WARN and $PKGS are word lists
$CC -std=c11 -D_GNU_SOURCE -O2 $WARN -o "$BUILD/bench/peak" bench/peak.c -lpthread
# shellcheck disable=SC2046,SC2086
$CC -std=c11 -D_GNU_SOURCE -O2 $WARN -Iinclude -o "$BUILD/bench/clipdex_bench" bench/clipdex_bench.c \
    "$BUILD/libclipdex.a" $(pkg-config --libs $PKGS) -lgif -lpthread -lm

# ---- models (genmodel output is byte-identical run to run, so the cache is safe)
gen() { # gen NAME DTYPE
    if [ ! -f "$MODELS/$1/model.safetensors" ]; then
        say "generating $MODELS/$1 (genmodel --config b32 --dtype $2 --seed 3)"
        "$BUILD/tools/genmodel" --config b32 --layout hf --dtype "$2" --seed 3 \
            --out "$MODELS/$1" --vocab ../shared/data/vocab >/dev/null
    fi
}
gen b32-f32 f32
# clipdex runs `clipdex quantize` output (packed panels, docs/quantized.md) for
# every type, fp32 included: the conversion is done once, there, not per start.
# The safetensors directory feeds the peers (ONNX export, PyTorch).
quant() { # quant NAME TYPE; fails (leaving no model) if clipdex cannot write TYPE
    if [ ! -f "$MODELS/$1/model.gguf" ]; then
        say "quantizing $MODELS/b32-f32 to $2 (clipdex quantize, packed layout)"
        mkdir -p "$MODELS/$1"
        cp "$MODELS/b32-f32/vocab.json" "$MODELS/b32-f32/merges.txt" "$MODELS/$1/"
        if ! "$BUILD/clipdex" quantize --model "$MODELS/b32-f32" --type "$2" --layout packed \
            --out "$MODELS/$1/model.gguf" >/dev/null 2>"$MODELS/$1.err"; then
            rm -rf "${MODELS:?}/$1"
            return 1
        fi
        rm -f "$MODELS/$1.err"
    fi
}
NOTES=""
quant b32-f32p f32
set -- --model "fp32=$MODELS/b32-f32p"
if [ -n "${BENCH_ST:-}" ]; then set -- "$@" --model "fp32st=$MODELS/b32-f32"; fi
if [ -n "${BENCH_F16:-}" ]; then set -- "$@" --model "f16=$BENCH_F16"
else quant b32-f16p f16; set -- "$@" --model "f16=$MODELS/b32-f16p"; fi
if [ -n "${BENCH_BF16:-}" ]; then set -- "$@" --model "bf16=$BENCH_BF16"
elif quant b32-bf16p bf16; then set -- "$@" --model "bf16=$MODELS/b32-bf16p"
else
    why=$(head -n 1 "$MODELS/b32-bf16p.err" 2>/dev/null)
    say "no BF16 column: 'clipdex quantize --type bf16' failed: $why"
    NOTES="no BF16 column: 'clipdex quantize --type bf16' failed ($why)"
fi
if [ -z "${BENCH_Q8:-}" ]; then quant b32-q8p q8; fi
if [ -z "${BENCH_I8:-}" ]; then quant b32-i8p i8; fi
if [ -z "${BENCH_Q4:-}" ]; then quant b32-q4p q4; fi
Q8=${BENCH_Q8:-$MODELS/b32-q8p}; [ -e "$Q8" ] && set -- "$@" --model "q8=$Q8"
I8=${BENCH_I8:-$MODELS/b32-i8p}; [ -e "$I8" ] && set -- "$@" --model "i8=$I8"
Q4=${BENCH_Q4:-$MODELS/b32-q4p}; [ -e "$Q4" ] && set -- "$@" --model "q4=$Q4"

want() { [ "$PEERS" = all ] || case " $PEERS " in *" $1 "*) true ;; *) false ;; esac; }
[ "$PEERS" = none ] && PEERS=" "

# ---- PyTorch peer and the ONNX export
have_torch=no
if want torch || want ort; then
    if "$PYTHON" -c "import torch" 2>/dev/null; then have_torch=yes
    else say "no PyTorch ($PYTHON -c 'import torch' fails: apt-get install python3-torch): PyTorch peer and ONNX export skipped"; fi
fi
ONNX=$MODELS/onnx
# ONNX Runtime's int8 model at its best: full 8-bit weights where its u8 x s8 kernels
# have VNNI (no int16 saturation; as fast as 7 bits and more accurate), 7 bits
# (reduce_range) elsewhere; docs/benchmarks.md has the variants measured
INT8_BITS=7
if grep -qw -e avx512_vnni -e avx_vnni /proc/cpuinfo 2>/dev/null; then INT8_BITS=8; fi
if want ort && [ $have_torch = yes ]; then
    # re-export when missing, older than the model or the exporter, or of the other int8 range
    if [ ! -f "$ONNX/text-int8.onnx" ] || [ "$(cat "$ONNX/int8-bits" 2>/dev/null)" != "$INT8_BITS" ] ||
       [ -n "$(find "$MODELS/b32-f32/model.safetensors" tools/export_onnx.py -newer "$ONNX/text-int8.onnx")" ]; then
        say "exporting ONNX (tools/export_onnx.py --int8-bits $INT8_BITS, about 3 minutes with the float64 check)"
        rm -f "$ONNX/checked" "$ONNX/int8-bits"
        "$PYTHON" tools/export_onnx.py "$MODELS/b32-f32" "$ONNX" --int8 --int8-bits $INT8_BITS >&2
        echo $INT8_BITS >"$ONNX/int8-bits"
    fi
fi

# ---- ONNX Runtime peer (onnxruntime-node; its install script only fetches GPU extras)
have_ort=no
if want ort && [ -f "$ONNX/image.onnx" ]; then
    if ! command -v "$NODE" >/dev/null 2>&1; then say "no node: ONNX Runtime peer skipped"
    else
        if [ ! -d bench/peers/node_modules/onnxruntime-node ]; then
            say "installing onnxruntime-node (npm ci --ignore-scripts in bench/peers)"
            (cd bench/peers && npm ci --ignore-scripts --no-audit --no-fund >&2) || say "npm ci failed"
        fi
        if [ -d bench/peers/node_modules/onnxruntime-node ]; then
            have_ort=yes
            if [ ! -f "$ONNX/checked" ]; then
                for v in fp32 int8; do
                    "$NODE" bench/peers/ort_worker.js --dir "$ONNX" --variant $v --check >&2 ||
                        { say "the ONNX export disagrees with the reference"; exit 1; }
                done
                touch "$ONNX/checked"
            fi
        fi
    fi
fi
[ $have_ort = yes ] && set -- "$@" --onnx "$ONNX"
[ -n "$NOTES" ] && set -- "$@" --note "$NOTES"
JPEG=${BENCH_JPEG:-}
if [ -z "$JPEG" ] && [ -d ../shared/data/imagenet-samples ]; then JPEG=../shared/data/imagenet-samples; fi
[ -n "$JPEG" ] && set -- "$@" --jpeg "$JPEG"
want torch && [ $have_torch = yes ] && set -- "$@" --torch-model "$MODELS/b32-f32"

# ---- build flags of the library, as the compiler recorded them (-g is in the Makefile's flags)
obj=$(find "$BUILD/obj/src/tensor" -name '*.o' 2>/dev/null | head -n 1)
flags=$(readelf --debug-dump=info "$obj" 2>/dev/null | sed -n 's/.*DW_AT_producer.*: //p' | head -n 1)
[ -n "$flags" ] || flags="$($CC --version | head -n 1) (flags unknown)"

src=$(git describe --always --dirty 2>/dev/null || echo unknown)

exec "$PYTHON" bench/driver.py --build "$BUILD" "$@" --config "$MODELS/b32-f32/config.json" \
    --rounds "${BENCH_ROUNDS:-3}" --avx2-rounds "${BENCH_AVX2_ROUNDS:-2}" --seconds "${BENCH_SECONDS:-1}" \
    --python "$PYTHON" --node "$NODE" \
    --out "$BUILD/bench-results.txt" --raw "$BUILD/bench-raw.tsv" \
    --command "make bench BUILD=$BUILD${BENCH_ROUNDS:+ BENCH_ROUNDS=$BENCH_ROUNDS}${BENCH_SECONDS:+ BENCH_SECONDS=$BENCH_SECONDS}${BENCH_PEERS:+ BENCH_PEERS=\"$BENCH_PEERS\"}" \
    --build-flags "libclipdex: $flags" --source "git $src"
