# tests/app/serve/server.sh - sourced after tests/app/lib.sh by the tests
# that run `clipdex serve` (test_serve.sh, test_http_docs.sh): starting a
# server on 127.0.0.1 and a free port, stopping it with a look at its log
# for sanitizer reports, and a done_ and an exit trap that always stop it.
# start_server needs $TMP and $M (the model directory).
SRV_PID=""

# stop_server: SIGTERM, wait, and fail on sanitizer reports in the log (leaks
# are reported at exit, after the last request)
stop_server() {
    if [ -n "$SRV_PID" ]; then
        kill "$SRV_PID" 2>/dev/null; wait "$SRV_PID" 2>/dev/null; SRV_PID=""
        if [ -f "$TMP/serve.log" ] && grep -Eq 'Sanitizer|runtime error' "$TMP/serve.log"; then
            sed -n '/Sanitizer\|runtime error/,+12p' "$TMP/serve.log" >&2; fail "sanitizer report from the server"
        fi
    fi
}
cleanup() { stop_server; }
trap 'stop_server; [ -n "$TMP" ] && rm -rf "$TMP"' EXIT INT TERM

# start_server ARGS...: `clipdex serve --model $M ARGS...` with 2 threads on
# 127.0.0.1 and a free port, its stderr in $TMP/serve.log; sets PORT and U.
# Fails when the server has not said where it listens within 10 s.
start_server() {
    stop_server
    rm -f "$TMP/serve.log"
    "$CLIPDEX" serve --model "$M" --listen 127.0.0.1:0 --threads 2 "$@" 2>"$TMP/serve.log" &
    SRV_PID=$!
    i=0
    while [ $i -lt 100 ]; do
        grep -q 'listening on' "$TMP/serve.log" 2>/dev/null && break
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1; i=$((i + 1))
    done
    PORT=$(sed -n 's|.*listening on http://127.0.0.1:\([0-9]*\)/.*|\1|p' "$TMP/serve.log")
    U=http://127.0.0.1:$PORT
    [ -n "$PORT" ]
}

# first_server ARGS...: start_server, or the end of the test: skipped
# (counted) when this clipdex was built without libmicrohttpd, failed when
# the server did not start.
first_server() {
    start_server "$@" && return 0
    if grep -q 'without libmicrohttpd' "$TMP/serve.log"; then
        skip "this clipdex was built without libmicrohttpd"; done_
    fi
    cat "$TMP/serve.log" >&2; fail "the server did not start"; done_
}
