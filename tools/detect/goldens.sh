#!/bin/sh
# tools/detect/goldens.sh - re-makes tests/golden/detect with TensorFlow.js:
# the scenes (make_scene.mjs) and, for them and the sample photos with and
# without people, the reference heads and boxes (ref.mjs). Needs node, npm
# (npm ci here) and the model (sh tools/get_detector.sh).
#
#   sh tools/detect/goldens.sh [MODEL_DIR]   (default build/models/nanodet)
set -eu
cd "$(dirname "$0")/../.."
MODEL=${1:-build/models/nanodet}
SHARED=${CLIPDEX_SHARED:-../shared}
OUT=tests/golden/detect
[ -d tools/detect/node_modules ] || (cd tools/detect && npm ci --ignore-scripts --no-audit --no-fund >/dev/null)
mkdir -p $OUT
node tools/detect/make_scene.mjs "$SHARED/data/images/photos" $OUT/scene.png
node tools/detect/make_scene.mjs "$SHARED/data/images/photos" $OUT/crowd.png crowd
node tools/detect/ref.mjs "$MODEL" $OUT \
    "$SHARED"/data/images/photos/astronaut.png "$SHARED"/data/images/photos/camera.png \
    "$SHARED"/data/images/photos/coffee.png "$SHARED"/data/images/photos/motorcycle_left.png \
    $OUT/scene.png $OUT/crowd.png 2>&1 | grep -v -e '^$' -e '====' -e 'Hi, looks like' -e 'tfjs-node'
