#!/bin/sh
# bench/watch_bench.sh [BUILD] - frames/s of `clipdex watch` on 720p video,
# 1 and 4 streams at once, and where the time goes (docs/watch.md, "Speed"):
#   - a 1280x720 H.264 clip of N_SEC seconds at 25 frames/s (ffmpeg's
#     testsrc2 pattern), watched with --every 0 (every frame is decoded,
#     scaled, embedded and scored: the most a machine keeps up with);
#   - 1 input, then the same clip as 4 inputs (4 decoder threads, frames
#     batched across them into the image tower), for each model type,
#     interleaved round after round; a cell is the median over ROUNDS;
#   - the stages from watch's own summary: decode+scale and to-image (the
#     decoder threads, beside the tower), the image tower and scoring (the
#     caller's thread), in seconds per frame and as a share of the wall time.
# Models: BUILD/bench-models/b32-{f32p,q8p} (made by `make bench`), else a
# seeded ViT-B/32-shaped model from genmodel (speed does not depend on the
# weights). Needs ffmpeg.
set -eu
BUILD=${1:-build}
SHARED=${CLIPDEX_SHARED:-../shared}
N_SEC=${N_SEC:-10}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-0}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
set --
for t in f32p q8p; do
    [ -f "$BUILD/bench-models/b32-$t/model.gguf" ] && set -- "$@" "$t=$BUILD/bench-models/b32-$t"
done
if [ $# -eq 0 ]; then
    "$BUILD/tools/genmodel" --config b32 --layout hf --seed 3 --out "$OUT/b32" --vocab "$SHARED/data/vocab" >/dev/null
    set -- "f32=$OUT/b32"
fi
ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=s=1280x720:r=25:d=$N_SEC" -c:v libx264 -preset veryfast \
    -pix_fmt yuv420p "$OUT/clip.mp4"
frames=$((N_SEC * 25))
echo "command:  sh bench/watch_bench.sh $BUILD (N_SEC=$N_SEC ROUNDS=$ROUNDS THREADS=$THREADS)"
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "cpu:      $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) CPUs"
echo "video:    ${N_SEC} s 1280x720 H.264 (testsrc2, x264 veryfast) at 25 frames/s = $frames frames per input; --every 0"
# one MODEL_PATH INPUTS: appends "frames wall decode prep tower score" to $OUT/NAME.t
one() {
    name=$1; model=$2; k=$3
    set --
    i=0; while [ $i -lt "$k" ]; do set -- "$@" --input "$OUT/clip.mp4"; i=$((i + 1)); done
    "$BUILD/clipdex" watch --model "$model" --threads "$THREADS" --every 0 --batch 16 --text "a test pattern" \
        "$@" >/dev/null 2>"$OUT/err" || { cat "$OUT/err" >&2; exit 1; }
    awk '/frames scored/ { f += $6 }
         /input [0-9]+ time:/ { d += $7; p += $(NF - 1) }
         /time: image tower/ { t = $6; s = $11; w = $14 }
         END { print f, w, d, p, t, s }' "$OUT/err" >>"$OUT/$name.t"
}
r=0
while [ $r -lt "$ROUNDS" ]; do
    for spec in "$@"; do
        for k in 1 4; do one "${spec%%=*}-$k" "${spec#*=}" $k; done
    done
    r=$((r + 1))
done
for spec in "$@"; do
    "$BUILD/clipdex" info --model "${spec#*=}" 2>/dev/null | grep -m1 '^kernels' | sed "s/^kernels */${spec%%=*}: kernels /" || true
done
printf '\n%-10s %7s %9s %11s | %-58s\n' model inputs frames/s "ms/frame" \
    "per frame, ms (share of wall): decode+scale, to image, tower, scoring"
for spec in "$@"; do
    for k in 1 4; do
        name="${spec%%=*}-$k"
        sort -k2 -n "$OUT/$name.t" | awk -v n="$ROUNDS" -v m="${spec%%=*}" -v k="$k" '
            { a[NR] = $0 }
            END { split(a[int((n + 1) / 2)], x, " ");
                  f = x[1]; w = x[2];
                  printf "%-10s %7d %9.1f %11.1f | %5.1f (%3.0f%%) %5.1f (%3.0f%%) %5.1f (%3.0f%%) %5.3f (%2.0f%%)\n",
                         m, k, f / w, 1000 * w / f,
                         1000 * x[3] / f, 100 * x[3] / w, 1000 * x[4] / f, 100 * x[4] / w,
                         1000 * x[5] / f, 100 * x[5] / w, 1000 * x[6] / f, 100 * x[6] / w }'
    done
done
echo "median round by wall time; decoder stages run on their own threads beside the tower, so shares can sum past 100%"
