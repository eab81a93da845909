#!/bin/sh
# tests/test_symbols.sh - every symbol libclipdex.so exports is prefixed
# clipdex_, and every function the public header declares is exported.
BUILD=${BUILD:-build}
so="$BUILD/libclipdex.so"
passed=0; failed=0
if [ ! -f "$so" ]; then echo "test_symbols: 0 passed, 1 failed, 0 skipped"; exit 1; fi
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^clipdex_' | grep -v '^_' )
if [ -n "$bad" ]; then echo "exported without the clipdex_ prefix:"; echo "$bad"; failed=$((failed + 1)); else passed=$((passed + 1)); fi
for fn in $(grep -oE 'clipdex_[a-z0-9_]+\(' include/clipdex.h | tr -d '(' | sort -u); do
    if nm -D --defined-only "$so" | awk '{print $3}' | grep -qx "$fn"; then
        passed=$((passed + 1))
    else
        echo "declared in clipdex.h but not exported: $fn"; failed=$((failed + 1))
    fi
done
echo "test_symbols: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
