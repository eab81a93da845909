#!/bin/sh
# tests/test_fuzz.sh - runs every fuzz target, built as a plain program
# ($BUILD/fuzz/fuzz_NAME), over its seed corpus fuzz/corpus/NAME/ and over the
# crash regressions in fuzz/regressions/NAME/ (if any): none may crash.
BUILD=${BUILD:-build}
passed=0; failed=0; skipped=0
for f in "$BUILD"/fuzz/fuzz_*; do
    [ -x "$f" ] || continue
    name=$(basename "$f"); name=${name#fuzz_}
    dirs=""
    for d in "fuzz/corpus/$name" "fuzz/regressions/$name"; do [ -d "$d" ] && dirs="$dirs $d"; done
    if [ -z "$dirs" ]; then skipped=$((skipped + 1)); continue; fi
    # shellcheck disable=SC2086
    if "$f" $dirs >/dev/null 2>&1; then
        passed=$((passed + 1))
    else
        echo "FAIL: fuzz target $name crashed on its corpus"; failed=$((failed + 1))
    fi
done
echo "test_fuzz: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
