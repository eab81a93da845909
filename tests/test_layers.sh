#!/bin/sh
# tests/test_layers.sh - the application's layering holds (docs/layout.md):
# tools/layers.sh over the built objects finds no upward include or call, no
# loop between files, and no printing or exiting outside app/cli.
BUILD=${BUILD:-build}
if out=$(sh tools/layers.sh "$BUILD" 2>&1); then
    echo "test_layers: 1 passed, 0 failed, 0 skipped"
else
    echo "$out"
    echo "test_layers: 0 passed, 1 failed, 0 skipped"
    exit 1
fi
