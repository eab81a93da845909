#!/bin/sh
# tests/app/serve/load/serve_load.sh - the load test of `clipdex serve` with wrk:
# POST /v1/embed/text and POST /v1/search at 1, 8 and 64 connections for
# DURATION seconds each, against a server on a free loopback port. Prints a
# Markdown table (requests/s, p50, p99, errors) and the batching counters.
# Usage: sh tests/app/serve/load/serve_load.sh CLIPDEX MODEL DB [DURATION]
# (DB must be an index made with MODEL; not part of `make test`.)
set -eu
CLIPDEX=$1; MODEL=$2; DB=$3; DUR=${4:-30}
HERE=$(cd "$(dirname "$0")" && pwd)
LOG=$(mktemp)
"$CLIPDEX" serve --model "$MODEL" --db "$DB" --listen 127.0.0.1:0 2>"$LOG" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -f "$LOG"' EXIT INT TERM
i=0; until grep -q 'listening on' "$LOG"; do sleep 0.2; i=$((i + 1)); [ $i -lt 300 ] || { cat "$LOG"; exit 1; }; done
U=$(sed -n 's|.*listening on \(http://[^ ]*\)/ .*|\1|p' "$LOG")
echo "| route | connections | requests/s | p50 ms | p99 ms | errors |"
echo "|---|---:|---:|---:|---:|---:|"
for route in embed/text search; do
    case $route in
        embed/text) body='{"texts":["a photo of a dog playing on the beach"]}' ;;
        search) body='{"text":"a photo of a dog playing on the beach","k":10}' ;;
    esac
    for c in 1 8 64; do
        t=$c; [ "$t" -gt 2 ] && t=2
        line=$(WRK_BODY=$body wrk -t"$t" -c"$c" -d"${DUR}s" --timeout 10s -s "$HERE/post.lua" "$U/v1/$route" | grep '^RESULT')
        eval "$(echo "$line" | sed 's/^RESULT //')"
        echo "| /v1/$route | $c | $rps | $p50_ms | $p99_ms | $errors |"
    done
done
echo
echo "batching: $(curl -s "$U/v1/info" | sed 's/.*"batching":\({[^}]*}\).*/\1/')"
