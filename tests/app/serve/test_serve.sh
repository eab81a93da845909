#!/bin/sh
# tests/app/serve/test_serve.sh - `clipdex serve` over loopback: every route and every
# error path (bad JSON, wrong types, oversize body and image, too many texts,
# corrupt image, unknown ID, ../ and out-of-root paths, missing or wrong
# token, unknown route, wrong method, a request past --request-timeout while
# running or queued, a connection over --max-connections), embeddings equal
# to `clipdex embed`
# for every way of sending an image, compare's softmax, concurrent requests
# equal to single ones (batching does not change results), search ranking
# against `clipdex search`, indexing through the API, thumbnails and
# originals, video time filters (--time, "time_from"/"time_to") against the
# exact unfiltered ranking restricted in Python. Servers bind 127.0.0.1 on a free port and are always killed.
# Skipped (counted) when the binary was built without libmicrohttpd, or
# genmodel/curl/../shared are missing.
NAME=test_serve
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/server.sh"

if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
if ! command -v curl >/dev/null 2>&1; then skip "curl is not installed"; done_; fi
if [ ! -x "$GENMODEL" ] || [ ! -d "$SHARED/data/vocab" ]; then skip "genmodel or $SHARED/data/vocab missing"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-serve.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_TOKEN CLIPDEX_DB CLIPDEX_TEST_BATCH_DELAY_MS
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME # no downloaded default model
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 ||
    { fail "genmodel"; done_; }

# --- a JSON reader (jansson is a build dependency) --------------------------
cat >"$TMP/jget.c" <<'CEOF'
/* jget FILE PATH: prints the value at PATH (keys and indexes joined by '.';
 * "#PATH" prints an array's length, "norm:PATH" an array's L2 norm). Exit 1
 * if the file is not JSON or the path is missing. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    json_error_t e;
    json_t *v = json_load_file(argv[1], 0, &e);
    if (!v) { fprintf(stderr, "invalid JSON: %s\n", e.text); return 1; }
    if (argc < 3) return 0;
    const char *p = argv[2];
    int len = 0, norm = 0;
    if (p[0] == '#') { len = 1; p++; }
    if (strncmp(p, "norm:", 5) == 0) { norm = 1; p += 5; }
    char *path = strdup(p), *save = NULL;
    for (char *t = strtok_r(path, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10)) : json_object_get(v, t);
    if (!v) return 1;
    if (len) { printf("%zu\n", json_array_size(v)); return 0; }
    if (norm) {
        double s = 0; for (size_t i = 0; i < json_array_size(v); i++) { double x = json_number_value(json_array_get(v, i)); s += x * x; }
        printf("%.6f\n", sqrt(s)); return 0;
    }
    if (json_is_string(v)) printf("%s\n", json_string_value(v));
    else { char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); printf("%s\n", s); }
    return 0;
}
CEOF
JFLAGS=$(pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson)
# shellcheck disable=SC2086
cc -o "$TMP/jget" "$TMP/jget.c" $JFLAGS -lm 2>"$TMP/cc.err" || { cat "$TMP/cc.err" >&2; fail "cannot build jget"; done_; }
J=$TMP/jget

# req STATUS DESCRIPTION CURL-ARGS...: body in $TMP/body; checks the status
# and, for JSON answers, that the body parses.
req() {
    rwant=$1; d=$2; shift 2
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@")
    if [ "$code" != "$rwant" ]; then fail "$d: HTTP $code, expected $rwant: $(head -c 300 "$TMP/body")"; return 1; fi
    if [ "$rwant" -ge 400 ] && ! "$J" "$TMP/body" error >/dev/null; then fail "$d: error body is not {\"error\":...}"; return 1; fi
    ok
}

# --- availability -------------------------------------------------------------
first_server
check "listens on 127.0.0.1 by default" grep -q 'random test weights' "$TMP/serve.log"

IMGDIR=$SHARED/data/images/photos
IMG=$(ls "$IMGDIR"/*.png 2>/dev/null | head -n 1)
[ -n "$IMG" ] || { skip "no images in $IMGDIR"; done_; }
IMG2=$(ls "$IMGDIR"/*.png | sed -n 2p)
stop_server

ROOT=$TMP/root
mkdir -p "$ROOT/sub"
cp "$IMGDIR"/*.png "$ROOT/sub/" 2>/dev/null
printf 'not an image' >"$ROOT/sub/broken.png"
start_server --root "$ROOT" --max-body 4000000 --max-pixels 100000000 || { fail "restart"; done_; }

# --- health, info, page -------------------------------------------------------
req 200 "health" "$U/v1/health" && check "health says ok" test "$("$J" "$TMP/body" status)" = ok
req 200 "info" "$U/v1/info"
check "info: embed_dim" test "$("$J" "$TMP/body" embed_dim)" = 32
check "info: random weights detected" test "$("$J" "$TMP/body" random_weights)" = true
check "info: uptime" test -n "$("$J" "$TMP/body" uptime_s)"
req 200 "the page" "$U/"
check "the page is HTML" grep -qi '<html' "$TMP/body"
req 404 "unknown page" "$U/nope.html"
req 404 "unknown route" "$U/v1/nope"
req 405 "GET on a POST route" "$U/v1/embed/text"
req 405 "POST on health" -d '{}' "$U/v1/health"

# --- text embeddings ----------------------------------------------------------
req 200 "embed text" -d '{"texts":["a photo of a dog","a cat"]}' "$U/v1/embed/text"
check "two text embeddings" test "$("$J" "$TMP/body" '#embeddings')" = 2
check "unit norm" near "$("$J" "$TMP/body" norm:embeddings.0)" 1 0.0001
"$CLIPDEX" embed --model "$M" --text "a photo of a dog" >"$TMP/cli.json" 2>/dev/null
check "text embedding equals clipdex embed" near "$("$J" "$TMP/body" embeddings.0.5)" "$("$J" "$TMP/cli.json" embedding.5)" 0.000001
req 200 "embed one text" -d '{"text":"a cat"}' "$U/v1/embed/text"
req 400 "bad JSON" -d '{"texts":["a"' "$U/v1/embed/text"
req 400 "JSON not an object" -d '["a"]' "$U/v1/embed/text"
req 400 "empty body" -X POST "$U/v1/embed/text"
req 400 "texts not a list" -d '{"texts":"a"}' "$U/v1/embed/text"
req 400 "a text not a string" -d '{"texts":["a",1]}' "$U/v1/embed/text"
req 400 "missing texts" -d '{"txt":["a"]}' "$U/v1/embed/text"
req 400 "empty texts" -d '{"texts":[]}' "$U/v1/embed/text"
req 400 "duplicate keys" -d '{"texts":["a"],"texts":["b"]}' "$U/v1/embed/text"
awk 'BEGIN { printf "{\"texts\":["; for (i = 0; i < 257; i++) printf "%s\"t%d\"", i ? "," : "", i; printf "]}" }' >"$TMP/many.json"
req 413 "too many texts" --data-binary @"$TMP/many.json" "$U/v1/embed/text"
awk 'BEGIN { printf "{\"texts\":[\""; for (i = 0; i < 9000; i++) printf "a"; printf "\"]}" }' >"$TMP/long.json"
req 413 "text too long" --data-binary @"$TMP/long.json" "$U/v1/embed/text"
head -c 4100000 /dev/zero | tr '\0' ' ' >"$TMP/big.txt"
req 413 "oversize body" --data-binary @"$TMP/big.txt" "$U/v1/embed/text"
req 413 "oversize chunked body" -H 'Transfer-Encoding: chunked' --data-binary @"$TMP/big.txt" "$U/v1/embed/text"

# --- image embeddings, four ways -----------------------------------------------
"$CLIPDEX" embed --model "$M" --image "$IMG" >"$TMP/cli.json" 2>/dev/null
want=$("$J" "$TMP/cli.json" embedding.3)
req 200 "embed raw image" -H 'Content-Type: image/png' --data-binary @"$IMG" "$U/v1/embed/image" &&
    check "raw image equals clipdex embed" near "$("$J" "$TMP/body" embeddings.0.3)" "$want" 0.000001
req 200 "embed multipart image" -F "file=@$IMG" -F "file2=@$IMG2" "$U/v1/embed/image" &&
    check "multipart: two images, first equal" near "$("$J" "$TMP/body" embeddings.0.3)" "$want" 0.000001
check "multipart: two embeddings" test "$("$J" "$TMP/body" '#embeddings')" = 2
b64=$(base64 -w0 "$IMG")
printf '{"image":{"type":"base64","value":"%s"}}' "$b64" >"$TMP/b64.json"
req 200 "embed base64 image" -H 'Content-Type: application/json' --data-binary @"$TMP/b64.json" "$U/v1/embed/image" &&
    check "base64 equals clipdex embed" near "$("$J" "$TMP/body" embeddings.0.3)" "$want" 0.000001
name=$(basename "$IMG")
req 200 "embed image by path" -H 'Content-Type: application/json' -d "{\"image\":{\"type\":\"path\",\"value\":\"$ROOT/sub/$name\"}}" "$U/v1/embed/image" &&
    check "path equals clipdex embed" near "$("$J" "$TMP/body" embeddings.0.3)" "$want" 0.000001
req 400 "corrupt image" -H 'Content-Type: image/png' --data-binary @"$ROOT/sub/broken.png" "$U/v1/embed/image"
head -c 2000 "$IMG" >"$TMP/trunc.png"
req 400 "truncated image" -H 'Content-Type: image/png' --data-binary @"$TMP/trunc.png" "$U/v1/embed/image"
req 400 "empty image body" -H 'Content-Type: image/png' -X POST "$U/v1/embed/image"
req 400 "invalid base64" -H 'Content-Type: application/json' -d '{"image":{"type":"base64","value":"@@@"}}' "$U/v1/embed/image"
req 400 "image type unknown" -H 'Content-Type: application/json' -d '{"image":{"type":"url","value":"http://x"}}' "$U/v1/embed/image"
req 400 "image not an object" -H 'Content-Type: application/json' -d '{"image":5}' "$U/v1/embed/image"
req 403 "../ path" -H 'Content-Type: application/json' -d "{\"image\":{\"type\":\"path\",\"value\":\"$ROOT/sub/../../model/config.json\"}}" "$U/v1/embed/image"
req 403 "path outside the roots" -H 'Content-Type: application/json' -d '{"image":{"type":"path","value":"/etc/passwd"}}' "$U/v1/embed/image"
req 404 "missing path" -H 'Content-Type: application/json' -d "{\"image\":{\"type\":\"path\",\"value\":\"$ROOT/none.png\"}}" "$U/v1/embed/image"
req 400 "multipart without boundary" -H 'Content-Type: multipart/form-data' --data-binary 'xx' "$U/v1/embed/image"
req 400 "unterminated multipart" -H 'Content-Type: multipart/form-data; boundary=XX' --data-binary "$(printf -- '--XX\r\nContent-Disposition: form-data; name="f"\r\n\r\nabc')" "$U/v1/embed/image"

# --- compare --------------------------------------------------------------------
req 200 "compare text" -d '{"subject":"a dog","subject_type":"text","prompt":["a dog","a cat","a car"],"prompt_type":"text"}' "$U/v1/compare"
check "compare: three results" test "$("$J" "$TMP/body" '#similarity')" = 3
check "compare: identical text has cosine 1" near "$("$J" "$TMP/body" results.0.cosine)" 1 0.00001
p=$(for i in 0 1 2; do "$J" "$TMP/body" results.$i.probability; done | awk '{ s += $1 } END { print s }')
check "compare: probabilities sum to 1" near "$p" 1 0.00001
"$CLIPDEX" compare --model "$M" --image "$IMG" "a dog" "a cat" >"$TMP/cli.json" 2>/dev/null
printf '{"subject":{"type":"base64","value":"%s"},"subject_type":"image","prompt":["a dog","a cat"]}' "$b64" >"$TMP/cmp.json"
req 200 "compare image" --data-binary @"$TMP/cmp.json" "$U/v1/compare" &&
    check "compare image equals clipdex compare" near "$("$J" "$TMP/body" results.1.probability)" "$("$J" "$TMP/cli.json" results.1.probability)" 0.00001
req 200 "compare one prompt string" -d '{"subject":"a","prompt":"b"}' "$U/v1/compare"
printf '{"subject":"a dog","prompt":[{"type":"base64","value":"%s"}],"prompt_type":"image"}' "$b64" >"$TMP/cmp2.json"
req 200 "compare image prompts" --data-binary @"$TMP/cmp2.json" "$U/v1/compare"
req 400 "compare: missing subject" -d '{"prompt":"b"}' "$U/v1/compare"
req 400 "compare: bad subject_type" -d '{"subject":"a","subject_type":"video","prompt":"b"}' "$U/v1/compare"
req 400 "compare: prompt not a string" -d '{"subject":"a","prompt":[1]}' "$U/v1/compare"
req 400 "compare: image subject given as text" -d '{"subject":"a","subject_type":"image","prompt":"b"}' "$U/v1/compare"

# --- concurrency: batched results equal single ones -------------------------------
req 200 "single" -d '{"texts":["concurrent text"]}' "$U/v1/embed/text"
single=$("$J" "$TMP/body" embeddings.0.7)
pids=""; i=0; while [ $i -lt 48 ]; do
    curl -s -o "$TMP/c$i.json" -d '{"texts":["concurrent text"]}' "$U/v1/embed/text" &
    pids="$pids $!"; i=$((i + 1))
done
for pid in $pids; do wait "$pid"; done
bad=0; i=0; while [ $i -lt 48 ]; do near "$("$J" "$TMP/c$i.json" embeddings.0.7)" "$single" 0.000001 || { bad=$((bad + 1)); head -c 300 "$TMP/c$i.json" >&2; }; i=$((i + 1)); done
check "48 concurrent requests equal the single one ($bad differ)" test "$bad" -eq 0
req 200 "info after the burst" "$U/v1/info"
echo "batching: $("$J" "$TMP/body" batching)" >&2

# --- limits: pixels ------------------------------------------------------------------
stop_server
start_server --max-pixels 1000 || { fail "restart"; done_; }
req 413 "image over --max-pixels" -H 'Content-Type: image/png' --data-binary @"$IMG" "$U/v1/embed/image"
req 403 "path without --root" -H 'Content-Type: application/json' -d "{\"image\":{\"type\":\"path\",\"value\":\"$IMG\"}}" "$U/v1/embed/image"
req 503 "search without --db" -d '{"text":"a"}' "$U/v1/search"
req 404 "thumbnail without --db" "$U/v1/thumb/1"

# --- limits: request time (--request-timeout) -------------------------------------------
# CLIPDEX_TEST_BATCH_DELAY_MS makes every encoder call take that much longer
# (docs/http.md), so requests miss a 1 s deadline: the first while the
# encoder runs its job (answered at the deadline, the result discarded when
# the batch ends), the next ones while queued behind it (dropped).
stop_server
export CLIPDEX_TEST_BATCH_DELAY_MS=2500
start_server --request-timeout 1 || { fail "restart with a delay"; done_; }
req 200 "info with --request-timeout" "$U/v1/info"
check "info: limits.request_timeout_s" test "$("$J" "$TMP/body" limits.request_timeout_s)" = 1
t=$(curl -s -o "$TMP/body" -w '%{http_code} %{time_total}' -d '{"texts":["slow"]}' "$U/v1/embed/text")
check "past --request-timeout: 503 (got ${t% *})" test "${t% *}" = 503
check "the 503 is a JSON error naming --request-timeout" grep -q 'request-timeout' "$TMP/body"
check "503 status in the body" test "$("$J" "$TMP/body" status)" = 503
check "answered at the deadline (${t#* } s), not when the batch ended" awk "BEGIN { exit !(${t#* } < 2.3) }"
pids=""
for i in 0 1 2; do
    curl -s -o "$TMP/to$i.json" -w '%{http_code}' -d "{\"texts\":[\"queued $i\"]}" "$U/v1/embed/text" >"$TMP/to$i.code" &
    pids="$pids $!"
done
curl -s -o "$TMP/to3.json" -w '%{http_code}' -H 'Content-Type: image/png' --data-binary @"$IMG" "$U/v1/embed/image" >"$TMP/to3.code" &
pids="$pids $!"
curl -s -o "$TMP/to4.json" -w '%{http_code}' -d "{\"subject\":\"a\",\"prompt\":[\"b\",\"c\"]}" "$U/v1/compare" >"$TMP/to4.code" &
pids="$pids $!"
for pid in $pids; do wait "$pid"; done
bad=0; for i in 0 1 2 3 4; do
    [ "$(cat "$TMP/to$i.code")" = 503 ] && [ "$("$J" "$TMP/to$i.json" status)" = 503 ] || { bad=$((bad + 1)); head -c 300 "$TMP/to$i.json" >&2; }
done
check "5 queued requests past the deadline: 503 ($bad not)" test "$bad" -eq 0
sleep 3 # the batcher finishes (and frees) the abandoned jobs
req 200 "healthy after abandoned jobs" "$U/v1/health"
req 200 "info after timeouts" "$U/v1/info"
check "info: batching.timeouts counts them ($("$J" "$TMP/body" batching.timeouts))" test "$("$J" "$TMP/body" batching.timeouts)" -ge 6
check "the server survived abandoned jobs" kill -0 "$SRV_PID"
stop_server
export CLIPDEX_TEST_BATCH_DELAY_MS=300
start_server --request-timeout 20 || { fail "restart with a short delay"; done_; }
req 200 "slow but within --request-timeout" -d '{"texts":["a photo of a dog"]}' "$U/v1/embed/text"
"$CLIPDEX" embed --model "$M" --text "a photo of a dog" >"$TMP/cli.json" 2>/dev/null
check "a delayed embedding equals clipdex embed" near "$("$J" "$TMP/body" embeddings.0.5)" "$("$J" "$TMP/cli.json" embedding.5)" 0.000001
req 200 "image within --request-timeout" -H 'Content-Type: image/png' --data-binary @"$IMG" "$U/v1/embed/image"
stop_server
export CLIPDEX_TEST_BATCH_DELAY_MS=1500
start_server --request-timeout 0 || { fail "restart without a deadline"; done_; }
req 200 "--request-timeout 0: no deadline" -d '{"texts":["a"]}' "$U/v1/embed/text"
stop_server
unset CLIPDEX_TEST_BATCH_DELAY_MS

# --- limits: connections (--max-connections) ---------------------------------------------
# a streamed (chunked) upload fed by `sleep` holds the only connection for 2 s
start_server --max-connections 1 || { fail "restart with --max-connections 1"; done_; }
(sleep 2; printf '{"text":"held"}') | curl -s -o "$TMP/held.json" -w '%{http_code}' -X POST -T - \
    "$U/v1/embed/text" >"$TMP/held.code" &
held=$!
sleep 0.7
code=$(curl -s -o /dev/null -w '%{http_code}' "$U/v1/health")
check "a connection over --max-connections is closed unanswered (got $code)" test "$code" = 000
wait "$held"
check "the held connection is served (got $(cat "$TMP/held.code"))" test "$(cat "$TMP/held.code")" = 200
req 200 "a connection once the other ended" "$U/v1/health"
stop_server
"$CLIPDEX" serve --model "$M" --listen 127.0.0.1:0 --request-timeout -1 >/dev/null 2>&1
check "negative --request-timeout is a usage error" test $? -eq 2
start_server || { fail "restart with defaults"; done_; }
req 200 "info with default limits" "$U/v1/info"
check "default --request-timeout is 60" test "$("$J" "$TMP/body" limits.request_timeout_s)" = 60

# --- token ----------------------------------------------------------------------------
stop_server
CLIPDEX_TOKEN=s3cret start_server || { fail "restart with a token"; done_; }
req 200 "health needs no token" "$U/v1/health"
req 401 "missing token" -d '{"text":"a"}' "$U/v1/embed/text"
req 401 "wrong token" -H 'Authorization: Bearer nope' -d '{"text":"a"}' "$U/v1/embed/text"
req 401 "info needs the token" "$U/v1/info"
req 200 "right token" -H 'Authorization: Bearer s3cret' -d '{"text":"a"}' "$U/v1/embed/text"
stop_server
start_server --token tok2 || { fail "restart with --token"; done_; }
req 200 "--token" -H 'Authorization: Bearer tok2' "$U/v1/info"
req 401 "--token, none sent" "$U/v1/info"
stop_server

# --- usage errors -----------------------------------------------------------------------
"$CLIPDEX" serve --model "$M" --listen nonsense >/dev/null 2>&1
check "bad --listen is a usage error" test $? -eq 2
"$CLIPDEX" serve --listen 127.0.0.1:0 >/dev/null 2>&1
check "no model is a usage error" test $? -eq 2
"$CLIPDEX" serve --model "$TMP/none" --listen 127.0.0.1:0 >/dev/null 2>&1
check "missing model exits 3" test $? -eq 3

# --- the index: POST/GET /v1/index, search, thumbnails, originals ------------------
DB=$TMP/index.db
start_server --db "$DB" --root "$ROOT" || { fail "start with --db"; done_; }
req 200 "search an empty index" -d '{"text":"a horse"}' "$U/v1/search"
check "empty index: no results" test "$("$J" "$TMP/body" '#results')" = 0
check "empty index: 0 vectors" test "$("$J" "$TMP/body" vectors)" = 0
req 403 "index outside the roots" -d '{"path":"/etc"}' "$U/v1/index"
req 403 "index ../ out of a root" -d "{\"path\":\"$ROOT/../\"}" "$U/v1/index"
req 400 "index: path not a string" -d '{"path":1}' "$U/v1/index"
req 202 "start indexing" -d "{\"path\":\"$ROOT/sub\"}" "$U/v1/index"
i=0; while [ $i -lt 100 ]; do
    curl -s -o "$TMP/ix.json" "$U/v1/index"
    [ "$("$J" "$TMP/ix.json" running)" = false ] && break
    sleep 0.1; i=$((i + 1))
done
check "indexing finished (exit code 1: one broken file)" test "$("$J" "$TMP/ix.json" exit_code)" = 1
n_img=$(ls "$IMGDIR"/*.png | wc -l | tr -d ' ')
check "indexed $n_img vectors" test "$("$J" "$TMP/ix.json" vectors)" = "$n_img"
req 200 "search text" -d '{"text":"a horse","k":5}' "$U/v1/search"
check "search: 5 results" test "$("$J" "$TMP/body" '#results')" = 5
"$CLIPDEX" search --model "$M" --db "$DB" -k 5 --json "a horse" >"$TMP/cli.jsonl" 2>/dev/null
r=1; same=1; while [ $r -le 5 ]; do
    a=$(sed -n "${r}p" "$TMP/cli.jsonl" >"$TMP/line.json"; "$J" "$TMP/line.json" path)
    b=$("$J" "$TMP/body" results.$((r - 1)).path)
    [ "$a" = "$b" ] || same=0; r=$((r + 1))
done
check "search ranks as clipdex search does" test "$same" -eq 1
id=$("$J" "$TMP/body" results.0.id)
thumb=$("$J" "$TMP/body" results.0.thumbnail)
check "thumbnail URL" test "$thumb" = "/v1/thumb/$id"
req 200 "more like this" -d "{\"id\":$id,\"k\":3}" "$U/v1/search"
check "more like this: itself first" test "$("$J" "$TMP/body" results.0.id)" = "$id"
check "more like this: similarity 1" near "$("$J" "$TMP/body" results.0.similarity)" 1 0.0001
req 200 "weighted terms" -d '{"terms":[{"text":"a horse","weight":2},{"text":"fruit","weight":-1}],"k":3,"threshold":-1}' "$U/v1/search"
req 200 "threshold 1 keeps nothing but exact" -d '{"text":"a horse","threshold":0.9999}' "$U/v1/search"
check "threshold: no result" test "$("$J" "$TMP/body" '#results')" = 0
printf '{"image":{"type":"base64","value":"%s"},"k":1}' "$b64" >"$TMP/s.json"
req 200 "search by image" --data-binary @"$TMP/s.json" "$U/v1/search"
check "search by image: the same image first" near "$("$J" "$TMP/body" results.0.similarity)" 1 0.0001
req 400 "search: nothing to search" -d '{"k":3}' "$U/v1/search"
req 400 "search: k out of range" -d '{"text":"a","k":0}' "$U/v1/search"
req 400 "search: k not a number" -d '{"text":"a","k":"3"}' "$U/v1/search"
req 400 "search: threshold out of range" -d '{"text":"a","threshold":2}' "$U/v1/search"
req 400 "search: terms cancel" -d '{"terms":[{"text":"a"},{"text":"a","weight":-1}]}' "$U/v1/search"
req 404 "search: unknown id" -d '{"id":999999}' "$U/v1/search"
req 200 "thumbnail" "$U$thumb"
check "thumbnail is a JPEG" test "$(head -c 2 "$TMP/body" | od -An -tx1 | tr -d ' ')" = ffd8
req 200 "thumbnail again (cached)" "$U$thumb"
req 200 "original" "$U/v1/image/$id"
p0=$(sed -n 1p "$TMP/cli.jsonl" >"$TMP/line.json"; "$J" "$TMP/line.json" path)
check "original is the indexed file" cmp -s "$TMP/body" "$p0"
req 404 "thumbnail of an unknown ID" "$U/v1/thumb/999999"
req 404 "image of an unknown ID" "$U/v1/image/999999"
req 404 "image ID 0" "$U/v1/image/0"
req 404 "image ID with ../" "$U/v1/image/..%2F..%2Fetc%2Fpasswd"
req 404 "image ID not a number" "$U/v1/image/1abc"
req 200 "info with the index" "$U/v1/info"
check "info: vectors" test "$("$J" "$TMP/body" vectors)" = "$n_img"

# --- the page in headless Chromium (tests/app/serve/web/page.test.mjs) ----------------
# Needs node, Debian's chromium and `npm ci --prefix tests/app/serve/web` (playwright-core);
# screenshots are kept in tests/out/.
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1 || [ ! -x "$CHROMIUM" ] || [ ! -d tests/app/serve/web/node_modules/playwright-core ]; then
    skip "browser test: needs node, $CHROMIUM and tests/app/serve/web/node_modules (npm ci --prefix tests/app/serve/web)"
else
    mkdir -p tests/out
    if (cd tests/app/serve/web && CHROMIUM=$CHROMIUM timeout 180 node page.test.mjs "$U" "$ROOT/sub/$name" ../../../out) >"$TMP/page.log" 2>&1; then
        ok
    else
        cat "$TMP/page.log" >&2; fail "the page in headless Chromium"
    fi
    grep -E '^page: ' "$TMP/page.log" >&2
fi
stop_server

# --- videos: hits with time ranges, /v1/frame, /v1/video with Range requests ------
# A slideshow (IMG for 0-2 s, IMG2 for 2-4 s, VP9/WebM) and one photo; searching
# by IMG's own slide must give the video's 0-2 s range first.
if ! command -v ffmpeg >/dev/null 2>&1; then
    skip "videos: the ffmpeg program is absent"
else
    VROOT=$TMP/vroot
    mkdir -p "$VROOT"
    ffmpeg -nostdin -loglevel error -y -i "$IMG" -vf scale=160:120,setsar=1 "$TMP/slide0.png" &&
    ffmpeg -nostdin -loglevel error -y -i "$IMG2" -vf scale=160:120,setsar=1 "$TMP/slide1.png" &&
    ffmpeg -nostdin -loglevel error -y -framerate 10 -loop 1 -t 2 -i "$TMP/slide0.png" \
        -framerate 10 -loop 1 -t 2 -i "$TMP/slide1.png" -filter_complex '[0][1]concat=n=2:v=1,fps=10' \
        -c:v libvpx-vp9 -b:v 500k -pix_fmt yuv420p "$VROOT/show.webm" &&
    cp "$(ls "$IMGDIR"/*.png | sed -n 3p)" "$VROOT/photo.png" || fail "videos: cannot make the test files"
    "$CLIPDEX" index --model "$M" --db "$TMP/v.db" --video-every 0.5 --quiet "$VROOT" 2>"$TMP/vindex.err"
    check "videos: indexed" test $? -eq 0
    start_server --db "$TMP/v.db" --root "$VROOT" || fail "videos: start"
    printf '{"image":{"type":"base64","value":"%s"},"k":5}' "$(base64 -w0 "$TMP/slide0.png")" >"$TMP/vs.json"
    req 200 "videos: search by the first slide" --data-binary @"$TMP/vs.json" "$U/v1/search"
    cp "$TMP/body" "$TMP/vsearch.json"
    vurl=$("$J" "$TMP/vsearch.json" results.0.video)
    vid=$("$J" "$TMP/vsearch.json" results.0.id)
    check "videos: the video is the first hit" test "$vurl" = "/v1/video/$vid"
    check "videos: its range starts at 0" near "$("$J" "$TMP/vsearch.json" results.0.start)" 0 0.001
    check "videos: its range ends within the slide (+ one sample)" \
        awk -v e="$("$J" "$TMP/vsearch.json" results.0.end)" 'BEGIN { exit !(e >= 0.5 && e <= 2.5) }'
    check "videos: the best time is in the slide" \
        awk -v t="$("$J" "$TMP/vsearch.json" results.0.best_time)" 'BEGIN { exit !(t >= 0 && t < 2) }'
    check "videos: samples merged" awk -v n="$("$J" "$TMP/vsearch.json" results.0.samples)" 'BEGIN { exit !(n >= 2) }'
    check "videos: the photo has no time range" sh -c "! '$J' '$TMP/vsearch.json' results.1.start && '$J' '$TMP/vsearch.json' results.1.image >/dev/null"
    fthumb=$("$J" "$TMP/vsearch.json" results.0.thumbnail)
    check "videos: the thumbnail is a sample's" sh -c "echo '$fthumb' | grep -q '^/v1/frame/[0-9]*$'"
    req 200 "videos: the sample's thumbnail" "$U$fthumb"
    check "videos: the thumbnail is a JPEG" test "$(head -c 2 "$TMP/body" | od -An -tx1 | tr -d ' ')" = ffd8
    size=$(wc -c <"$VROOT/show.webm" | tr -d ' ')
    req 200 "videos: the whole video" "$U$vurl"
    check "videos: the whole video is the file" cmp -s "$TMP/body" "$VROOT/show.webm"
    req 206 "videos: a byte range" -H 'Range: bytes=10-109' -D "$TMP/hdr" "$U$vurl"
    dd if="$VROOT/show.webm" bs=1 skip=10 count=100 of="$TMP/want" 2>/dev/null
    check "videos: the range's bytes" cmp -s "$TMP/body" "$TMP/want"
    check "videos: Content-Range" grep -qi "^Content-Range: bytes 10-109/$size" "$TMP/hdr"
    check "videos: Accept-Ranges" grep -qi '^Accept-Ranges: bytes' "$TMP/hdr"
    check "videos: the video's type" grep -qi '^Content-Type: video/webm' "$TMP/hdr"
    req 206 "videos: a suffix range" -H 'Range: bytes=-50' "$U$vurl"
    tail -c 50 "$VROOT/show.webm" >"$TMP/want"
    check "videos: the last 50 bytes" cmp -s "$TMP/body" "$TMP/want"
    req 206 "videos: an open range" -H "Range: bytes=$((size - 7))-" "$U$vurl"
    check "videos: the open range's 7 bytes" test "$(wc -c <"$TMP/body" | tr -d ' ')" = 7
    req 416 "videos: a range past the end" -H "Range: bytes=$size-" -D "$TMP/hdr" "$U$vurl"
    check "videos: 416 says the size" grep -qi "^Content-Range: bytes \*/$size" "$TMP/hdr"
    req 200 "videos: several ranges: the whole file" -H 'Range: bytes=0-1,5-9' "$U$vurl"
    pid=$("$J" "$TMP/vsearch.json" results.1.id)
    req 404 "videos: a photo is not a video" "$U/v1/video/$pid"
    req 404 "videos: unknown video" "$U/v1/video/999999"
    req 404 "videos: bad video ID" "$U/v1/video/1abc"
    req 404 "videos: unknown sample" "$U/v1/frame/999999"
    req 405 "videos: POST on a video" -d '{}' "$U$vurl"
    if command -v node >/dev/null 2>&1 && [ -x "$CHROMIUM" ] && [ -d tests/app/serve/web/node_modules/playwright-core ]; then
        if (cd tests/app/serve/web && CHROMIUM=$CHROMIUM timeout 120 node video.test.mjs "$U" "$TMP/slide0.png" ../../../out) >"$TMP/vpage.log" 2>&1; then
            ok
        else
            cat "$TMP/vpage.log" >&2; fail "videos: the page plays a video hit in headless Chromium"
        fi
        grep -E '^page: ' "$TMP/vpage.log" >&2
    else
        skip "videos: browser check (needs node, $CHROMIUM, tests/app/serve/web/node_modules)"
    fi
    # --time and "time_from"/"time_to": the expectation is the exact unfiltered
    # ranking (--merge 0: the samples of each slide apart) restricted with Python
    PY=/usr/bin/python3
    VR=$(cd "$VROOT" && pwd -P)
    vsearch() { "$CLIPDEX" search --model "$M" --db "$TMP/v.db" --exact --json "$@" "$TMP/slide0.png"; }
    # hits FILE [FROM TO]: "path similarity start end" lines (photos: "- -"), those in FROM..TO
    hits() {
        "$PY" -c 'import json, sys
lo = float(sys.argv[2]) if len(sys.argv) > 2 else float("-inf")
hi = float(sys.argv[3]) if len(sys.argv) > 3 else float("inf")
d = open(sys.argv[1]).read().strip()
rs = json.loads(d)["results"] if d.startswith("{\"results\"") else [json.loads(l) for l in d.splitlines()]
for r in rs:
    if "start" not in r: print(r["path"], r["similarity"], "- -")
    elif lo <= r["start"] and r["end"] <= hi: print(r["path"], r["similarity"], r["start"], r["end"])' "$@"
    }
    if [ ! -x "$PY" ]; then skip "videos: time filters need $PY"; else
        vsearch --merge 0 -k 100 >"$TMP/vall.jsonl" 2>"$TMP/err"
        check "videos: the unfiltered search has the photo and both slides" \
            test "$(hits "$TMP/vall.jsonl" | wc -l)" -ge 3
        hits "$TMP/vall.jsonl" 2 1e9 >"$TMP/vwant"
        vsearch --merge 0 -k 100 --time 2- >"$TMP/vt.jsonl" 2>"$TMP/err"
        hits "$TMP/vt.jsonl" >"$TMP/vgot"
        check "videos: --time 2- is the exact ranking restricted to samples at >= 2 s, and the photo" \
            cmp -s "$TMP/vgot" "$TMP/vwant"
        check "videos: --time 2- keeps samples of the second slide" grep -q 'show.webm' "$TMP/vgot"
        vsearch --merge 0 -k 100 --time -0:01.9 >"$TMP/vt.jsonl" 2>"$TMP/err"
        check "videos: --time -0:01.9 keeps only samples at <= 1.9 s" \
            test "$(hits "$TMP/vt.jsonl" | wc -l)" = "$(hits "$TMP/vt.jsonl" -1 1.9 | wc -l)"
        check "videos: ... and some" grep -q 'show.webm' "$TMP/vt.jsonl"
        vsearch -k 100 --time 1:00- >"$TMP/vt.jsonl" 2>"$TMP/err"
        check "videos: --time 1:00- (past the 4 s video) leaves the photo alone" \
            test "$(hits "$TMP/vt.jsonl")" = "$VR/photo.png $(sed -n 's/.*"similarity":\([^,]*\),.*/\1/p' "$TMP/vt.jsonl") - -"
        vsearch -k 5 --time 2- >"$TMP/vt.jsonl" 2>"$TMP/err"
        printf '{"image":{"type":"base64","value":"%s"},"k":5,"time_from":"0:02"}' "$(base64 -w0 "$TMP/slide0.png")" >"$TMP/vs.json"
        req 200 "videos: search with \"time_from\"" --data-binary @"$TMP/vs.json" "$U/v1/search"
        # (the server embeds the query image on its own: scores agree to ~1e-6, not in every digit)
        hits "$TMP/body" | cut -d' ' -f1,3,4 >"$TMP/vgot"
        hits "$TMP/vt.jsonl" | cut -d' ' -f1,3,4 >"$TMP/vwant"
        check "videos: \"time_from\":\"0:02\" gives search --time 2-'s hits and ranges" cmp -s "$TMP/vgot" "$TMP/vwant"
        printf '{"image":{"type":"base64","value":"%s"},"k":5,"time_to":1.9,"under":"%s/"}' \
            "$(base64 -w0 "$TMP/slide0.png")" "$VR" >"$TMP/vs.json"
        req 200 "videos: search with \"time_to\" and \"under\"" --data-binary @"$TMP/vs.json" "$U/v1/search"
        check "videos: \"time_to\":1.9 keeps only samples at <= 1.9 s" \
            test "$(hits "$TMP/body" | wc -l)" = "$(hits "$TMP/body" -1 1.9 | wc -l)"
        printf '{"image":{"type":"base64","value":"%s"},"k":5,"under":"%s/photo.png"}' \
            "$(base64 -w0 "$TMP/slide0.png")" "$VR" >"$TMP/vs.json"
        req 200 "videos: search with \"under\" one file" --data-binary @"$TMP/vs.json" "$U/v1/search"
        check "videos: \"under\" the photo gives only the photo" test "$("$J" "$TMP/body" '#results')" = 1
        req 400 "search: persons with a filter" -d '{"text":"a","persons":true,"under":"/x"}' "$U/v1/search"
        req 400 "search: time_from after time_to" -d '{"text":"a","time_from":"1:00","time_to":30}' "$U/v1/search"
    fi
    stop_server
fi

# --- the packed page is up to date ----------------------------------------------------
if [ -f tools/pack_assets.sh ] && [ -d web ]; then
    sh tools/pack_assets.sh web "$TMP/assets.c" && check "app/serve/web_assets.c matches web/ (run tools/pack_assets.sh)" cmp -s "$TMP/assets.c" app/serve/web_assets.c
fi
done_
