#!/bin/sh
# tests/app/hub/test_hub.sh - `clipdex model get|list|rm` and models by name, against
# tests/app/hub/hub_mirror.py (a loopback stand-in for the Hugging Face hub serving
# tiny models from $BUILD/tools/genmodel, with the hub's URLs, redirect and
# headers): get by alias and by full name (HF and OpenCLIP layouts); resume
# after a dropped connection (a Range request); a corrupt byte refused by
# sha256 with nothing left in the cache; 401 (gated) names HF_TOKEN, and
# HF_TOKEN goes out as a Bearer token; 404 and 500 errors; two concurrent
# gets download the file once; --type q8 is what the name then loads; model
# list and rm; index and search with --model NAME and the default model;
# the default-model and not-downloaded messages; --download; an offline
# endpoint fails at once. Needs python3 for the mirror (skipped without).
BUILD=${BUILD:-build}
CLIPDEX=$BUILD/clipdex
SHARED=${CLIPDEX_SHARED:-../shared}
GENMODEL=$BUILD/tools/genmodel
NAME=test_hub
passed=0; failed=0; skipped=0
MIRROR_PID=

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $NAME: $*" >&2; }
skip() { skipped=$((skipped + 1)); echo "SKIP $NAME: $*" >&2; }
check() { d=$1; shift; if "$@"; then ok; else fail "$d"; fi; }
done_() {
    [ -n "$MIRROR_PID" ] && kill "$MIRROR_PID" 2>/dev/null
    [ -n "$TMP" ] && rm -rf "$TMP"
    echo "$NAME: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit $?
}
# expect_rc RC DESCRIPTION ARGS...: output in $TMP/out and $TMP/err
expect_rc() {
    want=$1; d=$2; shift 2
    "$CLIPDEX" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}
# run_rc RC DESCRIPTION COMMAND...: like expect_rc for any command
run_rc() {
    want=$1; d=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}
says() { d=$1; shift; check "$d" grep -q -- "$@" "$TMP/err"; }
# log_count PATTERN: requests in the mirror's log matching PATTERN
log_count() { grep -c -- "$1" "$TMP/log"; }

if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-hub.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB CLIPDEX_HUB_URL HF_TOKEN XDG_CACHE_HOME
CLIPDEX_HOME=$TMP/home; export CLIPDEX_HOME

# --- without a hub ---------------------------------------------------------------
expect_rc 2 "index without a model or a downloaded default" index "$TMP"
says "the default-model message names the command" "clipdex model get ViT-B-32"
says "index offers --download" "with --download"
expect_rc 3 "search with a name that is not downloaded" search --model laion/CLIP-ViT-B-32-laion2B-s34B-b79K dog
says "the message names the command" "clipdex model get laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
expect_rc 3 "a missing path stays a path" info --model "$TMP/no/such/model"
says "a missing path is reported by the engine" "no such file"
expect_rc 1 "get a bad name" model get ../etc
says "a bad name is refused" "not a model name"
expect_rc 2 "get an unknown --type" model get ViT-B-32 --type q3
expect_rc 0 "model --help" model --help

if ! command -v python3 >/dev/null 2>&1 || [ ! -x "$GENMODEL" ] || [ ! -d "$SHARED/data/vocab" ]; then
    skip "python3, $GENMODEL or $SHARED/data/vocab is missing: no mirror tests"
    done_
fi

# --- the mirror: tiny models under hub names, some with faults --------------------
R=$TMP/root
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$TMP/hf" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 &&
    "$GENMODEL" --config tiny --layout openclip --seed 2 --out "$TMP/oc" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 ||
    { fail "genmodel failed"; done_; }
rm -f "$TMP/oc/bpe_simple_vocab_16e6.txt.gz"
mkdir -p "$R/openai" "$R/laion" "$R/test"
cp -r "$TMP/hf" "$R/openai/clip-vit-base-patch32"
cp -r "$TMP/oc" "$R/laion/CLIP-ViT-B-32-laion2B-s34B-b79K"
echo slow >"$R/laion/CLIP-ViT-B-32-laion2B-s34B-b79K/.fault"
for f in drop corrupt "gated s3cret" 404 500; do
    d=$R/test/$(echo "$f" | cut -d' ' -f1)
    cp -r "$TMP/hf" "$d" && echo "$f" >"$d/.fault"
done
python3 tests/app/hub/hub_mirror.py "$R" "$TMP/port" "$TMP/log" 2>"$TMP/mirror.err" &
MIRROR_PID=$!
i=0; while [ ! -s "$TMP/port" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
[ -s "$TMP/port" ] || { cat "$TMP/mirror.err" >&2; fail "the mirror did not start"; done_; }
HF_ENDPOINT=http://127.0.0.1:$(cat "$TMP/port"); export HF_ENDPOINT
M=$CLIPDEX_HOME/models

# --- get by alias, then by full name ---------------------------------------------
B32=$M/openai--clip-vit-base-patch32
W=$(sha256sum "$TMP/hf/model.safetensors" | cut -c1-64)
expect_rc 0 "get ViT-B-32" model get ViT-B-32
check "get prints the model's path" test "$(cat "$TMP/out")" = "$B32"
check "the weights arrived intact" cmp -s "$B32/model.safetensors" "$TMP/hf/model.safetensors"
check "the vocabulary arrived" cmp -s "$B32/vocab.json" "$TMP/hf/vocab.json"
check "no second vocabulary is fetched" test ! -e "$B32/bpe_simple_vocab_16e6.txt.gz"
check "the manifest records the sha256" grep -q "$W" "$B32/clipdex.json"
check "no .part is left" test -z "$(ls "$B32" | grep '\.part$')"
check "the weights came through the CDN redirect" test "$(log_count "GET /cdn/openai/.*/$W")" -eq 1
expect_rc 0 "get the full name again" model get openai/clip-vit-base-patch32
says "a second get is a no-op" "already downloaded"
check "a second get downloads nothing" test "$(log_count "GET /cdn/openai/.*/$W")" -eq 1

# --- index and search by name, and the default model -------------------------------
LIB=$TMP/lib; mkdir -p "$LIB"
cp "$SHARED/data/images/photos/chelsea.png" "$SHARED/data/images/photos/china.jpg" "$LIB/" 2>/dev/null
expect_rc 0 "index --model ViT-B-32" index --model ViT-B-32 --db "$TMP/a.db" --quiet "$LIB"
expect_rc 0 "search --model openai/clip-vit-base-patch32" search --model openai/clip-vit-base-patch32 --db "$TMP/a.db" -k 2 "a cat"
check "search finds the indexed images" test "$(wc -l <"$TMP/out")" -eq 2
expect_rc 0 "search with the default model" search --db "$TMP/a.db" -k 1 "a cat"
run_rc 0 "CLIPDEX_MODEL takes a name" env CLIPDEX_MODEL=ViT-B/32 "$CLIPDEX" embed --text dog
check "the embedding is printed" grep -q '"embedding"' "$TMP/out"

# --- resume after a dropped connection ---------------------------------------------
expect_rc 0 "get through a dropped connection" model get test/drop
says "the download resumed" "resuming 'model.safetensors'"
check "the resume was a Range request" test "$(log_count 'GET /cdn/test/drop/.* range=bytes=[1-9]')" -ge 1
check "the resumed weights are intact" cmp -s "$M/test--drop/model.safetensors" "$TMP/hf/model.safetensors"

# --- a corrupt byte ---------------------------------------------------------------
expect_rc 1 "get a corrupt file" model get test/corrupt
says "the refusal names sha256" "sha256"
check "nothing corrupt is left" test -z "$(ls "$M/test--corrupt" | grep -e safetensors -e clipdex.json)"
expect_rc 3 "a refused model does not load by name" info --model test/corrupt

# --- gated, 404, 500 --------------------------------------------------------------
expect_rc 1 "get a gated model without HF_TOKEN" model get test/gated
says "401 names HF_TOKEN" "HF_TOKEN"
says "401 says gated" "gated"
run_rc 1 "a wrong HF_TOKEN" env HF_TOKEN=wrong "$CLIPDEX" model get test/gated
says "a refused token is named" "HF_TOKEN was sent"
run_rc 0 "get a gated model with HF_TOKEN" env HF_TOKEN=s3cret "$CLIPDEX" model get test/gated
check "HF_TOKEN went out as a Bearer token" test "$(log_count 'auth=Bearer_s3cret')" -ge 1
expect_rc 1 "get a repository that does not exist" model get test/absent
says "404 is clear" "not found"
expect_rc 1 "get a file that answers 404" model get test/404
says "the 404 names the file" "config.json"
expect_rc 1 "get from a failing hub" model get test/500
says "500 is clear" "HTTP 500"

# --- two gets at once -------------------------------------------------------------
LA=laion/CLIP-ViT-B-32-laion2B-s34B-b79K
"$CLIPDEX" model get "$LA" >"$TMP/c1" 2>"$TMP/c1.err" & p1=$!
"$CLIPDEX" model get "$LA" >"$TMP/c2" 2>"$TMP/c2.err" & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
check "two concurrent gets both succeed ($r1, $r2)" test "$r1" -eq 0 -a "$r2" -eq 0
check "one get waited for the other or found it done" \
    grep -q -e "waiting for another clipdex" -e "already downloaded" "$TMP/c1.err" "$TMP/c2.err"
check "the weights were downloaded once" test "$(log_count 'GET /cdn/laion/')" -eq 1
check "the OpenCLIP weights are intact" cmp -s "$M/laion--CLIP-ViT-B-32-laion2B-s34B-b79K/open_clip_model.safetensors" \
    "$TMP/oc/open_clip_model.safetensors"

# --- --type q8 --------------------------------------------------------------------
expect_rc 0 "get --type q8" model get "$LA" --type q8
check "the q8 file is what the name resolves to" grep -q "model-q8.gguf" "$TMP/out"
expect_rc 0 "info by name" info --model "$LA"
check "the name loads the Q8 weights" grep -q "Q8_0" "$TMP/out"
expect_rc 0 "index with the q8 model" index --model "$LA" --db "$TMP/q.db" --quiet "$LIB"
expect_rc 0 "search with the q8 model" search --model "$LA" --db "$TMP/q.db" -k 1 "a cat"

# --- list and rm --------------------------------------------------------------------
expect_rc 0 "model list" model list
check "list shows the alias" grep -q "openai/clip-vit-base-patch32 .*ViT-B-32" "$TMP/out"
check "list shows the types" grep -q "laion/CLIP-ViT-B-32-laion2B-s34B-b79K .*f32 q8 .*q8" "$TMP/out"
check "list shows an unfinished download" grep -q "test/corrupt .*(unfinished)" "$TMP/out"
expect_rc 0 "model rm" model rm ViT-B-32
check "rm deletes the directory" test ! -e "$B32"
expect_rc 1 "rm a model that is not there" model rm ViT-B-32
expect_rc 2 "no default model after rm" search --db "$TMP/a.db" dog

# --- --download -------------------------------------------------------------------
expect_rc 0 "search --download fetches the model" search --model ViT-B-32 --download --db "$TMP/a.db" -k 1 "a cat"
check "--download fetched it" test -f "$B32/clipdex.json"

# --- offline ------------------------------------------------------------------------
PORT=$(cat "$TMP/port")
kill "$MIRROR_PID"; wait "$MIRROR_PID" 2>/dev/null; MIRROR_PID=
start=$(date +%s)
expect_rc 1 "get with the hub unreachable" model get ViT-B-16
check "offline fails at once" test $(($(date +%s) - start)) -lt 5
says "offline names the endpoint" "cannot reach the hub at http://127.0.0.1:$PORT"
done_
