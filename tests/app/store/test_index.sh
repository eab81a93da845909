#!/bin/sh
# tests/app/store/test_index.sh - end-to-end tests of `clipdex index` and `clipdex
# search` with a tiny seeded model from $BUILD/tools/genmodel on ../shared/data:
# index twice (second run embeds nothing); modify, delete, rename and
# duplicate files between runs; a folder of broken files (truncated JPEG,
# zero bytes, text named .jpg, a 30000x30000 PNG header, a symlink loop, a
# non-UTF-8 name); SIGKILL in the middle of a run, then a consistent
# database and a run that finishes; searches by text, by image (an indexed
# image is its own top hit), combined terms, --threshold, --json, --copy-to,
# --link-to; the 4-bit and int8 search stages give exactly the --exact
# results (CLIPDEX_SEARCH_DEBUG names the stage); --under gives the exact
# ranking restricted to the folder (not to a string prefix), --time leaves
# photos alone and refuses malformed ranges; a model mismatch is refused. No Python, no jq: JSON fields are
# read with sed from the one-line summaries clipdex prints.
NAME=test_index
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-index.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME # no downloaded default model

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
# field NAME: the number NAME in the JSON summary in $TMP/out
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "${2:-$TMP/out}" | head -n 1; }
# summary DESC A U N R F: checks added, updated, unchanged, removed, failed
summary() {
    d=$1
    got="$(field added) $(field updated) $(field unchanged) $(field removed) $(field failed)"
    check "$d: added updated unchanged removed failed = $2 $3 $4 $5 $6 (got $got)" \
        test "$got" = "$2 $3 $4 $5 $6"
}

# --- usage (no model needed) ---
for c in index search; do
    expect_rc 0 "$c --help" "$c" --help
    check "$c --help prints usage" grep -q "^Usage: clipdex $c" "$TMP/out"
    expect_rc 2 "$c --no-such-option" "$c" --no-such-option
done
expect_rc 2 "index without a model" index "$TMP"
expect_rc 2 "index without paths" index --model "$TMP"
expect_rc 2 "search without a query" search --model "$TMP"
expect_rc 2 "search with a bad -k" search --model "$TMP" -k 0 dog
expect_rc 2 "search with --copy-to and --link-to" search --model "$TMP" --copy-to a --link-to b dog

if [ ! -d "$SHARED/data/images" ] || [ ! -x "$GENMODEL" ]; then
    skip "$SHARED or $GENMODEL is missing: no index tests"
    done_
fi
MODEL=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null 2>"$TMP/err" \
    && ok || { cat "$TMP/err" >&2; fail "genmodel failed"; done_; }
DB=$TMP/index.db
LIB=$TMP/lib
mkdir -p "$LIB/sub"
cp "$SHARED"/data/images/photos/*.jpg "$LIB/"
cp "$SHARED"/data/images/photos/chelsea.png "$SHARED"/data/images/photos/coffee.png "$LIB/sub/"
cp "$SHARED"/data/images/CLIP.png "$LIB/sub/name with spaces é.png"
echo "not indexed" >"$LIB/notes.txt"
NIMG=$(find "$LIB" -type f \( -name '*.jpg' -o -name '*.png' \) | wc -l)

# --- first and second run ---
expect_rc 0 "index" index --model "$MODEL" --db "$DB" --json "$LIB"
summary "first run" "$NIMG" 0 0 0 0
check "first run skips the text file" test "$(field skipped)" = 1
check "first run embeds every image" test "$(field embedded)" = "$NIMG"
check "the vector matrix exists" test -s "$DB-vectors"
expect_rc 0 "index again" index --model "$MODEL" --db "$DB" --json "$LIB"
summary "second run" 0 0 "$NIMG" 0 0
check "second run embeds nothing" test "$(field embedded)" = 0
run_rc 0 "CLIPDEX_DB and a text summary" env CLIPDEX_DB="$DB" "$CLIPDEX" index --model "$MODEL" "$LIB"
check "text summary" grep -q "0 added, 0 updated, $NIMG unchanged" "$TMP/out"

# --- search ---
expect_rc 0 "search by image" search --model "$MODEL" --db "$DB" --json -k 3 "$LIB/rocket.jpg"
check "three results" test "$(wc -l <"$TMP/out")" = 3
check "an indexed image is its own top hit" grep -q "^{\"rank\":1,\"similarity\":[0-9.e-]*,\"path\":\"$LIB/rocket.jpg\"}" "$TMP/out"
check "its similarity is 1" near "$(field similarity)" 1 1e-4
expect_rc 0 "search with --image" search --model "$MODEL" --db "$DB" -k 1 --image "$LIB/sub/chelsea.png"
check "text output: rank, similarity, path" grep -q "^1	1.0000	$LIB/sub/chelsea.png\$" "$TMP/out"
expect_rc 0 "search by text" search --model "$MODEL" --db "$DB" -k 5 "a photo of a rocket"
check "text search returns 5 results" test "$(wc -l <"$TMP/out")" = 5
expect_rc 0 "combined query" search --model "$MODEL" --db "$DB" -k 100 "2:golden retriever" "$LIB/china.jpg" -fruit - "0.5:a cat"
check "combined query returns every image" test "$(wc -l <"$TMP/out")" = "$NIMG"
expect_rc 0 "threshold" search --model "$MODEL" --db "$DB" -k 100 --threshold 0.999 "$LIB/flower.jpg"
check "threshold keeps only the image itself" test "$(wc -l <"$TMP/out")" = 1
expect_rc 0 "--copy-to" search --model "$MODEL" --db "$DB" -k 2 --copy-to "$TMP/copies" "$LIB/retina.jpg"
check "--copy-to puts the top hit first" cmp -s "$TMP/copies/001_retina.jpg" "$LIB/retina.jpg"
check "--copy-to copies k files" test "$(ls "$TMP/copies" | wc -l)" = 2
expect_rc 0 "--link-to" search --model "$MODEL" --db "$DB" -k 1 --link-to "$TMP/links" "$LIB/retina.jpg"
check "--link-to makes a symbolic link" test -L "$TMP/links/001_retina.jpg"
# the 4-bit and int8 first stages with tiny candidate lists (so their bounds
# often fail and the cascade runs) or with every row must still give the
# float32 results
: >"$TMP/stages"
for qry in "a photo of a rocket" "$LIB/china.jpg" "-fruit"; do
    for k in 1 3 8; do
        expect_rc 0 "exact search" search --model "$MODEL" --db "$DB" --exact -k $k -- "$qry"
        cp "$TMP/out" "$TMP/exact"
        for c in 2 5 1000; do
            run_rc 0 "staged search with $c candidates" env CLIPDEX_SEARCH_CANDIDATES=$c CLIPDEX_SEARCH_DEBUG=1 \
                "$CLIPDEX" search --model "$MODEL" --db "$DB" -k $k -- "$qry"
            check "4-bit/int8 + re-rank equals the float32 scan ($qry, k $k, $c candidates)" cmp -s "$TMP/out" "$TMP/exact"
            sed -n "s/.*answered by the \([^ ]*\) stage.*/$c \1/p" "$TMP/err" >>"$TMP/stages"
        done
    done
done
check "every staged search says which stage answered" test "$(wc -l <"$TMP/stages")" = 27
check "with every row a candidate the 4-bit stage answers" test "$(grep -c '^1000 4-bit$' "$TMP/stages")" = 9
# --- filters: --under and --time (docs/search.md) ---
# the expectation: the exact unfiltered ranking of every image, restricted with awk
expect_rc 0 "exact search of everything" search --model "$MODEL" --db "$DB" --exact -k 100 "a photo of a cat"
cut -f2,3 "$TMP/out" >"$TMP/all"
awk -F'\t' -v p="$LIB/sub/" 'index($2, p) == 1' "$TMP/all" >"$TMP/want_sub"
check "three images under sub/" test "$(wc -l <"$TMP/want_sub")" = 3
for u in "$LIB/sub" "$LIB/sub/" "$LIB/sub//"; do
    expect_rc 0 "--under '$u'" search --model "$MODEL" --db "$DB" --exact -k 100 --under "$u" "a photo of a cat"
    cut -f2,3 "$TMP/out" >"$TMP/got"
    check "--under '$u' is the exact ranking restricted to sub/" cmp -s "$TMP/got" "$TMP/want_sub"
done
ABS=$(cd "$(dirname "$CLIPDEX")" && pwd)/clipdex
run_rc 0 "--under a relative folder" sh -c "cd '$LIB' && '$ABS' search --model '$MODEL' --db '$DB' -k 100 --under sub 'a photo of a cat'"
cut -f2,3 "$TMP/out" >"$TMP/got"
check "--under sub from the library is sub/, staged scan or not" cmp -s "$TMP/got" "$TMP/want_sub"
expect_rc 0 "--under -k 2" search --model "$MODEL" --db "$DB" -k 2 --under "$LIB/sub" "a photo of a cat"
cut -f2,3 "$TMP/out" >"$TMP/got"
head -n 2 "$TMP/want_sub" >"$TMP/want2"
check "--under -k 2: the two best under sub/" cmp -s "$TMP/got" "$TMP/want2"
expect_rc 0 "--under a name's prefix" search --model "$MODEL" --db "$DB" -k 100 --under "$LIB/su" "a photo of a cat"
check "--under '$LIB/su' takes nothing from sub/ (a folder, not a string prefix)" test ! -s "$TMP/out"
expect_rc 0 "--under one file" search --model "$MODEL" --db "$DB" -k 100 --under "$LIB/rocket.jpg" "a photo of a cat"
check "--under a file gives that file" test "$(cut -f3 "$TMP/out")" = "$LIB/rocket.jpg"
expect_rc 0 "--time on photos" search --model "$MODEL" --db "$DB" --exact -k 100 --time 1:00-1:02:03.5 "a photo of a cat"
cut -f2,3 "$TMP/out" >"$TMP/got"
check "--time leaves photos alone" cmp -s "$TMP/got" "$TMP/all"
for t in abc 5 - 1:60- 1:2:3:4- 10-5 1e3- -inf x-2 1.5.5- "1: 2-" --3; do
    expect_rc 2 "--time '$t' is refused" search --model "$MODEL" --db "$DB" --time "$t" dog
    check "--time '$t': the message names the flag" grep -q "invalid value '$t' for --time" "$TMP/err"
done
for t in 90- -120 1:30-2:00 0:00:05-1:02:03 1.5-2.25; do
    expect_rc 0 "--time '$t' is taken" search --model "$MODEL" --db "$DB" -k 1 --time "$t" dog
done
expect_rc 2 "--under with --persons" search --model "$MODEL" --db "$DB" --persons --under "$LIB" dog
expect_rc 1 "search with a missing image term" search --model "$MODEL" --db "$DB" --image "$TMP/nope.jpg"
expect_rc 1 "search a database that does not exist" search --model "$MODEL" --db "$TMP/none.db" dog
check "no database file is created by search" test ! -e "$TMP/none.db"

# --- another model is refused ---
"$GENMODEL" --config tiny --layout hf --seed 2 --out "$TMP/model2" --vocab "$SHARED/data/vocab" >/dev/null 2>&1
expect_rc 1 "index with another model" index --model "$TMP/model2" --db "$DB" "$LIB"
check "the refusal names the model" grep -q "indexed with model 'model'" "$TMP/err"
expect_rc 1 "search with another model" search --model "$TMP/model2" --db "$DB" dog

# --- modify, delete, rename, duplicate ---
cp "$SHARED/data/images/photos/coffee.png" "$LIB/flower.jpg.tmp" && mv "$LIB/flower.jpg.tmp" "$LIB/rocket.jpg"  # modified content
rm "$LIB/china.jpg"                                       # deleted
mv "$LIB/retina.jpg" "$LIB/sub/retina-moved.jpg"           # renamed + moved
cp "$LIB/flower.jpg" "$LIB/sub/flower-copy.jpg"            # duplicate
expect_rc 0 "index after changes" index --model "$MODEL" --db "$DB" --json "$LIB"
# rocket updated; retina-moved and flower-copy added; retina and china removed
summary "after changes" 2 1 "$((NIMG - 3))" 2 0
check "only nothing new is embedded (all contents known)" test "$(field embedded)" = 0
check "renamed and duplicate reuse vectors" test "$(field reused)" = 3
expect_rc 0 "search the moved file" search --model "$MODEL" --db "$DB" --json -k 2 "$LIB/sub/retina-moved.jpg"
check "the moved file is found at its new path" grep -q "\"path\":\"$LIB/sub/retina-moved.jpg\"" "$TMP/out"
check "the old path is gone" sh -c "! grep -q '\"$LIB/retina.jpg\"' '$TMP/out'"
printf 'x' >>"$LIB/flower.jpg"  # trailing garbage: still a JPEG, new content
expect_rc 0 "index a modified file" index --model "$MODEL" --db "$DB" --json "$LIB"
summary "modified file" 0 1 "$((NIMG - 1))" 0 0
check "a modified file is embedded again" test "$(field embedded)" = 1

# --- broken files ---
BAD=$TMP/bad
mkdir -p "$BAD/deep"
head -c 3000 "$SHARED/data/images/photos/rocket.jpg" >"$BAD/truncated.jpg"
: >"$BAD/zero.jpg"
echo "this is not an image" >"$BAD/text.jpg"
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\165\060\000\000\165\060\010\002\000\000\000\000\000\000\000' >"$BAD/huge.png"
ln -s "$BAD/loop.jpg" "$BAD/loop.jpg"
ln -s .. "$BAD/deep/up"
cp "$SHARED/data/images/photos/rocket.jpg" "$BAD/$(printf 'bad\377\376name\nline.jpg')"
cp "$SHARED/data/images/photos/coffee.png" "$BAD/deep/good.png"
expect_rc 1 "index broken files" index --model "$MODEL" --db "$DB" --json "$BAD"
check "the run finishes and counts 5 failures" test "$(field failed)" = 5
check "the good files are added (non-UTF-8 name included)" test "$(field added)" = 2
check "the summary is printed" test "$(field seconds)" != ""
for f in truncated.jpg zero.jpg text.jpg huge.png loop.jpg; do
    check "$f is reported" grep -q "$f" "$TMP/err"
done
expect_rc 0 "search a non-UTF-8 path" search --model "$MODEL" --db "$DB" --json -k 100 --threshold 0.9999 "$LIB/sub/flower-copy.jpg"
expect_rc 0 "search, text output with odd bytes" search --model "$MODEL" --db "$DB" -k 100 "a rocket"
check "the non-UTF-8 name comes out as raw bytes" grep -q "$(printf 'bad\377\376name')" "$TMP/out"
expect_rc 0 "the library is still intact" index --model "$MODEL" --db "$DB" --json "$LIB"
summary "library after the broken folder" 0 0 "$NIMG" 0 0

# --- SIGKILL in the middle of a run ---
if [ -d "$SHARED/data/imagenet-samples" ]; then
    ABS=$(cd "$SHARED/data/imagenet-samples" && pwd)
    BIG=$TMP/big
    mkdir -p "$BIG"
    for f in $(ls "$SHARED/data/imagenet-samples" | grep JPEG | head -n 150); do
        ln -s "$ABS/$f" "$BIG/$f"
    done
    KDB=$TMP/kill.db
    "$CLIPDEX" index --model "$MODEL" --db "$KDB" --batch 4 --decoders 1 --quiet "$BIG" >/dev/null 2>&1 &
    pid=$!
    # wait until some batches are committed (the WAL grows), then kill
    i=0
    while [ $i -lt 100 ]; do
        sz=$(stat -c %s "$KDB-wal" 2>/dev/null || echo 0)
        [ "$sz" -gt 60000 ] && break
        sleep 0.1; i=$((i + 1))
    done
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    expect_rc 0 "index after SIGKILL resumes" index --model "$MODEL" --db "$KDB" --json "$BIG"
    a=$(field added); u=$(field unchanged)
    check "the resumed run finishes the rest (added $a + unchanged $u = 150)" test "$((a + u))" = 150
    if [ "$u" -gt 0 ] && [ "$a" -gt 0 ]; then ok; else skip "the kill did not land mid-run (unchanged $u, added $a)"; fi
    check "the resumed run embeds only what was missing" test "$(field embedded)" = "$a"
    expect_rc 0 "the killed database searches" search --model "$MODEL" --db "$KDB" -k 1 --json "$BIG/$(ls "$BIG" | head -n 1)"
    check "and finds the image itself" near "$(field similarity)" 1 1e-4
    if command -v sqlite3 >/dev/null 2>&1; then
        check "integrity_check" test "$(sqlite3 "$KDB" 'PRAGMA integrity_check')" = ok
        check "every file has a vector" test "$(sqlite3 "$KDB" 'SELECT count(*) FROM files WHERE hash NOT IN (SELECT hash FROM images)')" = 0
    else
        skip "no sqlite3 shell: integrity_check not run"
    fi
    # SIGINT: the run stops, commits what it gathered, prints the summary, exits 130
    IDB=$TMP/int.db
    "$CLIPDEX" index --model "$MODEL" --db "$IDB" --batch 4 --decoders 1 --json "$BIG" >"$TMP/int.out" 2>"$TMP/int.err" &
    pid=$!
    i=0
    while [ $i -lt 100 ]; do
        sz=$(stat -c %s "$IDB-wal" 2>/dev/null || echo 0)
        [ "$sz" -gt 60000 ] && break
        sleep 0.1; i=$((i + 1))
    done
    kill -INT $pid 2>/dev/null
    wait $pid
    irc=$?
    if [ "$irc" -eq 130 ]; then
        ok
        check "SIGINT: the summary is printed" grep -q '"added":' "$TMP/int.out"
        check "SIGINT: the interruption is reported" grep -q "interrupted" "$TMP/int.err"
        ia=$(field added "$TMP/int.out")
        check "SIGINT: the matrix matches the committed rows" test -s "$IDB-vectors"
        expect_rc 0 "index after SIGINT resumes" index --model "$MODEL" --db "$IDB" --json "$BIG"
        check "after SIGINT: the committed files are unchanged ($ia)" test "$(field unchanged)" = "$ia"
        check "after SIGINT: the rest is added" test "$(( $(field added) + ia ))" = 150
    elif [ "$irc" -eq 0 ]; then
        skip "the SIGINT did not land mid-run"
    else
        fail "SIGINT: exit $irc, expected 130"
    fi
else
    skip "no imagenet-samples: SIGKILL test not run"
fi

# --- a folder that cannot be listed keeps its indexed files ---
if [ "$(id -u)" -ne 0 ]; then
    UDB=$TMP/unread.db
    mkdir -p "$TMP/ulib/locked"
    cp "$SHARED/data/images/photos/rocket.jpg" "$TMP/ulib/a.jpg"
    cp "$SHARED/data/images/photos/china.jpg" "$TMP/ulib/locked/b.jpg"
    expect_rc 0 "index before locking" index --model "$MODEL" --db "$UDB" --json "$TMP/ulib"
    chmod 000 "$TMP/ulib/locked"
    expect_rc 1 "index with an unreadable folder" index --model "$MODEL" --db "$UDB" --json "$TMP/ulib"
    chmod 755 "$TMP/ulib/locked"
    check "the unreadable folder's file is not removed" test "$(field removed)" = 0
else
    skip "running as root: an unreadable folder cannot be made"
fi

# --- a search while an index runs ---
run_rc 0 "search beside a running index" sh -c "'$CLIPDEX' index --model '$MODEL' --db '$TMP/conc.db' --quiet '$LIB' && \
  ('$CLIPDEX' index --model '$MODEL' --db '$TMP/conc.db' --quiet '$BAD' '$SHARED/data/images' & \
   '$CLIPDEX' search --model '$MODEL' --db '$TMP/conc.db' -k 1 dog; wait; true)"
check "the concurrent search printed a result" test "$(wc -l <"$TMP/out")" = 1

done_
