# tests/app/lib.sh - sourced by the end-to-end tests of the clipdex program
# (tests/app/*/test_*.sh, run from the repository root) once they have set
# NAME: the paths they use, the pass/fail/skip counters and the result line
# that tests/run.sh reads, and two small checks.
BUILD=${BUILD:-build}
CLIPDEX=$BUILD/clipdex
SHARED=${CLIPDEX_SHARED:-../shared}
GENMODEL=$BUILD/tools/genmodel
passed=0; failed=0; skipped=0

ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL $NAME: $*" >&2; }
skip() { skipped=$((skipped + 1)); echo "SKIP $NAME: $*" >&2; }
# check DESCRIPTION COMMAND...: passes when COMMAND succeeds.
check() { d=$1; shift; if "$@"; then ok; else fail "$d"; fi; }
# near A B TOL: |A - B| <= TOL
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d <= t) }'; }
# cleanup: run by done_ before $TMP goes (tests/app/serve/server.sh stops its server there)
cleanup() { :; }
# done_: removes $TMP, prints the result line and exits (1 if anything failed)
done_() {
    cleanup
    [ -n "$TMP" ] && rm -rf "$TMP"
    echo "$NAME: $passed passed, $failed failed, $skipped skipped"
    [ "$failed" -eq 0 ]
    exit $?
}
