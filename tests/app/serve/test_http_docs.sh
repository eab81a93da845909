#!/bin/sh
# tests/app/serve/test_http_docs.sh - proves that the curl examples of docs/http.md
# work: every command of the page's ```sh blocks that starts with `curl` (or
# pipes into `curl`), backslash continuations joined, runs against a real
# `clipdex serve` (tiny seeded model, an index of a few photos) on 127.0.0.1
# and a free port, and must answer the status its trailing `# NNN` comment
# documents (2xx when there is none) with a valid JSON body whenever the
# Content-Type is JSON ({"error":...,"status":NNN} for errors).
#
# How the examples meet the test set-up (the page states the same
# assumptions at the top of "Routes"):
#   $U                 the server's address (set in the environment)
#   $TOKEN             the token of the server started with --token
#   cat.jpg dog.png q.jpg   copies of shared photos in the working folder
#   /photos            replaced by the --root folder, which holds cat.jpg
#                      and 2024/ (a few photos, indexed before the start)
#   IDs 5 and 12       replaced by two IDs of that index ("id":N and
#                      /v1/thumb/N, /v1/image/N only)
# Examples that name $TOKEN or document a 401 run once against a server
# started with --token; every other example runs twice: as written against
# a server without a token, and with -H "Authorization: Bearer $TOKEN"
# added against the one with a token (the page says to add it). Examples
# are also required to live in ```sh blocks: a `curl ... $U/...` line
# elsewhere fails, and so does an option of `clipdex serve --help` missing
# from the page's option table. Skipped (counted) without curl, ../shared, genmodel or
# libmicrohttpd support; the servers are always killed. CLIPDEX_HTTP_DOC=FILE
# checks another page (e.g. an old version, to see the test catch it).
NAME=test_http_docs
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/server.sh"
DOC=${CLIPDEX_HTTP_DOC:-docs/http.md}

if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
if [ ! -f "$DOC" ]; then fail "$DOC is missing (run from the repository root)"; done_; fi
if ! command -v curl >/dev/null 2>&1; then skip "curl is not installed"; done_; fi
PHOTOS=$SHARED/data/images/photos
if [ ! -x "$GENMODEL" ] || [ ! -d "$SHARED/data/vocab" ] || [ ! -d "$PHOTOS" ]; then
    skip "genmodel, $SHARED/data/vocab or $PHOTOS missing"; done_
fi
for f in rocket.jpg horse.png flower.jpg coins.png moon.png; do
    [ -f "$PHOTOS/$f" ] || { skip "$PHOTOS/$f missing"; done_; }
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-docs.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_TOKEN CLIPDEX_DB CLIPDEX_TEST_BATCH_DELAY_MS
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME # no downloaded default model

# --- the examples, extracted mechanically ------------------------------------------
# One line per command: "LINE<TAB>COMMAND" (LINE: where it starts in the page).
awk '
    /^[ \t]*```/ {
        fence = $0; sub(/^[ \t]*```/, "", fence); sub(/[ \t]+$/, "", fence)
        if (insh) { insh = 0 } else if (fence == "sh") { insh = 1 }
        next
    }
    !insh { next }
    {
        line = $0; sub(/^[ \t]+/, "", line)
        if (cont) { buf = buf " " line }
        else if (line ~ /^curl / || line ~ /\|[ \t]*$/) { buf = line; start = NR }
        else next
        if (buf ~ /\\$/ || buf ~ /\|[ \t]*$/) { sub(/[ \t]*\\$/, "", buf); cont = 1; next }
        cont = 0
        if (buf ~ /(^|\|[ \t]*)curl /) printf "%d\t%s\n", start, buf
        buf = ""
    }
' "$DOC" >"$TMP/examples"
n_ex=$(wc -l <"$TMP/examples" | tr -d ' ')
check_count() { if [ "$n_ex" -ge 20 ]; then ok; else fail "only $n_ex curl examples found in $DOC"; fi; }
check_count
# curl examples outside ```sh blocks would never be run
awk '
    /^[ \t]*```/ { fence = $0; sub(/^[ \t]*```/, "", fence); sub(/[ \t]+$/, "", fence)
                   if (insh) insh = 0; else if (fence == "sh") insh = 1; next }
    !insh && /curl / && /\$U\// { printf "%d: %s\n", NR, $0 }
' "$DOC" >"$TMP/outside"
if [ -s "$TMP/outside" ]; then fail "curl examples outside \`\`\`sh blocks: $(cat "$TMP/outside")"; else ok; fi

# every option of `clipdex serve --help` (limits included) is in the page's table
"$CLIPDEX" serve --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | grep -v '^--help$' | sort -u >"$TMP/options"
missing=""
while read -r opt; do grep -q -- "| \`$opt" "$DOC" || missing="$missing $opt"; done <"$TMP/options"
if [ ! -s "$TMP/options" ]; then fail "clipdex serve --help lists no options"
elif [ -n "$missing" ]; then fail "options missing from the table of $DOC:$missing"
else ok; fi

# --- a JSON reader (jansson is a build dependency) --------------------------------------
cat >"$TMP/jget.c" <<'CEOF'
/* jget FILE [KEY.KEY...]: exit 1 unless FILE is one JSON value; with a
 * path, prints the value there (strings bare) or exits 1 if missing. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
int main(int argc, char **argv)
{
    json_error_t e;
    json_t *v = json_load_file(argv[1], JSON_DECODE_ANY, &e);
    if (!v) { fprintf(stderr, "invalid JSON: %s (line %d)\n", e.text, e.line); return 1; }
    if (argc < 3) return 0;
    char *path = strdup(argv[2]), *save = NULL;
    for (char *t = strtok_r(path, ".", &save); t && v; t = strtok_r(NULL, ".", &save))
        v = json_is_array(v) ? json_array_get(v, strtoul(t, NULL, 10)) : json_object_get(v, t);
    if (!v) return 1;
    if (json_is_string(v)) printf("%s\n", json_string_value(v));
    else { char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT); printf("%s\n", s); }
    return 0;
}
CEOF
JFLAGS=$(pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson)
# shellcheck disable=SC2086
cc -o "$TMP/jget" "$TMP/jget.c" $JFLAGS 2>"$TMP/cc.err" || { cat "$TMP/cc.err" >&2; fail "cannot build jget"; done_; }
J=$TMP/jget

# --- the set-up the page assumes -----------------------------------------------------
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 ||
    { fail "genmodel"; done_; }
ROOT=$TMP/photos
WORK=$TMP/work
DB=$TMP/index.db
mkdir -p "$ROOT/2024" "$WORK"
cp "$PHOTOS/rocket.jpg" "$ROOT/cat.jpg"
cp "$PHOTOS/horse.png" "$PHOTOS/coins.png" "$PHOTOS/moon.png" "$PHOTOS/rocket.jpg" "$ROOT/2024/"
cp "$PHOTOS/rocket.jpg" "$WORK/cat.jpg"
cp "$PHOTOS/horse.png" "$WORK/dog.png"
cp "$PHOTOS/flower.jpg" "$WORK/q.jpg"
"$CLIPDEX" index --model "$M" --db "$DB" "$ROOT/2024" >/dev/null 2>"$TMP/index.log" ||
    { cat "$TMP/index.log" >&2; fail "clipdex index"; done_; }
TOKEN=docs-t0ken

first_server --db "$DB" --root "$ROOT"

# two IDs of the index stand for the page's 5 and 12
curl -s -o "$TMP/ids.json" -d '{"text":"a photo","k":2}' "$U/v1/search"
ID5=$("$J" "$TMP/ids.json" results.0.id)
ID12=$("$J" "$TMP/ids.json" results.1.id)
if [ -z "$ID5" ] || [ -z "$ID12" ]; then fail "no IDs in the index: $(head -c 300 "$TMP/ids.json")"; done_; fi

# run_example LINE COMMAND MODE: MODE "plain" runs it as written, "auth" adds
# the bearer header to its curl. Checks curl's exit, the status and the body.
run_example() {
    ln=$1; cmd=$2; mode=$3
    want=$(printf '%s\n' "$cmd" | sed -n 's/.*[[:space:]]#[[:space:]]*\([1-5][0-9][0-9]\)\([^0-9].*\)\{0,1\}$/\1/p')
    hdr='-D "$HDRS"'
    [ "$mode" = auth ] && hdr='-D "$HDRS" -H "Authorization: Bearer $TOKEN"'
    run=$(printf '%s\n' "$cmd" | sed -E \
        -e "s|/photos|$ROOT|g" \
        -e "s|\"id\":12([^0-9])|\"id\":$ID12\\1|g" \
        -e "s#/v1/(thumb|image)/5([^0-9]|\$)#/v1/\\1/$ID5\\2#g" \
        -e "s#(^|\\|[[:space:]]*)curl #\\1curl $hdr #")
    ofile=$(printf '%s\n' "$cmd" | sed -n 's/.*[[:space:]]-o[[:space:]]\{1,\}\([^[:space:]]*\).*/\1/p')
    rm -f "$TMP/hdrs" "$TMP/out"
    [ -n "$ofile" ] && rm -f "$WORK/$ofile"
    (cd "$WORK" && U=$U TOKEN=$TOKEN HDRS=$TMP/hdrs sh -c "$run") <"$TMP/empty" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    what="$DOC:$ln ($mode): $cmd"
    if [ "$rc" -ne 0 ]; then fail "$what: exit $rc: $(head -c 300 "$TMP/err")"; return; fi
    code=$(tr -d '\r' <"$TMP/hdrs" 2>/dev/null | awk '/^HTTP\// { c = $2 } END { print c }')
    ctype=$(tr -d '\r' <"$TMP/hdrs" 2>/dev/null | awk 'tolower($1) == "content-type:" { t = $2 } END { print t }')
    ctype=${ctype%%;*}
    case "$want" in
        "") case "$code" in 2??) ;; *) fail "$what: HTTP $code, expected 2xx: $(head -c 300 "$TMP/out")"; return ;; esac ;;
        *) [ "$code" = "$want" ] || { fail "$what: HTTP $code, expected $want: $(head -c 300 "$TMP/out")"; return; } ;;
    esac
    if [ "$ctype" = application/json ]; then
        "$J" "$TMP/out" 2>"$TMP/jerr" || { fail "$what: invalid JSON: $(cat "$TMP/jerr"): $(head -c 300 "$TMP/out")"; return; }
        case "$code" in
            2??) if "$J" "$TMP/out" error >/dev/null; then fail "$what: a 2xx answer with an error"; return; fi ;;
            *) [ "$("$J" "$TMP/out" status)" = "$code" ] && "$J" "$TMP/out" error >/dev/null ||
                   { fail "$what: the error body is not {\"error\":...,\"status\":$code}"; return; } ;;
        esac
    elif [ -z "$want" ]; then
        # not JSON (an image): bytes must have come back, on stdout or in -o FILE
        if [ -n "$ofile" ]; then
            [ -s "$WORK/$ofile" ] || { fail "$what: $ofile is empty"; return; }
        else
            [ -s "$TMP/out" ] || { fail "$what: empty $ctype answer"; return; }
        fi
    fi
    ok
}
: >"$TMP/empty"

# wait_index: until GET /v1/index says the run is over (so servers can stop cleanly)
wait_index() {
    i=0; while [ $i -lt 100 ]; do
        curl -s -o "$TMP/ix.json" "$@" "$U/v1/index"
        [ "$("$J" "$TMP/ix.json" running 2>/dev/null)" = true ] || break
        sleep 0.1; i=$((i + 1))
    done
}

is_token_example() {
    case "$1" in *'$TOKEN'*) return 0 ;; esac
    printf '%s\n' "$1" | grep -Eq '[[:space:]]#[[:space:]]*401([^0-9]|$)'
}

# --- pass 1: no token --------------------------------------------------------------------
tab=$(printf '\t')
while IFS=$tab read -r ln cmd; do
    is_token_example "$cmd" && continue
    run_example "$ln" "$cmd" plain
done <"$TMP/examples"
wait_index
stop_server

# --- pass 2: a server with --token -----------------------------------------------------------
start_server --db "$DB" --root "$ROOT" --token "$TOKEN" || { cat "$TMP/serve.log" >&2; fail "the server with --token did not start"; done_; }
while IFS=$tab read -r ln cmd; do
    if is_token_example "$cmd"; then
        run_example "$ln" "$cmd" plain
    else
        run_example "$ln" "$cmd" auth
    fi
done <"$TMP/examples"
wait_index -H "Authorization: Bearer $TOKEN"
stop_server
done_
