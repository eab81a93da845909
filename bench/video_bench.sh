#!/bin/sh
# bench/video_bench.sh [BUILD] [MODEL] - index throughput for videos against
# photos, the figures in docs/search.md ("Videos"):
#   1. a 720p H.264 video of N_SEC seconds (ffmpeg's testsrc2 pattern, 25
#      frames/s) indexed with --video-every 2: decoded frames/s, samples/s
#      and wall time, one run per round;
#   2. the same number of 720p JPEGs (frames of that video) indexed as
#      photos, interleaved with (1) in each round.
# MODEL defaults to the seeded ViT-B/32-shaped model (genmodel b32; speed does
# not depend on the weights). Prints the command, CPU, kernel path and the
# median of ROUNDS (default 3) per task.
set -eu
BUILD=${1:-build}
MODEL=${2:-}
SHARED=${CLIPDEX_SHARED:-../shared}
N_SEC=${N_SEC:-60}
EVERY=${EVERY:-2}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-0}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
if [ -z "$MODEL" ]; then
    MODEL=$OUT/b32
    "$BUILD/tools/genmodel" --config b32 --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null
fi
mkdir -p "$OUT/video" "$OUT/photos"
ffmpeg -nostdin -loglevel error -y -f lavfi -i "testsrc2=s=1280x720:r=25:d=$N_SEC" -c:v libx264 -preset veryfast \
    -pix_fmt yuv420p "$OUT/video/clip.mp4"
n=$(awk -v d="$N_SEC" -v e="$EVERY" 'BEGIN { print int((d + e - 1) / e) }')
ffmpeg -nostdin -loglevel error -y -i "$OUT/video/clip.mp4" -vf "fps=1/$EVERY" -q:v 3 "$OUT/photos/f%04d.jpg"
echo "cpu: $(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1), $(nproc) CPUs; path: $("$BUILD/clipdex" info --model "$MODEL" --json 2>/dev/null | sed -n 's/.*"isa":"\([^"]*\)".*/\1/p')"
echo "video: ${N_SEC} s 1280x720 H.264 at 25 frames/s, --video-every $EVERY (scene changes off) -> about $n samples; photos: $(ls "$OUT/photos" | wc -l) JPEGs of the same frames"
run() { # run NAME DIR EXTRA...: seconds of one fresh index
    name=$1; dir=$2; shift 2
    rm -f "$OUT/$name.db"*
    t0=$(date +%s.%N)
    "$BUILD/clipdex" index --model "$MODEL" --db "$OUT/$name.db" --threads "$THREADS" --quiet "$@" "$dir" >/dev/null
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc
}
: >"$OUT/video.t"; : >"$OUT/photos.t"
r=0
while [ $r -lt "$ROUNDS" ]; do
    run video "$OUT/video" --video-every "$EVERY" --scene 1 >>"$OUT/video.t"
    run photos "$OUT/photos" >>"$OUT/photos.t"
    r=$((r + 1))
done
samples=$(sqlite3 "$OUT/video.db" 'SELECT count(*) FROM frames')
photos=$(sqlite3 "$OUT/photos.db" 'SELECT count(*) FROM files')
med() { sort -n "$1" | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
tv=$(med "$OUT/video.t"); tp=$(med "$OUT/photos.t")
echo "command: clipdex index --model b32 --threads $THREADS [--video-every $EVERY --scene 1] DIR  (median of $ROUNDS, interleaved)"
awk -v tv="$tv" -v tp="$tp" -v s="$samples" -v p="$photos" -v d="$N_SEC" 'BEGIN {
    printf "video:  %d samples in %.2f s: %.2f samples/s, %.0f decoded frames/s (%.1f x real time)\n", s, tv, s / tv, d * 25 / tv, d / tv
    printf "photos: %d JPEGs in %.2f s: %.2f images/s\n", p, tp, p / tp
    printf "ratio video samples/s over photos/s: %.2f\n", (s / tv) / (p / tp) }'
