#!/bin/sh
# bench/detect_bench.sh [BUILD] - the person detector's speed (docs/detect.md):
#   1. NanoDet at 416x416 on the detector test's scene, clipdex (the whole
#      clipdex_detect call: letterbox, graph, decoding, NMS; and its stages)
#      on 1 and 2 threads, interleaved round after round with TF.js 4.22 in
#      node on the same machine: the WASM backend (node runs it on 1 thread:
#      no threaded WASM there) and the pure-JS CPU backend; TF.js's time is
#      model.execute alone (no pre- or post-processing), median of RUNS;
#   2. `clipdex watch --detector person` end to end on 720p H.264 clips with
#      1 to 5 people (made from the scene), every frame (--every 0),
#      crops each 1 s per track: frames/s and the share of each stage.
# Needs ffmpeg, node + npm (tools/detect: npm ci) and the detector (sh
# tools/get_detector.sh). The CLIP model: BUILD/bench-models/b32-f32p (make
# bench), else a seeded ViT-B/32-shaped one (speed does not depend on weights).
set -eu
BUILD=${1:-build}
SHARED=${CLIPDEX_SHARED:-../shared}
DET=${CLIPDEX_DETECTOR:-$BUILD/models/nanodet}
ROUNDS=${ROUNDS:-3}
RUNS=${RUNS:-10}
N_SEC=${N_SEC:-6}
NODE=${NODE:-node}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
sh tools/get_detector.sh "$DET"
[ -d tools/detect/node_modules ] || (cd tools/detect && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
mkdir -p "$BUILD/bench"
${CC:-cc} -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -o "$BUILD/bench/detect_bench" bench/detect_bench.c \
    "$BUILD/libclipdex.a" $(pkg-config --libs jansson libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib) \
    -lgif -lpthread -lm
IMG=tests/golden/detect/scene.png
echo "# detect_bench $(date -u +%Y-%m-%dT%H:%MZ) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "# cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) CPUs; isa flags: $(grep -o 'avx512[a-z_0-9]*\|avx_vnni\|avx2' /proc/cpuinfo | sort -u | tr '\n' ' ')"
echo "# 1. NanoDet 416x416, median of $RUNS runs per round, $ROUNDS rounds interleaved"
for r in $(seq "$ROUNDS"); do
    for t in 1 2; do echo "round=$r $("$BUILD/bench/detect_bench" "$DET" "$IMG" $t "$RUNS")"; done
    echo "round=$r $($NODE tools/detect/bench.mjs "$DET" wasm 1 "$RUNS" 2>/dev/null | tail -n 1)"
    echo "round=$r $($NODE tools/detect/bench.mjs "$DET" cpu 1 2 2>/dev/null | tail -n 1)"
done | tee "$OUT/det.txt"
awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
       key = $2 " " f["threads"]; if (!(key in best) || f["ms"] + 0 < best[key]) best[key] = f["ms"] + 0 }
     END { for (k in best) printf "best of rounds: %-22s %8.2f ms\n", k, best[k] }' "$OUT/det.txt" | sort
w1=$(awk '$2 == "tfjs-wasm" { split($4, a, "="); if (!m || a[2] < m) m = a[2] } END { print m }' "$OUT/det.txt")
for t in 1 2; do
    c=$(awk -v t="threads=$t" '$2 == "clipdex" && $3 == t { split($5, a, "="); if (!m || a[2] < m) m = a[2] } END { print m }' "$OUT/det.txt")
    echo "ratio: clipdex $t thread(s) vs TF.js WASM (1 thread): $(awk -v a="$w1" -v b="$c" 'BEGIN { printf "%.2fx faster", a / b }')"
done

echo "# 2. watch --detector person, 720p H.264, every frame, $N_SEC s clips"
M=$BUILD/bench-models/b32-f32p
if [ ! -d "$M" ]; then
    M=$OUT/b32
    "$BUILD/tools/genmodel" --config b32 --layout hf --seed 3 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null
fi
FF="ffmpeg -nostdin -loglevel error -y"
enc="-t $N_SEC -r 25 -c:v libx264 -preset veryfast -pix_fmt yuv420p"
# n people: parts of the scene (one person: x 320..620; two: 0..620; three: all of it)
one="crop=300:540:320:0" two="crop=620:540:0:0" fit="scale=1280:-2,pad=1280:720:0:(oh-ih)/2:0x8ca08c"
$FF -loop 1 -i $IMG -vf "$one,pad=960:540:330:0:0x8ca08c,scale=1280:720" $enc "$OUT/p1.mp4"
$FF -loop 1 -i $IMG -vf "$two,pad=960:540:170:0:0x8ca08c,scale=1280:720" $enc "$OUT/p2.mp4"
$FF -loop 1 -i $IMG -vf "scale=1280:720" $enc "$OUT/p3.mp4"
$FF -loop 1 -i $IMG -filter_complex "[0]split[a][b];[b]$one[c];[a][c]hstack,$fit" $enc "$OUT/p4.mp4"
$FF -loop 1 -i $IMG -filter_complex "[0]split[a][b];[b]$two[c];[a][c]hstack,$fit" $enc "$OUT/p5.mp4"
for n in 1 2 3 4 5; do
    $FF -i "$OUT/p$n.mp4" -frames:v 1 "$OUT/f$n.png"
    echo "clip p$n.mp4: $("$BUILD/clipdex" detect --detector "$DET" "$OUT/f$n.png" | wc -l) people found in its first frame"
    /usr/bin/time -f "%e" -o "$OUT/t" "$BUILD/clipdex" watch --model "$M" --detector person --detector-model "$DET" \
        --text "a person in an orange suit" --every 0 --input "$OUT/p$n.mp4" >/dev/null 2>"$OUT/s$n"
    frames=$(sed -n 's/.*: \([0-9]*\) frames scored.*/\1/p' "$OUT/s$n")
    det=$(sed -n 's/.*detector and tracker \([0-9.]*\) s.*/\1/p' "$OUT/s$n")
    tower=$(sed -n 's/.*image tower \([0-9.]*\) s.*/\1/p' "$OUT/s$n")
    wall=$(sed -n 's/.*wall \([0-9.]*\) s.*/\1/p' "$OUT/s$n")
    dec=$(sed -n 's/.*decode+scale \([0-9.]*\) s.*/\1/p' "$OUT/s$n")
    awk -v n=$n -v f="$frames" -v d="$det" -v t="$tower" -v w="$wall" -v c="$dec" 'BEGIN {
        printf "people=%d: %.1f frames/s (%d frames in %.2f s); detector+tracker %.0f %%, crops in the image tower %.0f %%, decoding (its own thread) %.2f s\n",
            n, f / w, f, w, 100 * d / w, 100 * t / w, c }'
done
