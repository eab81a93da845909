#!/bin/sh
# tests/app/cli/test_cli.sh - end-to-end tests of the clipdex program: help and exit
# codes, JSON validity for hostile names and texts, tokenize ids, and - with a
# tiny seeded model from $BUILD/tools/genmodel - embed order, error objects in
# place, unit norms, batch/thread invariance, compare vs embed consistency,
# softmax sums and CLIPDEX_MODEL. JSON is checked by a small jansson program
# compiled here (jansson is a build dependency), so no Python or jq is needed.
# Parts that need ../shared or genmodel are skipped (counted) when missing.
NAME=test_cli
. "$(dirname "$0")/../lib.sh"

if [ ! -x "$CLIPDEX" ]; then
    fail "$CLIPDEX is missing (build it first)"
    done_
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-cli.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME # no downloaded default model

# expect_rc RC DESCRIPTION ARGS...: runs clipdex, output in $TMP/out and $TMP/err.
expect_rc() {
    want=$1; d=$2; shift 2
    "$CLIPDEX" "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}

# --- the JSON checker -------------------------------------------------------
cat >"$TMP/jcheck.c" <<'EOF'
/* jcheck - JSON Lines checks for test_cli.sh.
 *   jcheck lines FILE            validates every line; prints the count
 *   jcheck get FILE N KEY...     prints the value at KEY... of line N (strings raw)
 *   jcheck len FILE N KEY...     prints the length of the array at KEY...
 *   jcheck norm FILE N           L2 norm of line N's "embedding"
 *   jcheck dot FILE N FILE2 M    dot product of two lines' "embedding"
 *   jcheck probsum FILE          sum of "probability" over line 1's "results" */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *line(const char *path, long n)
{
    FILE *f = fopen(path, "rb");
    if (!f) { perror(path); exit(2); }
    char *buf = NULL; size_t cap = 0; ssize_t len; long i = 0; json_t *v = NULL;
    while ((len = getline(&buf, &cap, f)) >= 0) {
        if (++i != n && n != 0) continue;
        json_error_t e;
        v = json_loadb(buf, (size_t)len, 0, &e);
        if (!v) { fprintf(stderr, "%s:%ld: invalid JSON: %s\n", path, i, e.text); exit(1); }
        if (n != 0) break;
        json_decref(v); v = NULL;
    }
    free(buf); fclose(f);
    if (n == 0) { printf("%ld\n", i); exit(0); }
    if (!v) { fprintf(stderr, "%s: no line %ld\n", path, n); exit(1); }
    return v;
}

static json_t *walk(json_t *v, int argc, char **argv)
{
    for (int i = 0; i < argc && v; i++)
        v = json_is_array(v) ? json_array_get(v, (size_t)atol(argv[i])) : json_object_get(v, argv[i]);
    if (!v) { fprintf(stderr, "no such value\n"); exit(1); }
    return v;
}

static double sumsq(json_t *a, json_t *b)
{
    if (!json_is_array(a) || !json_is_array(b) || json_array_size(a) != json_array_size(b) ||
        json_array_size(a) == 0) { fprintf(stderr, "bad embeddings\n"); exit(1); }
    double s = 0;
    for (size_t i = 0; i < json_array_size(a); i++)
        s += json_number_value(json_array_get(a, i)) * json_number_value(json_array_get(b, i));
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 3) return 2;
    const char *cmd = argv[1];
    if (!strcmp(cmd, "lines")) line(argv[2], 0);
    if (argc < 4) return 2;
    json_t *v = line(argv[2], atol(argv[3]));
    if (!strcmp(cmd, "get")) {
        json_t *x = walk(v, argc - 4, argv + 4);
        if (json_is_string(x)) fwrite(json_string_value(x), 1, json_string_length(x), stdout);
        else if (json_is_number(x)) printf("%.17g\n", json_number_value(x));
        else { char *s = json_dumps(x, JSON_COMPACT | JSON_ENCODE_ANY); printf("%s\n", s); free(s); }
    } else if (!strcmp(cmd, "len")) {
        printf("%zu\n", json_array_size(walk(v, argc - 4, argv + 4)));
    } else if (!strcmp(cmd, "norm")) {
        json_t *e = json_object_get(v, "embedding");
        printf("%.17g\n", sqrt(sumsq(e, e)));
    } else if (!strcmp(cmd, "dot") && argc >= 6) {
        json_t *w = line(argv[4], atol(argv[5]));
        printf("%.17g\n", sumsq(json_object_get(v, "embedding"), json_object_get(w, "embedding")));
    } else {
        return 2;
    }
    return 0;
}
EOF
CHK_FLAGS=$(pkg-config --cflags --libs jansson 2>/dev/null || echo -ljansson)
# shellcheck disable=SC2086
if ${CC:-cc} -std=c11 -D_GNU_SOURCE -O1 -o "$TMP/jcheck" "$TMP/jcheck.c" $CHK_FLAGS -lm 2>"$TMP/err"; then
    ok
else
    cat "$TMP/err" >&2
    fail "cannot compile the JSON checker"
    done_
fi
J=$TMP/jcheck
valid() { n=$("$J" lines "$1") && [ "$n" -eq "$2" ]; }

# --- help, version, usage errors (no model needed) -----------------------
expect_rc 0 "--version" --version
check "--version prints the version" grep -q '^clipdex [0-9]' "$TMP/out"
for h in help --help -h; do
    expect_rc 0 "$h" $h
    check "$h prints usage" grep -q '^Usage: clipdex' "$TMP/out"
done
for c in embed compare tokenize info; do
    for h in --help -h; do
        expect_rc 0 "$c $h" "$c" "$h"
        check "$c $h prints usage" grep -q "^Usage: clipdex $c" "$TMP/out"
    done
    expect_rc 0 "help $c" help "$c"
    check "help $c prints usage" grep -q "^Usage: clipdex $c" "$TMP/out"
    expect_rc 2 "$c --no-such-option" "$c" --no-such-option
    check "$c names the unknown option" grep -q -- "--no-such-option" "$TMP/err"
done
expect_rc 2 "no command"
expect_rc 2 "unknown command" frobnicate
check "unknown command is named" grep -q frobnicate "$TMP/err"
expect_rc 2 "help for an unknown command" help frobnicate
expect_rc 2 "missing option argument" embed --text
check "missing argument names the option" grep -q -- "--text" "$TMP/err"
expect_rc 2 "embed without a model" embed --text "a dog"
expect_rc 2 "bad --batch" embed --model "$TMP" --batch 0 --text x
expect_rc 2 "bad --threads" embed --model "$TMP" --threads x --text x
expect_rc 2 "embed without inputs" embed --model "$TMP"
expect_rc 2 "embed with a stray argument" embed --model "$TMP" stray
expect_rc 2 "compare without prompts" compare --model "$TMP" --text x
expect_rc 2 "compare with two subjects" compare --model "$TMP" --text x --image y p
expect_rc 2 "compare without a subject" compare --model "$TMP" p
expect_rc 2 "flag with a value" info --model "$TMP" --json=1
expect_rc 2 "tokenize without a vocabulary" tokenize "a dog"
expect_rc 2 "bad --context" tokenize --vocab x --context 1 "a dog"
expect_rc 3 "model that does not exist" embed --model "$TMP/no-such-model" --text x
check "load failure says clipdex:" grep -q '^clipdex: ' "$TMP/err"
check "load failure prints nothing on stdout" test ! -s "$TMP/out"
expect_rc 3 "info on a model that does not exist" info --model "$TMP/no-such-model"
expect_rc 3 "vocabulary that does not exist" tokenize --vocab "$TMP/no-such-vocab" x

if [ ! -d "$SHARED" ]; then
    skip "$SHARED is missing: no tokenizer or model tests"
    done_
fi
VOCAB=$SHARED/data/vocab

# --- tokenize (needs only the vocabulary) ---------------------------------
expect_rc 0 "tokenize" tokenize --vocab "$VOCAB" "a diagram" "a dog"
check "tokenize prints two valid lines" valid "$TMP/out" 2
check "tokenize 'a diagram'" grep -q -F '"ids":[49406,320,22697,49407]' "$TMP/out"
check "tokenize n_tokens" test "$("$J" get "$TMP/out" 1 n_tokens)" = 4
check "tokenize truncated" test "$("$J" get "$TMP/out" 1 truncated)" = false
CLIPDEX_VOCAB=$VOCAB/bpe_simple_vocab_16e6.txt.gz "$CLIPDEX" tokenize "a diagram" >"$TMP/out2" 2>"$TMP/err"
check "tokenize with CLIPDEX_VOCAB" grep -q -F '"ids":[49406,320,22697,49407]' "$TMP/out2"
expect_rc 0 "tokenize --context" tokenize --vocab "$VOCAB" --context 3 "a diagram"
check "tokenize --context cuts" test "$("$J" get "$TMP/out" 1 ids)" = "[49406,320,49407]"
check "tokenize --context truncated" test "$("$J" get "$TMP/out" 1 truncated)" = true
weird=$(printf 'q"uote \\back\tslash\001\033[31m\nnew\377\376line')
expect_rc 0 "tokenize a hostile string" tokenize --vocab "$VOCAB" -- "$weird" "-dash"
check "tokenize output for a hostile string is valid JSON" valid "$TMP/out" 2
check "invalid UTF-8 becomes U+FFFD" sh -c "'$J' get '$TMP/out' 1 input | grep -q \"\$(printf '\357\277\275')\""

if [ ! -x "$GENMODEL" ]; then
    skip "$GENMODEL is missing: no model tests"
    done_
fi
MODEL=$TMP/model
if "$GENMODEL" --config tiny --layout hf --dtype f32 --seed 1 --out "$MODEL" --vocab "$VOCAB" >/dev/null 2>"$TMP/err"; then
    ok
else
    cat "$TMP/err" >&2
    fail "genmodel failed"
    done_
fi

# --- info ------------------------------------------------------------------
expect_rc 0 "info" info --model "$MODEL"
check "info names the layout" grep -q 'hf' "$TMP/out"
expect_rc 0 "info --json" info --model "$MODEL" --json
check "info --json is valid JSON" valid "$TMP/out" 1
cp "$TMP/out" "$TMP/info.json"
DIM=$("$J" get "$TMP/info.json" 1 embed_dim)
SCALE=$("$J" get "$TMP/info.json" 1 logit_scale)
check "info embed_dim" test "$DIM" = 32
check "info vision width" test "$("$J" get "$TMP/info.json" 1 vision width)" = 64
check "info text layers" test "$("$J" get "$TMP/info.json" 1 text layers)" = 2
check "info parameter total" awk -v t="$("$J" get "$TMP/info.json" 1 params total)" \
    -v v="$("$J" get "$TMP/info.json" 1 params vision)" -v x="$("$J" get "$TMP/info.json" 1 params text)" \
    'BEGIN { exit !(t > 0 && t == v + x) }'

# --- embed -----------------------------------------------------------------
IMG1=$SHARED/data/images/CLIP.png
IMG2=$SHARED/data/images/photos/chelsea.png
IMG3=$SHARED/data/images/photos/rocket.jpg
printf 'this is not an image\n' >"$TMP/bad.png"
expect_rc 1 "embed with a bad image" embed --model "$MODEL" --batch 2 --image "$IMG1" --text "a dog" \
    --image "$TMP/bad.png" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram"
cp "$TMP/out" "$TMP/mixed"
check "embed prints one valid line per input" valid "$TMP/mixed" 7
i=0
for want in "image $IMG1" "text a dog" "image $TMP/bad.png" "text a cat" "image $IMG2" "image $IMG3" "text a diagram"; do
    i=$((i + 1))
    got="$("$J" get "$TMP/mixed" $i kind) $("$J" get "$TMP/mixed" $i input)"
    check "embed line $i is '$want' (got '$got')" test "$got" = "$want"
done
check "the bad image has an error" sh -c "'$J' get '$TMP/mixed' 3 error | grep -q ."
check "the bad image has no embedding" sh -c "! '$J' get '$TMP/mixed' 3 embedding 2>/dev/null"
for i in 1 2 4 5 6 7; do
    check "embedding $i has $DIM numbers" test "$("$J" len "$TMP/mixed" $i embedding)" = "$DIM"
    check "embedding $i has unit norm" near "$("$J" norm "$TMP/mixed" $i)" 1 1e-5
done
check "text tokens end with the end token" test "$("$J" get "$TMP/mixed" 7 tokens)" = "[49406,320,22697,49407]"
check "different inputs differ" sh -c "test \"\$('$J' get '$TMP/mixed' 1 embedding)\" != \"\$('$J' get '$TMP/mixed' 5 embedding)\""

grep -v error "$TMP/mixed" >"$TMP/good"
expect_rc 0 "embed good inputs, batch 16, 1 thread" embed --model "$MODEL" --batch 16 --threads 1 \
    --image "$IMG1" --text "a dog" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram"
check "batch and thread count do not change the output" cmp -s "$TMP/out" "$TMP/good"
expect_rc 0 "embed, batch 1, 3 threads" embed --model "$MODEL" --batch 1 --threads 3 \
    --image "$IMG1" --text "a dog" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram"
check "batch 1 gives the same output" cmp -s "$TMP/out" "$TMP/good"

# --- quantize: packed (default) and row layouts -----------------------------
for L in packed rows; do
    mkdir -p "$TMP/q-$L"
    cp "$MODEL"/vocab.json "$MODEL"/merges.txt "$TMP/q-$L/"
    for T in f32 f16 q8; do
        expect_rc 0 "quantize --type $T --layout $L" quantize --model "$MODEL" --type $T --layout $L \
            --out "$TMP/q-$L/$T.gguf"
        check "quantize $T $L reports its layout" grep -q "($L layout)" "$TMP/out"
        expect_rc 0 "embed with the $T $L file" embed --model "$TMP/q-$L/$T.gguf" --vocab "$TMP/q-$L" \
            --image "$IMG1" --text "a dog" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram"
        cp "$TMP/out" "$TMP/emb-$T-$L"
        check "embed with the $T $L file: unit norm" near "$("$J" norm "$TMP/out" 2)" 1 1e-5
    done
done
check "F32 GGUF (packed) embeds exactly like the safetensors model" cmp -s "$TMP/emb-f32-packed" "$TMP/good"
check "F32 GGUF (rows) embeds exactly like the safetensors model" cmp -s "$TMP/emb-f32-rows" "$TMP/good"
check "F16 packed and row files embed identically" cmp -s "$TMP/emb-f16-packed" "$TMP/emb-f16-rows"
check "Q8 packed (int8 kernels) is close to fp32" near "$("$J" dot "$TMP/emb-q8-packed" 1 "$TMP/good" 1)" 1 1e-3
expect_rc 0 "quantize --type i8" quantize --model "$MODEL" --type i8 --out "$TMP/q-packed/i8.gguf"
expect_rc 0 "embed with the i8 file" embed --model "$TMP/q-packed/i8.gguf" --vocab "$TMP/q-packed" \
    --image "$IMG1" --text "a dog" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram"
check "I8 (per-row int8 kernels) is close to fp32" near "$("$J" dot "$TMP/out" 1 "$TMP/good" 1)" 1 1e-3
CLIPDEX_ISA=avx2 "$CLIPDEX" embed --model "$TMP/q-packed/i8.gguf" --vocab "$TMP/q-packed" --image "$IMG1" \
    --text "a dog" --text "a cat" --image "$IMG2" --image "$IMG3" --text "a diagram" >"$TMP/i8-avx2" 2>"$TMP/err"
check "I8 on the avx2 path is within 1e-5 of the best path" near "$("$J" dot "$TMP/out" 1 "$TMP/i8-avx2" 1)" 1 1e-5
expect_rc 1 "quantize --type i8 --layout rows is refused" quantize --model "$MODEL" --type i8 --layout rows \
    --out "$TMP/x.gguf"
check "the i8 rows refusal says why" grep -q "only in the packed layout" "$TMP/err"
expect_rc 2 "quantize --layout bogus" quantize --model "$MODEL" --type q8 --layout bogus --out "$TMP/x.gguf"
check "quantize --layout bogus names the choices" grep -q "packed, rows" "$TMP/err"

CLIPDEX_MODEL=$MODEL "$CLIPDEX" embed --text "a dog" >"$TMP/env" 2>"$TMP/err"
check "CLIPDEX_MODEL works" test $? -eq 0
check "CLIPDEX_MODEL gives the same embedding" \
    test "$("$J" get "$TMP/env" 1 embedding)" = "$("$J" get "$TMP/good" 2 embedding)"
expect_rc 0 "tokenize with the model's tokenizer" tokenize --model "$MODEL" "a diagram"
check "tokenize --model 'a diagram'" grep -q -F '"ids":[49406,320,22697,49407]' "$TMP/out"

# --- compare ---------------------------------------------------------------
expect_rc 0 "compare an image" compare --model "$MODEL" --image "$IMG1" "a dog" "a cat" "a diagram"
cp "$TMP/out" "$TMP/cmp"
check "compare prints valid JSON" valid "$TMP/cmp" 1
check "compare subject_type" test "$("$J" get "$TMP/cmp" 1 subject_type)" = image
check "compare has 3 results" test "$("$J" len "$TMP/cmp" 1 results)" = 3
check "compare logit_scale matches info" near "$("$J" get "$TMP/cmp" 1 logit_scale)" "$SCALE" 1e-6
sum=0
i=0
for p in "a dog" "a cat" "a diagram"; do
    line=$(grep -n -F "\"input\":\"$p\"" "$TMP/good" | cut -d: -f1)
    cos=$("$J" get "$TMP/cmp" 1 results $i cosine)
    check "compare prompt $i" test "$("$J" get "$TMP/cmp" 1 results $i prompt)" = "$p"
    check "compare cosine '$p' equals the embed dot product" near "$cos" "$("$J" dot "$TMP/good" 1 "$TMP/good" "$line")" 1e-6
    check "compare logit '$p' = logit_scale x cosine" near "$("$J" get "$TMP/cmp" 1 results $i logit)" \
        "$(awk -v s="$SCALE" -v c="$cos" 'BEGIN { printf "%.12g", s * c }')" 1e-4
    sum=$(awk -v s="$sum" -v p="$("$J" get "$TMP/cmp" 1 results $i probability)" 'BEGIN { printf "%.17g", s + p }')
    i=$((i + 1))
done
check "probabilities sum to 1" near "$sum" 1 1e-6
expect_rc 0 "compare a text" compare --model "$MODEL" --text "a dog" -- "a cat" "-a dash"
check "compare a text: valid JSON" valid "$TMP/out" 1
check "compare a text: subject_type" test "$("$J" get "$TMP/out" 1 subject_type)" = text
check "compare a text: cosine" near "$("$J" get "$TMP/out" 1 results 0 cosine)" \
    "$("$J" dot "$TMP/good" 2 "$TMP/good" 3)" 1e-6
expect_rc 1 "compare a bad image" compare --model "$MODEL" --image "$TMP/bad.png" "a dog"
check "compare a bad image says clipdex:" grep -q '^clipdex: ' "$TMP/err"

# --- hostile names and texts ------------------------------------------------
wname=$(printf 'we"ird\\name\nwith\377\376bytes.png')
cp "$IMG1" "$TMP/$wname"
expect_rc 1 "embed hostile names" embed --model "$MODEL" --image "$TMP/$wname" --text "$weird" \
    --image "$TMP/missing-$wname"
check "hostile names give valid JSON" valid "$TMP/out" 3
check "the hostile-named image is embedded" near "$("$J" norm "$TMP/out" 1)" 1 1e-5
check "the hostile-named image embeds like the original" \
    test "$("$J" get "$TMP/out" 1 embedding)" = "$("$J" get "$TMP/good" 1 embedding)"
check "the missing hostile-named image has an error" sh -c "'$J' get '$TMP/out' 3 error | grep -q ."
expect_rc 0 "compare with hostile strings" compare --model "$MODEL" --image "$TMP/$wname" -- "$weird" "$wname"
check "compare with hostile strings gives valid JSON" valid "$TMP/out" 1

done_
