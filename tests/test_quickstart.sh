#!/bin/sh
# tests/test_quickstart.sh - README's first command, ./quickstart.sh (its deps
# and build steps skipped: `make test` has built $BUILD), with a local hub
# mirror (tests/app/hub/hub_mirror.py serving a seeded tiny model as
# openai/clip-vit-base-patch32): it downloads, indexes and prints search
# results with no warning; with an unreachable hub: it says offline in one
# line, falls back to a random model under the WARNING banner, exits 0 and
# prints results, within seconds. Also tools/deps.sh: quick, and with a list
# naming absent packages it names exactly those and the sudo-less/sudo command.
NAME=test_quickstart
. tests/app/lib.sh
MIRROR_PID=
cleanup() { [ -n "$MIRROR_PID" ] && kill "$MIRROR_PID" 2>/dev/null; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-qs.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB HF_TOKEN XDG_CACHE_HOME
CLIPDEX_HOME=$TMP/home; CLIPDEX_QUICKSTART_RANDOM=tiny; export CLIPDEX_HOME CLIPDEX_QUICKSTART_RANDOM
# the quickstart writes under $BUILD/quickstart: give it a BUILD of its own
# that links to the built programs
QB=$TMP/build; mkdir -p "$QB/tools"
ln -s "$(pwd)/$CLIPDEX" "$QB/clipdex"; ln -s "$(pwd)/$GENMODEL" "$QB/tools/genmodel"
LIB=$TMP/lib; mkdir -p "$LIB"
# qs OUT: runs the quickstart on $LIB; stdout in OUT, stderr in OUT.err, exit in $rc
qs() { BUILD=$QB ./quickstart.sh --no-deps --no-build "$LIB" "a photo of a cat" >"$1" 2>"$1.err"; rc=$?; }

# --- tools/deps.sh ------------------------------------------------------------------
if command -v dpkg-query >/dev/null 2>&1; then
    printf '# comment\nbuild sh-not-a-package-x|sh-not-a-package-y\nbuild coreutils\ntest no-such-test-pkg-z\n' >"$TMP/list"
    start=$(date +%s)
    CLIPDEX_DEPS_FILE=$TMP/list sh tools/deps.sh --dry-run >"$TMP/d.out" 2>"$TMP/d.err"
    check "a missing build package: exit 1" test $? -eq 1
    check "it names exactly the missing ones" grep -qx "deps: missing: sh-not-a-package-x no-such-test-pkg-z" "$TMP/d.err"
    check "it prints the apt-get command" grep -q "apt-get install -y --no-install-recommends sh-not-a-package-x no-such-test-pkg-z" "$TMP/d.err"
    CLIPDEX_DEPS_FILE=$TMP/list sh tools/deps.sh --dry-run test >/dev/null 2>"$TMP/d.err"
    check "only a test package missing: exit 2" test $? -eq 2
    printf 'build coreutils\n' >"$TMP/list"
    CLIPDEX_DEPS_FILE=$TMP/list sh tools/deps.sh --dry-run >"$TMP/d.out" 2>&1
    check "all installed: exit 0" test $? -eq 0
    check "all installed: says so" grep -q "all 1 packages" "$TMP/d.out"
    check "deps.sh is quick" test $(($(date +%s) - start)) -lt 10
else
    skip "no dpkg-query: tools/deps.sh not tested"
fi

if ! command -v python3 >/dev/null 2>&1 || [ ! -x "$GENMODEL" ] || [ ! -d "$SHARED/data/vocab" ] ||
    [ ! -f "$SHARED/data/images/photos/chelsea.png" ]; then
    skip "python3, $GENMODEL or $SHARED/data is missing: the quickstart is not run"; done_
fi
cp "$SHARED/data/images/photos/chelsea.png" "$SHARED/data/images/photos/china.jpg" \
    "$SHARED/data/images/photos/horse.png" "$LIB/"

# --- with a hub mirror ------------------------------------------------------------------
R=$TMP/root; mkdir -p "$R/openai"
"$GENMODEL" --config tiny --layout hf --seed 9 --out "$R/openai/clip-vit-base-patch32" \
    --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail "genmodel failed"; done_; }
python3 tests/app/hub/hub_mirror.py "$R" "$TMP/port" "$TMP/log" 2>"$TMP/mirror.err" &
MIRROR_PID=$!
i=0; while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$TMP/port" ] || { cat "$TMP/mirror.err" >&2; fail "the mirror did not start"; done_; }
PORT=$(cat "$TMP/port")
CLIPDEX_HUB_URL=http://127.0.0.1:$PORT; export CLIPDEX_HUB_URL
qs "$TMP/on"
check "online: exit 0 (got $rc)" test "$rc" -eq 0
[ "$rc" -eq 0 ] || cat "$TMP/on.err" >&2
check "online: the model was downloaded" cmp -s "$CLIPDEX_HOME/models/openai--clip-vit-base-patch32/model.safetensors" \
    "$R/openai/clip-vit-base-patch32/model.safetensors"
check "online: three results" test "$(wc -l <"$TMP/on")" -eq 3
check "online: the results are the folder's images" test "$(grep -c "$LIB/" "$TMP/on")" -eq 3
check "online: no warning" sh -c "! grep -q WARNING '$TMP/on.err'"
# the scores are the downloaded model's: the same query through clipdex itself
"$CLIPDEX" search --model "$CLIPDEX_HOME/models/openai--clip-vit-base-patch32" --db "$QB/quickstart/vit-b-32.db" \
    -k 5 "a photo of a cat" >"$TMP/direct" 2>/dev/null
check "online: the results are clipdex search's" cmp -s "$TMP/on" "$TMP/direct"

# --- offline: the hub unreachable ---------------------------------------------------------
kill "$MIRROR_PID"; wait "$MIRROR_PID" 2>/dev/null; MIRROR_PID=
rm -rf "$CLIPDEX_HOME"
start=$(date +%s)
qs "$TMP/off"
check "offline: exit 0 (got $rc)" test "$rc" -eq 0
check "offline: within seconds" test $(($(date +%s) - start)) -lt 30
check "offline: one line says offline" test "$(grep -c '^quickstart: offline: ' "$TMP/off.err")" -eq 1
check "offline: the hub is named" grep -q "cannot reach the hub at http://127.0.0.1:$PORT" "$TMP/off.err"
check "offline: the WARNING banner" grep -q "WARNING: the search results are MEANINGLESS" "$TMP/off.err"
check "offline: three results" test "$(grep -c "$LIB/" "$TMP/off")" -eq 3
"$CLIPDEX" search --model "$QB/quickstart/random-tiny" --db "$QB/quickstart/random-tiny.db" \
    -k 5 "a photo of a cat" >"$TMP/direct" 2>/dev/null
check "offline: the results are the random model's" cmp -s "$TMP/off" "$TMP/direct"
check "offline: the random model is genmodel --seed 1's" sh -c "'$GENMODEL' --config tiny --layout hf --seed 1 \
    --out '$TMP/ref' --vocab '$SHARED/data/vocab' >/dev/null 2>&1 && cmp -s '$TMP/ref/model.safetensors' '$QB/quickstart/random-tiny/model.safetensors'"

# --- bad use ---------------------------------------------------------------------------------
BUILD=$QB ./quickstart.sh --no-deps --no-build "$TMP/no/such" >/dev/null 2>"$TMP/bad.err"
check "a missing folder: exit 1" test $? -eq 1
check "a missing folder is named" grep -q "no such folder" "$TMP/bad.err"
done_
