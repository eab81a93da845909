#!/bin/sh
# tests/test_clipcpp_gguf.sh - clip.cpp's own GGUF files load and embed like
# the weights they came from. tools/clipcpp_gguf.py writes, from a seeded
# tiny model (genmodel, Hugging Face layout), the files clip.cpp's converter
# and quantizer would write (its tensor names and keys, F16 2-D weights and
# patch convolution, Q8_0 / Q4_0 / Q4_1 of every 2-D weight from those F16
# values with ggml's reference rounding, its token list without merges).
# Each loads, and its embeddings of 4 photos and 4 texts against the
# safetensors model's: cosine >= 0.9995 (F16), 0.998 (Q8_0; the tiny model's
# text rows are one 32-value block, as test_quant.c explains), 0.98 (Q4_0,
# Q4_1), and bitwise those of an F32 file holding the values ggml's
# dequantizer gives for the quantized blocks (written by the same tool: the
# block layouts are read right). The token list alone is no tokenizer: without a vocabulary beside
# the file text fails with the reason, with one beside it works. Skipped
# without ../shared or python3.
NAME=test_clipcpp_gguf
. "$(dirname "$0")/app/lib.sh"
PY=${PYTHON:-python3}
if [ ! -d "$SHARED/data/vocab" ] || ! command -v "$PY" >/dev/null 2>&1; then skip "needs $SHARED and $PY"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-clipcpp.XXXXXX") || { fail mktemp; done_; }
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 11 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail genmodel; done_; }
set -- $(ls "$SHARED"/data/images/photos/*.png | head -n 4)
ARGS=""
for i in "$@"; do ARGS="$ARGS --image $i"; done
for t in "a photo of a cat" "two dogs playing in the snow" "naïve café" "x"; do ARGS="$ARGS --text \"$t\""; done
embed() { # embed MODEL OUT [--vocab DIR]
    eval "\"$CLIPDEX\" embed --model \"\$1\" \$3 \$4 $ARGS" >"$2" 2>"$2.err"
}
embed "$M" "$TMP/ref.jsonl" || { cat "$TMP/ref.jsonl.err" >&2; fail "safetensors embed"; done_; }
# worst cosine of two embed outputs, line by line
worst() {
    "$PY" - "$1" "$2" <<'PYEOF'
import json, math, sys
a = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
b = [json.loads(l)["embedding"] for l in open(sys.argv[2])]
assert len(a) == len(b) == 8
cos = lambda x, y: sum(p * q for p, q in zip(x, y)) / math.sqrt(sum(p * p for p in x) * sum(q * q for q in y))
print("%.7f" % min(cos(x, y) for x, y in zip(a, b)))
PYEOF
}
for spec in f16:0.9995 q8_0:0.998 q4_0:0.98 q4_1:0.98; do
    t=${spec%%:*}; bound=${spec#*:}
    mkdir -p "$TMP/$t"
    g=$TMP/$t/clip-$t.gguf
    if ! "$PY" tools/clipcpp_gguf.py "$M" "$g" --type "$t" >"$TMP/conv.log" 2>&1; then
        cat "$TMP/conv.log" >&2; fail "$t: the converter failed"; continue
    fi
    "$CLIPDEX" info --model "$g" >"$TMP/info" 2>&1
    check "$t: clipdex info reads the clip.cpp file" grep -qi "dtype *$t" "$TMP/info"
    if embed "$g" "$TMP/$t.jsonl" --vocab "$SHARED/data/vocab"; then
        w=$(worst "$TMP/ref.jsonl" "$TMP/$t.jsonl")
        echo "$NAME: clip.cpp $t file: worst cosine $w against the safetensors model (bound $bound)" >&2
        check "$t: worst cosine $w >= $bound" awk -v w="$w" -v b="$bound" 'BEGIN { exit !(w >= b) }'
        if [ "$t" != f16 ]; then # the same values written as F32 by the converter's own dequantizer
            "$PY" tools/clipcpp_gguf.py "$M" "$TMP/$t/deq.gguf" --type "$t" --dequantized >/dev/null 2>&1 &&
                embed "$TMP/$t/deq.gguf" "$TMP/$t.deq.jsonl" --vocab "$SHARED/data/vocab"
            check "$t: embeddings bitwise those of its dequantized F32 values" cmp -s "$TMP/$t.jsonl" "$TMP/$t.deq.jsonl"
        fi
    else
        cat "$TMP/$t.jsonl.err" >&2; fail "$t: embed failed"
    fi
done
# the token list is not a tokenizer: the vocabulary beside the file is
g=$TMP/f16/clip-f16.gguf
CLIPDEX_VOCAB= "$CLIPDEX" embed --model "$g" --text "a cat" >"$TMP/out" 2>"$TMP/err"
check "tokens without merges: text refused with the reason" grep -q "no tokenizer" "$TMP/out"
cp "$SHARED/data/vocab/vocab.json" "$SHARED/data/vocab/merges.txt" "$TMP/f16/"
check "tokens without merges: the vocabulary beside it" env CLIPDEX_VOCAB= "$CLIPDEX" embed --model "$g" --text "a cat" >/dev/null 2>&1
# a wrong mapping is caught: fc1 and fc2 swapped in a copy
sed 's/("mlp.fc1", "ffn_down"), ("mlp.fc2", "ffn_up")/("mlp.fc1", "ffn_up"), ("mlp.fc2", "ffn_down")/' tools/clipcpp_gguf.py >"$TMP/swapped.py"
"$PY" "$TMP/swapped.py" "$M" "$TMP/swapped.gguf" --type f16 >/dev/null 2>&1
"$CLIPDEX" info --model "$TMP/swapped.gguf" >"$TMP/out" 2>"$TMP/err"
check "swapped ffn names refused with the tensor named" grep -q "ffn_" "$TMP/err"
done_
