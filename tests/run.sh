#!/bin/sh
# tests/run.sh - runs every test program under $BUILD/tests and every test_*.sh
# under tests/ (at any depth: tests/test_* test the engine, tests/app/ mirrors app/),
# then prints the totals as "N passed, N failed, N skipped". Each test prints its own
# "name: N passed, N failed, N skipped" line; a test that crashes counts as a failure.
#
# Emulated runs (make ARCH=aarch64 test): CLIPDEX_EXEC is the emulator prefix
# ("qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a53"). The suite then
# runs against $BUILD.emu, a shadow of $BUILD (removed at the end) in which
# every program (clipdex, tools/, tests/, fuzz/) is a two-line script that
# execs the real one under the prefix and everything else a symbolic link, so
# the test scripts run "$BUILD/clipdex" unchanged. CLIPDEX_EXEC stays
# exported for the few tests that must know (under emulation without binfmt
# a program cannot exec another one; the host compiler cannot link it).
BUILD=${BUILD:-build}
if [ -n "$CLIPDEX_EXEC" ]; then
    real=$(cd "$BUILD" && pwd) || exit 1
    shadow=${BUILD%/}.emu # beside $BUILD, so that a relative BUILD stays relative
    rm -rf "$shadow" && mkdir -p "$shadow" || exit 1
    trap 'rm -rf "$shadow"' EXIT
    (cd "$real" && find . -name obj -prune -o -type f ! -name '*.d' -print) | while read -r f; do
        mkdir -p "$shadow/${f%/*}"
        case "$f" in
        *.so | *.so.* | *.a | *.pc) ln -s "$real/$f" "$shadow/$f" ;;
        *) if [ -x "$real/$f" ]; then
               printf '#!/bin/sh\nexec %s %s "$@"\n' "$CLIPDEX_EXEC" "$real/${f#./}" >"$shadow/$f"
               chmod +x "$shadow/$f"
           else ln -s "$real/$f" "$shadow/$f"; fi ;;
        esac
    done
    [ -d "$real/obj" ] && ln -s "$real/obj" "$shadow/obj"
    echo "emulated: $CLIPDEX_EXEC (programs of $BUILD)"
    BUILD=$shadow
    export CLIPDEX_EXEC
fi
export BUILD
passed=0; failed=0; skipped=0; crashed=""
log=$(mktemp)
progs=$(find "$BUILD/tests" -type f -name 'test_*' ! -name '*.d' ! -name '*.o' 2>/dev/null | LC_ALL=C sort)
scripts=$(find tests -name node_modules -prune -o -type f -name 'test_*.sh' -print | LC_ALL=C sort)
# CLIPDEX_TESTS="test_a test_b.sh": only the tests of these names (make test-aarch64).
# emu_skip: why a test cannot run under emulation (counted as skipped there).
emu_skip() {
    [ -n "$CLIPDEX_EXEC" ] || return 1
    case "$1" in
    */test_decode) echo "FFmpeg's arm64 H.264 decoding spins forever under qemu-user 7.2" ;;
    */test_install.sh) echo "the host compiler cannot link the example against the cross-built library" ;;
    *) return 1 ;;
    esac
}
for t in $progs $scripts; do
    [ -f "$t" ] || continue
    if [ -n "$CLIPDEX_TESTS" ]; then
        case " $CLIPDEX_TESTS " in *" ${t##*/} "*) ;; *) continue ;; esac
    fi
    if why=$(emu_skip "$t"); then
        echo "SKIP $t: $why"; skipped=$((skipped + 1)); continue
    fi
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
