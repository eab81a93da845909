#!/bin/sh
# tests/app/zeroshot/test_classify.sh - end-to-end tests of `clipdex classify`, `clipdex
# prompts`, `clipdex eval` and `clipdex search --prompts` with a tiny seeded
# model from $BUILD/tools/genmodel: classify with labels and templates equals
# classify from a saved prompts.json; probabilities sum to 1; a prompts file
# of another model is refused; search with cached text vectors equals search
# with the text tower; --interactive appends; eval labels ImageNet files by
# WordNet id and CIFAR folders by name, and on a constructed dataset whose
# class vectors are the embeddings of one image per class (a prompts.json
# assembled from `clipdex embed`) it must score exactly the expected top-1.
# No Python or jq: numbers are read with sed and compared with awk.
NAME=test_classify
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-classify.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB CLIPDEX_ZEROSHOT
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME # no downloaded default model

expect_rc() {
    want=$1; d=$2; shift 2
    "$CLIPDEX" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}
# field NAME [FILE]: the first number NAME in FILE (default $TMP/out)
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "${2:-$TMP/out}" | head -n 1; }
# probsum: sum of the "probability" numbers on line 1 of $TMP/out
probsum() { head -n 1 "$TMP/out" | tr ',' '\n' | sed -n 's/.*"probability":\([0-9.e+-]*\).*/\1/p' | awk '{ s += $1 } END { print s }'; }

# --- usage (no model needed) ---
for c in classify prompts eval; do
    expect_rc 0 "$c --help" "$c" --help
    check "$c --help prints usage" grep -q "^Usage: clipdex $c" "$TMP/out"
    expect_rc 2 "$c --no-such-option" "$c" --no-such-option
done
expect_rc 2 "classify without labels" classify --model "$TMP" x.jpg
expect_rc 2 "classify with labels and prompts" classify --model "$TMP" --labels a --prompts p x.jpg
expect_rc 2 "classify with prompts and templates" classify --model "$TMP" --prompts p --templates t x.jpg
expect_rc 2 "classify without images" classify --model "$TMP" --labels a,b
expect_rc 2 "prompts without --out" prompts --model "$TMP" dog
expect_rc 2 "prompts with nothing to embed" prompts --model "$TMP" --out "$TMP/p.json"
expect_rc 2 "eval with an unknown dataset" eval --model "$TMP" --dataset mnist "$TMP"
expect_rc 2 "eval without a path" eval --model "$TMP" --dataset cifar10

if [ ! -d "$SHARED/data/images" ] || [ ! -x "$GENMODEL" ]; then
    skip "$SHARED or $GENMODEL is missing: no model tests"
    done_
fi
MODEL=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null 2>"$TMP/err" \
    && ok || { cat "$TMP/err" >&2; fail "genmodel failed"; done_; }
"$GENMODEL" --config tiny --layout hf --seed 2 --out "$TMP/model2" --vocab "$SHARED/data/vocab" >/dev/null 2>&1
P=$SHARED/data/images/photos
ZS=$SHARED/data/zeroshot

# --- classify ---
expect_rc 0 "classify with labels and templates" classify --model "$MODEL" --labels "cat, dog,rocket" \
    --templates "$ZS/cifar10_templates.txt" -k 3 "$P/rocket.jpg" "$P/chelsea.png"
check "one line per image" test "$(wc -l <"$TMP/out")" = 2
check "the probabilities of all labels sum to 1" near "$(probsum)" 1 1e-6
cp "$TMP/out" "$TMP/classify-direct"
printf 'cat\n\n# a comment\ndog\n rocket \n' >"$TMP/labels.txt"
expect_rc 0 "classify with --labels-file" classify --model "$MODEL" --labels-file "$TMP/labels.txt" \
    --templates "$ZS/cifar10_templates.txt" -k 3 "$P/rocket.jpg" "$P/chelsea.png"
check "--labels-file equals --labels" cmp -s "$TMP/out" "$TMP/classify-direct"
expect_rc 0 "prompts --labels --templates" prompts --model "$MODEL" --out "$TMP/classes.json" \
    --labels "cat,dog,rocket" --templates "$ZS/cifar10_templates.txt"
check "prompts reports 3 entries" test "$(field prompts)" = 3
check "prompts.json records the model hash" grep -q "\"model_hash\":\"[0-9a-f]\{64\}\"" "$TMP/classes.json"
expect_rc 0 "classify --prompts" classify --model "$MODEL" --prompts "$TMP/classes.json" -k 3 "$P/rocket.jpg" "$P/chelsea.png"
check "cached class vectors give the same output" cmp -s "$TMP/out" "$TMP/classify-direct"
expect_rc 1 "classify --prompts with another model" classify --model "$TMP/model2" --prompts "$TMP/classes.json" "$P/rocket.jpg"
check "the refusal names the model" grep -q "made with model 'model'" "$TMP/err"
expect_rc 1 "classify a missing image" classify --model "$MODEL" --labels a,b "$P/rocket.jpg" "$TMP/nope.jpg"
check "the missing image gets an error object in place" grep -q '^{"image":"[^"]*nope.jpg","error":' "$TMP/out"
check "the good image is still classified" grep -q '"results"' "$TMP/out"
echo '{"format":"something else"}' >"$TMP/bad.json"
expect_rc 1 "a non-prompts file is refused" classify --model "$MODEL" --prompts "$TMP/bad.json" "$P/rocket.jpg"

# --- search --prompts ---
DB=$TMP/i.db
expect_rc 0 "index" index --model "$MODEL" --db "$DB" -q "$P"
expect_rc 0 "prompts TEXT..." prompts --model "$MODEL" --out "$TMP/q.json" "a rocket" "a cat"
expect_rc 0 "search with the text tower" search --model "$MODEL" --db "$DB" -k 5 "2:a rocket" -"a cat"
cp "$TMP/out" "$TMP/search-direct"
expect_rc 0 "search --prompts" search --model "$MODEL" --db "$DB" --prompts "$TMP/q.json" -k 5 "2:a rocket" -"a cat"
check "cached text vectors give the same results" cmp -s "$TMP/out" "$TMP/search-direct"
expect_rc 1 "search --prompts with a text not in the file" search --model "$MODEL" --db "$DB" --prompts "$TMP/q.json" "a dog"
printf 'a dog\n\na horse\n' | "$CLIPDEX" prompts --model "$MODEL" --out "$TMP/q.json" --append --interactive >"$TMP/out" 2>"$TMP/err"
check "--interactive --append adds two prompts" test "$(field prompts)" = 4
expect_rc 0 "search --prompts with an appended text" search --model "$MODEL" --db "$DB" --prompts "$TMP/q.json" -k 1 "a dog"
expect_rc 0 "search with the text tower for the same" search --model "$MODEL" --db "$DB" -k 1 --json "a dog"
cp "$TMP/out" "$TMP/dog1"
expect_rc 0 "search --prompts --json" search --model "$MODEL" --db "$DB" --prompts "$TMP/q.json" -k 1 --json "a dog"
check "the appended text vector equals the text tower's" cmp -s "$TMP/out" "$TMP/dog1"

# --- eval: ImageNet file names ---
IN=$SHARED/data/imagenet-samples
if [ -d "$IN" ]; then
    ABS=$(cd "$IN" && pwd)
    mkdir -p "$TMP/in"
    for f in n01440764_tench.JPEG n01443537_goldfish.JPEG n15075141_toilet_tissue.JPEG; do ln -s "$ABS/$f" "$TMP/in/$f"; done
    echo "a photo of a {}." >"$TMP/t1.txt"
    expect_rc 0 "eval imagenet-samples" eval --model "$MODEL" --dataset imagenet-samples \
        --zeroshot "$ZS" --templates "$TMP/t1.txt" --per-image --json "$TMP/in"
    check "tench is class 0" grep -q '"path":"[^"]*n01440764_tench.JPEG","class":0,' "$TMP/out"
    check "goldfish is class 1" grep -q '"path":"[^"]*n01443537_goldfish.JPEG","class":1,' "$TMP/out"
    check "toilet tissue is class 999" grep -q '"path":"[^"]*n15075141_toilet_tissue.JPEG","class":999,' "$TMP/out"
    tail -n 1 "$TMP/out" >"$TMP/sum"
    check "eval counts 3 images over 1000 classes" test "$(field images "$TMP/sum") $(field classes "$TMP/sum")" = "3 1000"
    check "eval reports the stage times" test -n "$(field inference_s "$TMP/sum")"
    cp "$P/rocket.jpg" "$TMP/in/rocket.jpg"
    expect_rc 1 "eval refuses a file without a WordNet id" eval --model "$MODEL" --dataset imagenet-samples \
        --zeroshot "$ZS" --templates "$TMP/t1.txt" "$TMP/in"
else
    skip "no imagenet-samples"
fi

# --- eval: a constructed CIFAR-10 folder with a known answer ---
# Class c's vector is the embedding of the one image in folder c, so every
# image is its own class's nearest vector (cosine 1): top-1 must be 10/10.
# An eleventh image, a copy of class 0's image filed under class 1, must be
# predicted as class 0: top-1 10/11 and that image's top-1 is 0.
DS=$TMP/cifar
PHOTOS="astronaut.png camera.png chelsea.png china.jpg coffee.png coins.png flower.jpg horse.png moon.png rocket.jpg"
set -- $PHOTOS
{
    printf '{"format":"clipdex-prompts-v1","model_name":"model","model_hash":"%s","embed_dim":32,"prompts":[\n' \
        "$(sed -n 's/.*"model_hash":"\([0-9a-f]*\)".*/\1/p' "$TMP/classes.json")"
    sep=""
    while read -r cls; do
        img=$1; shift
        mkdir -p "$DS/$(echo "$cls" | tr ' ' '_')"
        cp "$P/$img" "$DS/$(echo "$cls" | tr ' ' '_')/$img"
        emb=$("$CLIPDEX" embed --model "$MODEL" --image "$P/$img" | sed -n 's/.*"embedding":\(\[[^]]*\]\).*/\1/p')
        printf '%s{"label":"%s","embedding":%s}\n' "$sep" "$cls" "$emb"
        sep=","
    done <"$ZS/cifar10_classes.txt"
    echo ']}'
} >"$TMP/protos.json"
expect_rc 0 "eval on the constructed dataset" eval --model "$MODEL" --dataset cifar10 --zeroshot "$ZS" \
    --prompts "$TMP/protos.json" --json "$DS"
check "constructed: 10 images, top-1 10, top-5 10" \
    test "$(field images) $(field correct1) $(field correct5)" = "10 10 10"
check "constructed: top-1 accuracy is 1" near "$(field top1)" 1 0
cp "$P/astronaut.png" "$DS/automobile/misfiled.png"
expect_rc 0 "eval with a misfiled image" eval --model "$MODEL" --dataset cifar10 --zeroshot "$ZS" \
    --prompts "$TMP/protos.json" --json --per-image "$DS"
tail -n 1 "$TMP/out" >"$TMP/sum"
check "misfiled: 11 images, top-1 10" test "$(field images "$TMP/sum") $(field correct1 "$TMP/sum")" = "11 10"
check "the misfiled image is predicted as class 0" grep -q '"path":"[^"]*misfiled.png","class":1,"top5":\[0,' "$TMP/out"
check "top-5 counts at least top-1" test "$(field correct5 "$TMP/sum")" -ge 10
expect_rc 0 "eval --limit 4" eval --model "$MODEL" --dataset cifar10 --zeroshot "$ZS" --prompts "$TMP/protos.json" --json --limit 4 "$DS"
check "--limit 4 evaluates 4 images" test "$(field images)" = 4
expect_rc 1 "eval --prompts whose labels are not the classes" eval --model "$MODEL" --dataset cifar10 \
    --zeroshot "$ZS" --prompts "$TMP/classes.json" "$DS"
mkdir -p "$DS/unicorn"
expect_rc 1 "eval refuses an unknown class folder" eval --model "$MODEL" --dataset cifar10 --zeroshot "$ZS" \
    --prompts "$TMP/protos.json" "$DS"
rmdir "$DS/unicorn"
expect_rc 0 "eval with the text tower and the dataset templates" eval --model "$MODEL" --dataset cifar10 \
    --zeroshot "$ZS" --json "$DS"
check "text-tower eval counts 11 images" test "$(field images)" = 11

done_
