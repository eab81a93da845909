#!/bin/sh
# tests/app/ann/test_ann.sh - `clipdex ann build` and approximate search
# (app/ann/, docs/ann.md) on the 1000 sample photos with a tiny seeded model:
# 900 photos indexed, the rule's factory (Flat below 10k) and an IVF index
# built; 40 text queries searched through the IVF index and with --exact:
# the ANN hits' scores equal the exact scores of the same files (re-ranked
# exactly, compared as printed by --json, 9 digits), recall@10 against
# --exact is computed: at least 0.9 at the default nprobe (16 of 32 lists),
# lower at nprobe 8 and 1 (the index really is approximate), 1 with every
# list; the other 100
# photos indexed without a rebuild are found by their own image (the exact
# tail), then `ann build` adds them (updated, not rebuilt); --threshold
# holds; a corrupt or truncated ANN file falls back to the exact search with
# a message and the same results; filters (--under, --time): a selective
# one and too few filtered candidates give the exact filtered top k, a mild
# one is answered by the index with exact scores; /v1/search's "under",
# "time_from", "time_to", "exact", "nprobe", "candidates" and their 400s;
# /v1/info reports the index, and "exact" once the files are gone.
NAME=test_ann
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-ann.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB CLIPDEX_SEARCH_DEBUG CLIPDEX_SEARCH_CANDIDATES
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME

# run_rc RC DESCRIPTION ARGS...: clipdex ARGS, output in $TMP/out and $TMP/err
run_rc() {
    want=$1; d=$2; shift 2
    "$CLIPDEX" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}

# --- usage (no model needed) ---
run_rc 0 "ann --help" ann --help
check "ann --help prints usage" grep -q "^Usage: clipdex ann build" "$TMP/out"
run_rc 2 "ann without an action" ann
run_rc 2 "ann with an unknown action" ann rebuild
run_rc 2 "ann build --no-such-option" ann build --no-such-option
run_rc 2 "search --nprobe 0" search --model "$TMP" --nprobe 0 dog

PHOTOS=$SHARED/data/imagenet-samples
[ -d "$PHOTOS" ] && PHOTOS=$(cd "$PHOTOS" && pwd) # absolute: the links below point at it
if [ ! -d "$PHOTOS" ] || [ ! -x "$GENMODEL" ]; then
    skip "$PHOTOS or $GENMODEL is missing"
    done_
fi
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>"$TMP/err" \
    && ok || { cat "$TMP/err" >&2; fail "genmodel failed"; done_; }
DB=$TMP/index.db
mkdir -p "$TMP/a" "$TMP/b"
i=0
for f in "$PHOTOS"/*.JPEG; do
    i=$((i + 1))
    if [ $i -le 900 ]; then ln -s "$f" "$TMP/a/"; else ln -s "$f" "$TMP/b/"; fi
done
NB=$(ls "$TMP/b" | wc -l)
# one decoder: the files get their ids in one order, so k-means (and recall) is the same each run
run_rc 0 "index 900 photos" index --model "$M" --db "$DB" --decoders 1 -q "$TMP/a"
run_rc 1 "ann build of a missing database" ann build --db "$TMP/none.db"

# --- the rule, then an IVF index ---
run_rc 0 "ann build (the rule)" ann build --db "$DB"
check "the rule picks Flat below 10k vectors: $(cat "$TMP/out")" grep -q "^built $DB-ann: Flat, 900 vectors" "$TMP/out"
check "DB-ann and DB-ann.ids exist" test -s "$DB-ann" -a -s "$DB-ann.ids"
run_rc 0 "ann build --factory IVF32,Flat" ann build --db "$DB" --factory IVF32,Flat
check "IVF32,Flat built and trained: $(cat "$TMP/out")" \
    grep -q "^built $DB-ann: IVF32,Flat, 900 vectors (trained on 900)" "$TMP/out"
run_rc 1 "a factory FAISS does not know" ann build --db "$TMP/x.db" --factory Bogus42
run_rc 0 "ann build again keeps the factory asked for" ann build --db "$DB"
check "updated, nothing to add: $(cat "$TMP/out")" grep -q "^updated $DB-ann: IVF32,Flat, 0 vectors added, 900 in all" "$TMP/out"

# search QUERY OUT ARGS...: top 10 as "path score" lines in OUT, stderr in $TMP/err
search() {
    q=$1; out=$2; shift 2
    CLIPDEX_SEARCH_DEBUG=1 "$CLIPDEX" search --model "$M" --db "$DB" --json -k 10 "$@" -- "$q" 2>"$TMP/err" |
        sed -n 's/.*"similarity":\([^,]*\),"path":"\([^"]*\)".*/\2 \1/p' >"$out"
}
WORDS="dog cat car tree house boat fish bird flower mountain beach city road river snow
sun moon star chair table cup phone book clock shoe hat ball guitar piano train plane bike
horse cow sheep bear lion apple banana bread pizza"
# recall ARGS...: mean recall@10 of the ANN search with ARGS against --exact over WORDS;
# also counts the ANN hits whose score is not the exact score of the same file
# ($TMP/bad_scores) and the searches the ANN index answered ($TMP/used_ann)
recall() {
    : >"$TMP/recalls"; bad_scores=0; used_ann=0
    mkdir -p "$TMP/ex"
    for w in $WORDS; do
        [ -s "$TMP/ex/$w" ] || search "$w" "$TMP/ex/$w" --exact # until rm -r "$TMP/ex"
        cp "$TMP/ex/$w" "$TMP/exact"
        search "$w" "$TMP/ann" "$@"
        grep -q "answered by the ANN index" "$TMP/err" && used_ann=$((used_ann + 1))
        # the exact search's score of each file the ANN search returned
        bad_scores=$((bad_scores + $(awk 'NR == FNR { s[$1] = $2; n++; next }
            ($1 in s) && s[$1] != $2 { bad++ } END { print bad + 0 }' "$TMP/exact" "$TMP/ann")))
        awk 'NR == FNR { e[$1] = 1; next } ($1 in e) { hit++ } END { print hit / 10 }' \
            "$TMP/exact" "$TMP/ann" >>"$TMP/recalls"
    done
    echo "$bad_scores" >"$TMP/bad_scores"; echo "$used_ann" >"$TMP/used_ann"
    awk '{ s += $1; n++ } END { printf "%.3f\n", s / n }' "$TMP/recalls"
}
R=$(recall); bad_scores=$(cat "$TMP/bad_scores"); used_ann=$(cat "$TMP/used_ann")
nq=$(echo $WORDS | wc -w)
check "every ANN search used the index ($used_ann of $nq)" test "$used_ann" -eq "$nq"
check "ANN scores equal the exact scores of the same files ($bad_scores differ)" test "$bad_scores" -eq 0
check "recall@10 at the default nprobe (16 of 32 lists) >= 0.9: $R" awk -v r="$R" 'BEGIN { exit !(r >= 0.9) }'
R8=$(recall --nprobe 8)
check "recall@10 at nprobe 8 ($R8) is below the default's ($R)" awk -v a="$R8" -v b="$R" 'BEGIN { exit !(a < b) }'
R1=$(recall --nprobe 1); bad_scores=$(cat "$TMP/bad_scores")
check "recall@10 at nprobe 1 ($R1) is below the default's ($R): the index is approximate" \
    awk -v a="$R1" -v b="$R" 'BEGIN { exit !(a < b) }'
check "ANN scores equal the exact scores at nprobe 1 ($bad_scores differ)" test "$bad_scores" -eq 0
R32=$(recall --nprobe 32)
echo "$NAME: recall@10 over $nq text queries, IVF32,Flat, 900 photos: nprobe 1 $R1, 8 $R8, 16 (default) $R, 32 $R32" >&2
check "recall@10 with every list probed is 1: $R32" test "$R32" = 1.000
for w in $WORDS; do
    search "$w" "$TMP/ann" --candidates 1 --nprobe 1
    [ "$(wc -l <"$TMP/ann")" -eq 10 ] || break
done
check "--candidates 1 --nprobe 1 still gives 10 hits ('$w': $(wc -l <"$TMP/ann"))" test "$(wc -l <"$TMP/ann")" -eq 10

# --- --exact, --threshold ---
search dog "$TMP/exact" --exact
check "--exact does not use the ANN index" sh -c "! grep -q 'ANN index' '$TMP/err'"
T=$(sed -n 3p "$TMP/exact" | cut -d' ' -f2)
search dog "$TMP/ann" --threshold "$T"
check "--threshold $T: 1 to 3 ANN hits" test "$(wc -l <"$TMP/ann")" -ge 1 -a "$(wc -l <"$TMP/ann")" -le 3
check "--threshold: every ANN hit scores >= $T" awk -v t="$T" '$2 < t { exit 1 }' "$TMP/ann"

# --- the exact tail: photos indexed after the build ---
run_rc 0 "index $NB more photos" index --model "$M" --db "$DB" --decoders 1 -q "$TMP/b"
miss=0; tail_seen=0
for f in $(ls "$TMP/b" | head -n 20); do
    search "$TMP/b/$f" "$TMP/ann" --nprobe 1
    grep -q "$NB tail rows" "$TMP/err" && tail_seen=$((tail_seen + 1))
    head -n 1 "$TMP/ann" | grep -q "/$f " || miss=$((miss + 1))
done
check "the ANN search scanned the $NB new rows exactly (20 of 20: $tail_seen)" test "$tail_seen" -eq 20
check "each new photo is its own top hit before a rebuild ($miss of 20 missed)" test "$miss" -eq 0
run_rc 0 "ann build after indexing" ann build --db "$DB"
check "the new photos were added, not rebuilt: $(cat "$TMP/out")" \
    grep -q "^updated $DB-ann: IVF32,Flat, $NB vectors added, 1000 in all" "$TMP/out"
search "$TMP/b/$f" "$TMP/ann"
check "no tail after the update" grep -q " 0 tail rows" "$TMP/err"
check "a new photo is its own top hit after the update" sh -c "head -n 1 '$TMP/ann' | grep -q '/$f '"
rm -r "$TMP/ex" # the exact answers changed
R=$(recall)
check "recall@10 over 1000 photos after the update >= 0.9: $R" awk -v r="$R" 'BEGIN { exit !(r >= 0.9) }'

# --- corrupt and truncated files: an exact search with a message ---
search dog "$TMP/exact" --exact
cp "$DB-ann" "$TMP/ann.bak"
printf 'garbage' >"$DB-ann"
search dog "$TMP/ann"
check "a corrupt DB-ann is reported" grep -q "cannot read the FAISS index" "$TMP/err"
check "... and the search falls back to the exact one" grep -q "searching '$DB' exactly instead" "$TMP/err"
check "... with the exact results" cmp -s "$TMP/exact" "$TMP/ann"
cp "$TMP/ann.bak" "$DB-ann"
head -c 300 "$DB-ann.ids" >"$TMP/ids" && cp "$TMP/ids" "$DB-ann.ids"
search dog "$TMP/ann"
check "a truncated DB-ann.ids is reported" grep -q "corrupt or truncated" "$TMP/err"
check "... with the exact results" cmp -s "$TMP/exact" "$TMP/ann"
run_rc 0 "ann build over the broken files" ann build --db "$DB" --factory IVF32,Flat
check "rebuilt: $(cat "$TMP/out")" grep -q "^built $DB-ann: IVF32,Flat, 1000 vectors" "$TMP/out"
search dog "$TMP/ann"
check "the rebuilt index answers" grep -q "answered by the ANN index" "$TMP/err"

# --- filters with the ANN index (docs/ann.md): the exact filtered top k ---
TR=$(cd "$TMP" && pwd -P) # as the index records paths
search dog "$TMP/all" --exact -k 1000
check "the exact search ranks all 1000 photos" test "$(wc -l <"$TMP/all")" -eq 1000
# want DIR K: the exact ranking restricted to DIR/, top K, in $TMP/want
want() { grep "^$TR/$1/" "$TMP/all" | head -n "$2" >"$TMP/want"; }
want b 10
search dog "$TMP/ann" --under "$TMP/b"
check "a selective --under (100 rows): answered exactly" grep -q "fewer rows pass than the candidates, so an exact scan" "$TMP/err"
check "a selective --under with the ANN index is the exact filtered top 10" cmp -s "$TMP/ann" "$TMP/want"
search dog "$TMP/ex_b" --exact --under "$TMP/b/"
check "--exact --under is the exact ranking restricted to b/" cmp -s "$TMP/ex_b" "$TMP/want"
want a 10
search dog "$TMP/ann" --under "$TMP/a" --candidates 1
check "a mild --under (900 rows, 144 candidates): the ANN index answers, filtered" \
    grep -q "answered by the ANN index.*; filtered)" "$TMP/err"
check "... every hit is under a/" test "$(grep -c "^$TR/a/" "$TMP/ann")" -eq 10
bad=$(awk 'NR == FNR { s[$1] = $2; next } !($1 in s) || s[$1] != $2 { bad++ } END { print bad + 0 }' "$TMP/all" "$TMP/ann")
check "... with the exact scores of the same files ($bad differ)" test "$bad" -eq 0
search dog "$TMP/ann" --under "$TMP/a" --nprobe 32 --candidates 1
check "--under with every list probed is the exact filtered top 10" cmp -s "$TMP/ann" "$TMP/want"
# few candidates (one list, 1 x k) of which fewer than k are under a/: the exact filtered scan
want a 100
search dog "$TMP/ann" --under "$TMP/a" -k 100 --nprobe 1 --candidates 1
check "too few filtered candidates: an exact scan ($(sed -n 's/.*answered by \(.*\)/\1/p' "$TMP/err"))" \
    grep -q "filtered; under k, so an exact scan" "$TMP/err"
check "... giving the exact filtered top 100" cmp -s "$TMP/ann" "$TMP/want"
n=0
for w in $WORDS; do
    search "$w" "$TMP/exf" --exact --under "$TMP/b"
    search "$w" "$TMP/ann" --under "$TMP/b" --candidates 1 --nprobe 1
    cmp -s "$TMP/exf" "$TMP/ann" && n=$((n + 1))
done
check "ANN --under b/ equals --exact --under b/ for every query ($n of $nq)" test "$n" -eq "$nq"
head -n 10 "$TMP/all" >"$TMP/top10"
search dog "$TMP/ann" --time 0-10 --nprobe 32
check "--time leaves photos alone with the ANN index" cmp -s "$TMP/ann" "$TMP/top10"
search dog "$TMP/cli_np1" --under "$TMP/a" --nprobe 1 --candidates 1 # for /v1/search below

# --- the server: /v1/info and /v1/search ---
if ! command -v curl >/dev/null 2>&1; then skip "curl not installed: no server checks"; done_; fi
. "$(dirname "$0")/../serve/server.sh"
first_server --db "$DB"
curl -s "$U/v1/info" >"$TMP/info"
check "/v1/info reports the ANN index: $(sed 's/.*"search":\({[^}]*}\).*/\1/' "$TMP/info")" \
    grep -q '"search":{"index":"IVF32,Flat","nprobe":16,"candidates_per_k":10,"rerank":"exact float32","ann_vectors":1000,"exact_tail":0}' "$TMP/info"
curl -s -X POST -d '{"text":"dog","k":10}' "$U/v1/search" |
    sed 's/},{/}\n{/g' | sed -n 's/.*"similarity":\([^,]*\),"path":"\([^"]*\)".*/\2 \1/p' >"$TMP/http"
check "/v1/search gives 10 hits" test "$(wc -l <"$TMP/http")" -eq 10
bad=$(awk 'NR == FNR { s[$1] = $2; next } ($1 in s) && s[$1] != $2 { bad++ } END { print bad + 0 }' \
    "$TMP/exact" "$TMP/http")
check "/v1/search scores equal the exact scores ($bad differ)" test "$bad" -eq 0
# filters and per-request options; http FIELDS: "path score" lines of /v1/search in $TMP/http
http() {
    curl -s -X POST -d "{\"text\":\"dog\",$1}" "$U/v1/search" |
        sed 's/},{/}\n{/g' | sed -n 's/.*"similarity":\([^,]*\),"path":"\([^"]*\)".*/\2 \1/p' >"$TMP/http"
}
want b 10
http "\"k\":10,\"under\":\"$TR/b/\""
check "/v1/search \"under\" is the exact filtered top 10" cmp -s "$TMP/http" "$TMP/want"
want a 10
http "\"k\":10,\"under\":\"$TR/a\",\"nprobe\":32"
check "/v1/search \"under\" with \"nprobe\":32 is the exact filtered top 10" cmp -s "$TMP/http" "$TMP/want"
http "\"k\":10,\"under\":\"$TR/a\",\"nprobe\":1,\"candidates\":1"
check "/v1/search \"nprobe\":1,\"candidates\":1 is search --nprobe 1 --candidates 1" cmp -s "$TMP/http" "$TMP/cli_np1"
check "... every hit under a/" test "$(grep -c "^$TR/a/" "$TMP/http")" -eq 10
http "\"k\":10,\"under\":\"$TR/a\",\"nprobe\":1,\"candidates\":1,\"exact\":true"
check "/v1/search \"exact\":true is the exact filtered top 10" cmp -s "$TMP/http" "$TMP/want"
http '"k":10,"time_from":"0:00","time_to":3600,"nprobe":32'
check "/v1/search: a time range leaves photos alone" cmp -s "$TMP/http" "$TMP/top10"
for body in '"nprobe":0' '"nprobe":"4"' '"candidates":1001' '"candidates":1.5' '"exact":1' '"under":"a"' \
    '"under":7' '"time_from":-1' '"time_from":"1:75"' '"time_to":"abc"' '"time_from":10,"time_to":5'; do
    code=$(curl -s -o "$TMP/body" -w '%{http_code}' -X POST -d "{\"text\":\"dog\",$body}" "$U/v1/search")
    check "/v1/search {$body}: 400 with a JSON error (got $code: $(cat "$TMP/body"))" \
        sh -c "test '$code' = 400 && grep -q '\"error\"' '$TMP/body'"
done
rm -f "$DB-ann" "$DB-ann.ids"
curl -s "$U/v1/info" >"$TMP/info"
check "/v1/info says exact once the ANN files are gone" grep -q '"search":{"index":"exact"}' "$TMP/info"
curl -s -X POST -d '{"text":"dog","k":10}' "$U/v1/search" |
    sed 's/},{/}\n{/g' | sed -n 's/.*"similarity":\([^,]*\),"path":"\([^"]*\)".*/\2 \1/p' >"$TMP/http"
check "/v1/search without the ANN index gives the exact results" cmp -s "$TMP/exact" "$TMP/http"
stop_server
done_
