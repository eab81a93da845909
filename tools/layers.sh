#!/bin/sh
# tools/layers.sh - checks the layering of app/ (docs/layout.md): every
# folder uses only the folders below it in LAYERS, by its #includes and by
# the symbols its objects call; no two files call each other, directly or
# round a loop (tsort over the object files' symbol graph); and only app/cli
# prints to the terminal or exits. Prints the folder graph and the problems;
# exits 1 if there are any. Usage: sh tools/layers.sh [BUILD] (after `make`)
BUILD=${1:-build}
# folder: the folders it may use (the engine, include/clipdex.h, is below all)
LAYERS='cli: serve video person track zeroshot hub ann store util
ann: store util
hub: util
serve: video person zeroshot ann store util
video: track person zeroshot store util
person: store util
track:
zeroshot: store util
store: util
util:'
bad=0
allowed() { # allowed FROM TO
    [ "$1" = "$2" ] && return 0
    printf '%s\n' "$LAYERS" | awk -v f="$1" -v t="$2" -F': *' \
        '$1 == f { n = split($2, a, " "); for (i = 1; i <= n; i++) if (a[i] == t) ok = 1 } END { exit !ok }'
}
known() { printf '%s\n' "$LAYERS" | grep -q "^$1:"; }
problem() { echo "$*"; bad=1; }

# 1. folders in app/ and their #includes of other folders
for d in app/*/; do
    d=${d#app/}; d=${d%/}
    known "$d" || problem "app/$d/ is not in the LAYERS table of tools/layers.sh: give it a place"
done
inc=$(grep -rHoE '^#include "[a-z_]+/' app | sed -E 's|^app/([a-z_]+)/[^:]*:#include "([a-z_]+)/|\1 \2|' | sort -u)
echo "folder includes (user -> used):"
printf '%s\n' "$inc" | awk '$1 != $2 { print "  " $1 " -> " $2 }'
printf '%s\n' "$inc" | while read -r from to; do
    allowed "$from" "$to" || echo "app/$from/ includes app/$to/, which is not below it"
done | grep . && bad=1

# 2. calls between files, from the objects (catches local prototypes too)
objs=$(find "$BUILD/obj/app" -name '*.o' 2>/dev/null | sort)
if [ -z "$objs" ]; then
    problem "no objects under $BUILD/obj/app (run make first)"
else
    # "user used" pairs of files, by defined and undefined symbols
    edges=$(for o in $objs; do nm "$o" | sed "s|^|$o |"; done | awk -v pre="$BUILD/obj/app/" '
        { f = substr($1, length(pre) + 1); sub(/\.o$/, ".c", f) }
        NF == 4 && $3 ~ /^[TDBR]$/ { def[$4] = f }
        NF == 3 && $2 == "U" { n++; uf[n] = f; us[n] = $3 }
        END { for (i = 1; i <= n; i++) if ((us[i] in def) && def[us[i]] != uf[i]) print uf[i], def[us[i]] }' | sort -u)
    printf '%s\n' "$edges" | while read -r from to; do
        allowed "${from%%/*}" "${to%%/*}" || echo "app/$from calls app/$to, which is not below it"
    done | grep . && bad=1
    loops=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null)
    if [ -n "$loops" ]; then problem "files that call each other:"; echo "$loops"; fi
    echo "file calls: $(printf '%s\n' "$edges" | grep -c .), loops: $([ -n "$loops" ] && echo yes || echo none)"
fi

# 3. only app/cli prints or exits
out=$(grep -rnE '(^|[^_a-z])(printf|puts|perror|exit|abort)\(|f(printf|puts|putc|write)\([^;]*std(out|err)\)?' \
    app --include='*.c' --include='*.cpp' | grep -v '^app/cli/')
[ -n "$out" ] && problem "printing or exiting outside app/cli:" && echo "$out"
[ "$bad" -eq 0 ] && echo "layers: ok"
exit "$bad"
