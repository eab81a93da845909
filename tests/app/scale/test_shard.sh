#!/bin/sh
# tests/app/scale/test_shard.sh - sharded indexing without a scheduler: a
# shell loop runs `clipdex index --shard I/4` over the 1000 sample photos
# (tiny seeded model), `clipdex merge` joins the shards, and the merged
# index must equal a one-machine index of the same photos: the same paths
# and bitwise-equal embeddings (sqlite3 dumps in hex). Also: every photo
# lies in exactly one shard; a re-run of a shard embeds nothing; removing a
# photo removes it from its own shard only; merging twice changes nothing
# (generation unchanged); --shard auto reads SLURM_ARRAY_TASK_ID/COUNT,
# _MIN/_MAX and JOB_COMPLETION_INDEX; bad specs and shards of another
# model are refused; multi --db search equals the merged search.
NAME=test_shard
. "$(dirname "$0")/../lib.sh"
if [ ! -x "$CLIPDEX" ]; then fail "$CLIPDEX is missing (build it first)"; done_; fi
if ! command -v sqlite3 >/dev/null 2>&1; then skip "sqlite3 CLI not installed"; done_; fi
PHOTOS=$SHARED/data/imagenet-samples
if [ ! -d "$PHOTOS" ]; then skip "$PHOTOS is missing"; done_; fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-shard.XXXXXX") || { fail "mktemp"; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_DB CLIPDEX_SHARD_COUNT SLURM_ARRAY_TASK_ID \
    SLURM_ARRAY_TASK_COUNT SLURM_ARRAY_TASK_MIN SLURM_ARRAY_TASK_MAX JOB_COMPLETION_INDEX
CLIPDEX_HOME=$TMP/no-models; export CLIPDEX_HOME

# run_rc RC DESCRIPTION COMMAND...: output in $TMP/out and $TMP/err
run_rc() {
    want=$1; d=$2; shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else fail "$d: exit $rc, expected $want"; cat "$TMP/err" >&2; fi
}
field() { sed -n "s/.*\"$1\":\([0-9.e+-]*\).*/\1/p" "$TMP/out" | head -n 1; }
# dump DB: one line per file, path and embedding in hex, sorted
dump() {
    sqlite3 "$1" "SELECT hex(f.path), hex(i.embedding) FROM files f JOIN images i ON i.hash = f.hash
                  ORDER BY f.path" > "$2"
}
gen() { sqlite3 "$1" "SELECT value FROM meta WHERE key = 'generation'"; }
count() { sqlite3 "$1" "SELECT count(*) FROM files"; }

MODEL=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 1 --out "$MODEL" --vocab "$SHARED/data/vocab" >/dev/null 2>"$TMP/err" \
    && ok || { cat "$TMP/err" >&2; fail "genmodel failed"; done_; }
# a copy of the photos (the test removes one)
mkdir "$TMP/lib" && cp "$PHOTOS"/*.JPEG "$TMP/lib/" || { fail "copy photos"; done_; }
N=$(ls "$TMP/lib" | wc -l)

run_rc 0 "one-machine index" "$CLIPDEX" index --model "$MODEL" --db "$TMP/one.db" -q "$TMP/lib"
for i in 0 1 2 3; do
    run_rc 0 "index --shard $i/4" "$CLIPDEX" index --model "$MODEL" --db "$TMP/s$i.db" --json \
        --shard "$i/4" "$TMP/lib"
    eval "added$i=\$(field added)"
done
sum=$((added0 + added1 + added2 + added3))
check "the shards add up to the $N photos (got $sum)" [ "$sum" -eq "$N" ]
check "every shard has a share (got $added0 $added1 $added2 $added3)" \
    [ "$added0" -gt 0 ] && [ "$added1" -gt 0 ] && [ "$added2" -gt 0 ] && [ "$added3" -gt 0 ]
run_rc 0 "shard re-run" "$CLIPDEX" index --model "$MODEL" --db "$TMP/s1.db" --json --shard 1/4 "$TMP/lib"
check "a shard re-run embeds nothing (unchanged $(field unchanged) = $added1, embedded $(field embedded))" \
    [ "$(field unchanged)" = "$added1" ] && [ "$(field embedded)" = 0 ]

run_rc 0 "merge" "$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/s0.db" "$TMP/s1.db" "$TMP/s2.db" "$TMP/s3.db"
dump "$TMP/one.db" "$TMP/one.txt"
dump "$TMP/merged.db" "$TMP/merged.txt"
check "one-machine dump has the $N photos" [ "$(wc -l < "$TMP/one.txt")" -eq "$N" ]
check "merged index == one-machine index (paths, embeddings bitwise)" cmp -s "$TMP/one.txt" "$TMP/merged.txt"
g1=$(gen "$TMP/merged.db")
run_rc 0 "merge again" "$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/s3.db" "$TMP/s0.db" "$TMP/s2.db" "$TMP/s1.db"
check "a second merge writes nothing (generation $g1 -> $(gen "$TMP/merged.db"))" [ "$(gen "$TMP/merged.db")" = "$g1" ]
check "a second merge reports 0 files" grep -q ": 0 files added or updated, $N vectors" "$TMP/out"
dump "$TMP/merged.db" "$TMP/merged2.txt"
check "merging twice gives the same index" cmp -s "$TMP/one.txt" "$TMP/merged2.txt"

# searches: several --db equal the merged database
run_rc 0 "search merged" "$CLIPDEX" search --model "$MODEL" --db "$TMP/merged.db" -k 7 "a dog"
cp "$TMP/out" "$TMP/search-merged"
run_rc 0 "search 4 shards" "$CLIPDEX" search --model "$MODEL" --db "$TMP/s0.db" --db "$TMP/s1.db" \
    --db "$TMP/s2.db" --db "$TMP/s3.db" -k 7 "a dog"
check "search over 4 shard databases == search over the merged one" cmp -s "$TMP/out" "$TMP/search-merged"
check "7 results" [ "$(wc -l < "$TMP/out")" -eq 7 ]

# removal only touches the shard's own share
victim=$(sqlite3 "$TMP/s2.db" "SELECT path FROM files ORDER BY path LIMIT 1")
rm -f "$victim"
c0=$(count "$TMP/s0.db")
run_rc 0 "shard 0 after a removal elsewhere" "$CLIPDEX" index --model "$MODEL" --db "$TMP/s0.db" --json --shard 0/4 "$TMP/lib"
check "shard 0 removes nothing (removed $(field removed))" [ "$(field removed)" = 0 ] && [ "$(count "$TMP/s0.db")" = "$c0" ]
run_rc 0 "shard 2 after its removal" "$CLIPDEX" index --model "$MODEL" --db "$TMP/s2.db" --json --shard 2/4 "$TMP/lib"
check "shard 2 removes its photo (removed $(field removed))" [ "$(field removed)" = 1 ]
# a shard run over another shard's database keeps the rows of the others
run_rc 0 "shard 3 into shard 0's db" "$CLIPDEX" index --model "$MODEL" --db "$TMP/s0.db" --json --shard 3/4 "$TMP/lib"
check "another shard over the same db removes none of shard 0's rows" [ "$(field removed)" = 0 ] && \
    [ "$(count "$TMP/s0.db")" -eq $((c0 + added3)) ]

# --shard auto
mkdir "$TMP/few" && cp "$TMP/lib"/n01*.JPEG "$TMP/few/"
auto() { "$CLIPDEX" index --model "$MODEL" --db "$TMP/a$1.db" --json --shard auto "$TMP/few" >"$TMP/out" 2>"$TMP/err"; }
env SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 "$CLIPDEX" index --model "$MODEL" --db "$TMP/ref.db" \
    --json --shard 1/3 "$TMP/few" >/dev/null 2>&1
dump "$TMP/ref.db" "$TMP/ref.txt"
SLURM_ARRAY_TASK_ID=1 SLURM_ARRAY_TASK_COUNT=3 auto 1; dump "$TMP/a1.db" "$TMP/a1.txt"
check "--shard auto with SLURM_ARRAY_TASK_ID/COUNT == --shard 1/3" cmp -s "$TMP/ref.txt" "$TMP/a1.txt"
SLURM_ARRAY_TASK_ID=6 SLURM_ARRAY_TASK_MIN=5 SLURM_ARRAY_TASK_MAX=7 auto 2; dump "$TMP/a2.db" "$TMP/a2.txt"
check "--shard auto with SLURM_ARRAY_TASK_MIN/MAX == --shard 1/3" cmp -s "$TMP/ref.txt" "$TMP/a2.txt"
JOB_COMPLETION_INDEX=1 CLIPDEX_SHARD_COUNT=3 auto 3; dump "$TMP/a3.db" "$TMP/a3.txt"
check "--shard auto with JOB_COMPLETION_INDEX == --shard 1/3" cmp -s "$TMP/ref.txt" "$TMP/a3.txt"
check "the 1/3 share is not empty" [ -s "$TMP/ref.txt" ]
run_rc 2 "--shard auto without a scheduler" "$CLIPDEX" index --model "$MODEL" --db "$TMP/x.db" --shard auto "$TMP/few"
check "names the variables" grep -q "SLURM_ARRAY_TASK_ID" "$TMP/err"
for bad in 4/4 1/0 x/2 1/ /3 -1/3 1/3x 2/1000001; do
    run_rc 2 "--shard $bad refused" "$CLIPDEX" index --model "$MODEL" --db "$TMP/x.db" --shard "$bad" "$TMP/few"
done
check "no database made by refused specs" [ ! -e "$TMP/x.db" ]

# a shard of another model is refused, and the output is left as it was
MODEL2=$TMP/model2
"$GENMODEL" --config tiny --layout hf --seed 2 --out "$MODEL2" --vocab "$SHARED/data/vocab" >/dev/null 2>&1
run_rc 0 "index with model 2" "$CLIPDEX" index --model "$MODEL2" --db "$TMP/other.db" -q "$TMP/few"
run_rc 1 "merge of another model's shard" "$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/other.db"
check "the refusal names the model" grep -q "model" "$TMP/err"
dump "$TMP/merged.db" "$TMP/merged3.txt"
check "the refused merge left the index as it was" cmp -s "$TMP/one.txt" "$TMP/merged3.txt"
run_rc 2 "merge into one of its shards" "$CLIPDEX" merge --db "$TMP/s0.db" "$TMP/s0.db"
run_rc 1 "merge of a missing shard" "$CLIPDEX" merge --db "$TMP/m4.db" "$TMP/nope.db"
run_rc 2 "merge without shards" "$CLIPDEX" merge --db "$TMP/m5.db"
done_
