#!/bin/sh
# quickstart.sh - README's first command: on a fresh Debian/Ubuntu machine it
# installs the packages (tools/deps.sh), builds (make), gets the default model
# (clipdex model get ViT-B-32), indexes a folder of images and answers a text
# query.
#
#   ./quickstart.sh [--no-deps] [--no-build] [FOLDER [QUERY]]
#
# FOLDER defaults to ../shared/data/images (when present), QUERY to
# "a photo of a person". Where the hub cannot be reached (no network, or a
# failed download) it says so in one line and falls back to an
# architecture-exact ViT-B/32 with seeded random weights from
# build/tools/genmodel, under a WARNING banner: the results are then
# meaningless (the maths and the speed are real). Nothing waits on the
# network for long: the hub's connect timeout is 10 s, a refused or
# unresolvable host fails at once.
#
# Environment: BUILD (default build), CLIPDEX_SHARED (default ../shared),
# CLIPDEX_HOME / CLIPDEX_HUB_URL / HF_ENDPOINT as for `clipdex model`,
# CLIPDEX_QUICKSTART_RANDOM=tiny|b32 (the fallback's genmodel config, default
# b32; the tests use tiny). Files it makes go to $BUILD/quickstart/.
cd "$(dirname "$0")" || exit 1
BUILD=${BUILD:-build}
SHARED=${CLIPDEX_SHARED:-../shared}
CLIPDEX=$BUILD/clipdex
RANDOM_CONFIG=${CLIPDEX_QUICKSTART_RANDOM:-b32}
OUT=$BUILD/quickstart
deps=1; build=1

say() { echo "quickstart: $*" >&2; }
die() { say "$*"; exit 1; }
banner() {
    say "################################################################################"
    say "WARNING: no pretrained model: using RANDOM weights ($RANDOM_CONFIG, genmodel --seed 1)."
    say "WARNING: the search results are MEANINGLESS (the maths and the speed are real)."
    say "WARNING: with a network, run ./quickstart.sh again to download ViT-B-32."
    say "################################################################################"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --no-deps) deps=0 ;;
        --no-build) build=0 ;;
        -h|--help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        --) shift; break ;;
        -*) die "unknown option '$1' (see --help)" ;;
        *) break ;;
    esac
    shift
done
FOLDER=${1:-}
QUERY=${2:-a photo of a person}
if [ -z "$FOLDER" ]; then
    [ -d "$SHARED/data/images" ] || die "no FOLDER given and no $SHARED/data/images: ./quickstart.sh FOLDER"
    FOLDER=$SHARED/data/images
fi
[ -d "$FOLDER" ] || [ -f "$FOLDER" ] || die "no such folder: '$FOLDER'"

if [ $deps -eq 1 ]; then
    say "1/5 packages (tools/deps.sh)"
    sh tools/deps.sh
    case $? in
        0) ;;
        2) say "some test-only packages are missing: the demo goes on, make test will skip those parts" ;;
        *) die "build packages are missing: install them (the command is above), then run ./quickstart.sh again" ;;
    esac
fi
if [ $build -eq 1 ]; then
    say "2/5 build (make)"
    make -j"$(nproc 2>/dev/null || echo 2)" >/dev/null || die "the build failed (run make to see why)"
fi
[ -x "$CLIPDEX" ] || die "$CLIPDEX is missing (build it first)"
mkdir -p "$OUT" || die "cannot create $OUT"

say "3/5 model (clipdex model get ViT-B-32)"
err=$OUT/model-get.err
{ "$CLIPDEX" model get ViT-B-32 2>&1 >/dev/null; echo $? >"$OUT/model-get.rc"; } | tee "$err" >&2
if [ "$(cat "$OUT/model-get.rc")" = 0 ]; then
    MODEL=ViT-B-32
    DB=$OUT/vit-b-32.db
else
    if grep -q "cannot reach the hub" "$err"; then
        say "offline: the hub cannot be reached, falling back to a random model"
    else
        say "the download failed (above), falling back to a random model"
    fi
    MODEL=$OUT/random-$RANDOM_CONFIG
    DB=$OUT/random-$RANDOM_CONFIG.db
    if [ ! -f "$MODEL/config.json" ]; then
        [ -d "$SHARED/data/vocab" ] || die "no vocabulary ($SHARED/data/vocab) for the random model"
        "$BUILD/tools/genmodel" --config "$RANDOM_CONFIG" --layout hf --seed 1 --out "$MODEL" \
            --vocab "$SHARED/data/vocab" >/dev/null || die "genmodel failed"
    fi
    banner
fi

say "4/5 index (clipdex index --model $MODEL --db $DB $FOLDER)"
"$CLIPDEX" index --model "$MODEL" --db "$DB" "$FOLDER" >&2 || die "index failed"
say "5/5 search (clipdex search --model $MODEL --db $DB \"$QUERY\")"
"$CLIPDEX" search --model "$MODEL" --db "$DB" -k 5 "$QUERY" || die "search failed"
[ "$MODEL" = ViT-B-32 ] || banner
say "done. Next: make test (the whole suite, offline)"
