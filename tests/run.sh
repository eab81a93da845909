#!/bin/sh
# tests/run.sh - runs every test program under $BUILD/tests and every test_*.sh
# under tests/ (at any depth: tests/test_* test the engine, tests/app/ mirrors app/),
# then prints the totals as "N passed, N failed, N skipped". Each test prints its own
# "name: N passed, N failed, N skipped" line; a test that crashes counts as a failure.
BUILD=${BUILD:-build}
export BUILD
passed=0; failed=0; skipped=0; crashed=""
log=$(mktemp)
progs=$(find "$BUILD/tests" -type f -name 'test_*' ! -name '*.d' ! -name '*.o' 2>/dev/null | LC_ALL=C sort)
scripts=$(find tests -name node_modules -prune -o -type f -name 'test_*.sh' -print | LC_ALL=C sort)
for t in $progs $scripts; do
    [ -f "$t" ] || continue
    case "$t" in *.sh) cmd="sh $t" ;; *) cmd="$t" ;; esac
    start=$(date +%s)
    $cmd >"$log" 2>&1
    rc=$?
    end=$(date +%s)
    line=$(grep -E '^[A-Za-z0-9_.-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    if [ -z "$line" ]; then
        cat "$log"
        echo "$t: no result line (exit $rc)"
        failed=$((failed + 1)); crashed="$crashed $t"
        continue
    fi
    p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(echo "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p'); s=${s:-0}
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; crashed="$crashed $t"; fi
    if [ "$f" -ne 0 ] || [ "$rc" -ne 0 ]; then cat "$log"; fi
    grep -E '^SKIP' "$log" | head -n 5
    echo "$line ($((end - start)) s)"
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done
rm -f "$log"
[ -n "$crashed" ] && echo "crashed or failed:$crashed"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
