#!/bin/sh
# tests/app/video/test_watch.sh - `clipdex watch` on videos whose content is
# known: slideshows of three photos (ffmpeg, 160x120, 10 frames/s) and
# prompts made from those photos' own embeddings (the original video app's
# JSON format, "embedding" entries), so the right answer is known even with
# a seeded random model. Checked: start/end events at the slides' times
# (within one sampling interval), a negative prompt suppressing its matches,
# hysteresis (a 0.3 s flash does not start a match with --dwell 0.5, and
# does with --dwell 0), the focus moving to the input that shows the prompt,
# softmax scores summing to 1, --save-prompts round trip, a clipdex
# prompts.json, a live RTSP source over loopback (clipdex in FFmpeg's RTSP
# listen mode, an ffmpeg encoder pushing to it) whose encoder is killed and
# restarted: the watcher reconnects and goes on, and bad inputs
# (truncated file, no video stream, garbage on stdin, a missing file) give a
# clear error and exit 1 without a crash. Skipped without ffmpeg or ../shared.
NAME=test_watch
. "$(dirname "$0")/../lib.sh"
PY=${PYTHON:-python3}
if ! command -v ffmpeg >/dev/null 2>&1 || [ ! -d "$SHARED/data/images/photos" ] || ! command -v "$PY" >/dev/null 2>&1; then
    skip "needs ffmpeg, $PY and $SHARED"; done_
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-watch.XXXXXX") || { fail mktemp; done_; }
SRV=""
cleanup() { [ -n "$SRV" ] && kill "$SRV" 2>/dev/null; wait 2>/dev/null; :; }
trap 'cleanup; rm -rf "$TMP"' EXIT INT TERM
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 7 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail genmodel; done_; }
FF="ffmpeg -nostdin -loglevel error -y"
i=0
for f in astronaut.png coffee.png chelsea.png; do
    $FF -i "$SHARED/data/images/photos/$f" -vf scale=160:120,setsar=1 "$TMP/s$i.png" || fail "slide $f"
    i=$((i + 1))
done
# show NAME "SLIDE:SECONDS ..." [codec args]: a slideshow
show() {
    out=$1; spec=$2; shift 2
    args=""; filt=""; n=0
    for part in $spec; do
        args="$args -framerate 10 -loop 1 -t ${part#*:} -i $TMP/s${part%%:*}.png"
        filt="$filt[$n]setsar=1[v$n];"; n=$((n + 1))
    done
    k=0; cat=""; while [ $k -lt $n ]; do cat="$cat[v$k]"; k=$((k + 1)); done
    # shellcheck disable=SC2086
    $FF $args -filter_complex "${filt}${cat}concat=n=$n:v=1,fps=10" "$@" -c:v libx264 -pix_fmt yuv420p "$TMP/$out"
}
show abc.mp4 "0:3 1:3 2:3" || fail "slideshow"
"$CLIPDEX" embed --model "$M" --image "$TMP/s0.png" --image "$TMP/s1.png" --image "$TMP/s2.png" >"$TMP/emb.jsonl" 2>/dev/null ||
    fail "embed the slides"
# prompts FILE THRESHOLD "SLIDE[:neg] ...": a video-app prompts file of slide embeddings
prompts() {
    "$PY" - "$TMP/emb.jsonl" "$@" <<'PYEOF'
import json, sys
emb = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
out, thr, spec = sys.argv[2], float(sys.argv[3]), sys.argv[4].split()
entries = [{"text": "slide " + s.split(":")[0], "embedding": emb[int(s.split(":")[0])],
            "negative": s.endswith(":neg"), "ensemble": False} for s in spec]
json.dump({"threshold": thr, "text_prefix": "", "ensemble_template": [], "entries": entries}, open(out, "w"))
PYEOF
}
# events FILE: "event prompt pts" lines of a --json run, frames left out
events() {
    "$PY" - "$1" <<'PYEOF'
import json, sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e["event"] in ("start", "end", "focus"):
        print(e["event"], e.get("prompt", "").replace(" ", "_"), e["input"], "%.2f" % e["pts"])
PYEOF
}
watch() { "$CLIPDEX" watch --model "$M" --quiet --json "$@"; }

# --- start and end at the slides' times ------------------------------------------
prompts "$TMP/p.json" 0.98 "0 1 2"
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --every 0.5 >"$TMP/out.jsonl" 2>"$TMP/err"
check "a file: exit 0" test $? -eq 0
events "$TMP/out.jsonl" >"$TMP/ev"
# expected: slide i starts at 3i and ends at 3i+3 (the end of the file for slide 2), +- 0.5 s
"$PY" - "$TMP/ev" <<'PYEOF' >"$TMP/check" 2>&1
import sys
ev = [l.split() for l in open(sys.argv[1])]
starts = {(p, float(t)) for k, p, i, t in ev if k == "start"}
ends = {(p, float(t)) for k, p, i, t in ev if k == "end"}
bad = []
for s in range(3):
    p = "slide_%d" % s
    st = [t for q, t in starts if q == p]
    en = [t for q, t in ends if q == p]
    if len(st) != 1 or abs(st[0] - 3 * s) > 0.5: bad.append("%s starts %s" % (p, st))
    if len(en) != 1 or abs(en[0] - (3 * s + 3)) > 0.5 + 0.5 * (s == 2): bad.append("%s ends %s" % (p, en))
print("ok" if not bad else "; ".join(bad))
PYEOF
check "start/end at the slides' times: $(cat "$TMP/check")" test "$(cat "$TMP/check")" = ok

# --- negative prompts: slide 1 at a low threshold, slides 0 and 2 negative ----------
prompts "$TMP/neg.json" 0.3 "1 0:neg 2:neg"
watch --prompts "$TMP/neg.json" --input "$TMP/abc.mp4" >"$TMP/out.jsonl" 2>/dev/null
events "$TMP/out.jsonl" | grep -v focus >"$TMP/ev"
check "negative: slide 1 matches [3, 6) only: $(tr '\n' ' ' <"$TMP/ev")" \
    "$PY" -c "
import sys
ev=[l.split() for l in open('$TMP/ev')]
s=[float(t) for k,p,i,t in ev if k=='start' and p=='slide_1']; e=[float(t) for k,p,i,t in ev if k=='end' and p=='slide_1']
sys.exit(not (len(s)==1 and abs(s[0]-3)<=0.5 and len(e)==1 and abs(e[0]-6)<=0.5 and not any(p=='slide_0' for k,p,i,t in ev)))"
prompts "$TMP/noneg.json" 0.3 "1"
watch --prompts "$TMP/noneg.json" --input "$TMP/abc.mp4" >"$TMP/out.jsonl" 2>/dev/null
check "without the negative slide 1 matches earlier too" sh -c "'$PY' -c \"
import json,sys
s=[json.loads(l)['pts'] for l in open('$TMP/out.jsonl') if json.loads(l)['event']=='start']
sys.exit(not (s and min(s) < 2.5))\""

# --- hysteresis: a 0.3 s flash of slide 1 inside slide 0 ---------------------------
show flash.mp4 "0:2 1:0.3 0:2" || fail "flash clip"
prompts "$TMP/p1.json" 0.98 "1"
watch --prompts "$TMP/p1.json" --input "$TMP/flash.mp4" --every 0.1 --dwell 0.5 >"$TMP/out.jsonl" 2>/dev/null
check "a 0.3 s flash starts no match with --dwell 0.5" test "$(events "$TMP/out.jsonl" | grep -c '^start')" -eq 0
watch --prompts "$TMP/p1.json" --input "$TMP/flash.mp4" --every 0.1 --dwell 0 --hold 0 >"$TMP/out.jsonl" 2>/dev/null
check "it does with --dwell 0 (the test can see it)" test "$(events "$TMP/out.jsonl" | grep -c '^start')" -eq 1

# --- the focus among two inputs --------------------------------------------------
show a.mp4 "1:3 0:3" && show b.mp4 "0:3 1:3" || fail "focus clips"
watch --prompts "$TMP/p1.json" --input "$TMP/a.mp4" --input "$TMP/b.mp4" --focus-dwell 1 --every 0.25 >"$TMP/out.jsonl" 2>/dev/null
events "$TMP/out.jsonl" | grep '^focus' >"$TMP/ev"
check "focus: input 0 first, then input 1 after 3 s + the dwell: $(tr '\n' ' ' <"$TMP/ev")" "$PY" -c "
import sys
f=[l.split() for l in open('$TMP/ev')]
sys.exit(not (len(f)==2 and f[0][2]=='0' and float(f[0][3])<0.5 and f[1][2]=='1' and 3.5<=float(f[1][3])<=4.5))"

# --- softmax scores -------------------------------------------------------------------
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --score softmax --threshold 0.5 --frames >"$TMP/out.jsonl" 2>/dev/null
check "softmax: every frame's scores sum to 1 and slide i wins its slide" "$PY" -c "
import json,sys
fr=[json.loads(l) for l in open('$TMP/out.jsonl') if json.loads(l)['event']=='frame']
ok=len(fr)>=17 and all(abs(sum(f['scores'])-1)<1e-6 for f in fr)
ok=ok and all(max(range(3),key=lambda j:f['scores'][j])==min(int(f['pts']//3),2) for f in fr if f['pts']%3>0.2)
sys.exit(not ok)"

# --- prompts files: --save-prompts round trip, clipdex prompts.json -----------------
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --save-prompts "$TMP/saved.json" >"$TMP/a.jsonl" 2>/dev/null
watch --prompts "$TMP/saved.json" --input "$TMP/abc.mp4" >"$TMP/b.jsonl" 2>/dev/null
check "--save-prompts: the saved file gives the same events" cmp -s "$TMP/a.jsonl" "$TMP/b.jsonl"
"$CLIPDEX" prompts --model "$M" --out "$TMP/cp.json" "a cat" "a dog" >/dev/null 2>&1
watch --prompts "$TMP/cp.json" --input "$TMP/abc.mp4" --frames >"$TMP/out.jsonl" 2>"$TMP/err"
check "a clipdex prompts.json is read (2 prompts a frame)" "$PY" -c "
import json,sys
fr=[json.loads(l) for l in open('$TMP/out.jsonl') if json.loads(l)['event']=='frame']
sys.exit(not (fr and all(len(f['scores'])==2 for f in fr)))"
"$CLIPDEX" prompts --model "$M" --out "$TMP/va.json" --format video-app "a cat" "a dog" >/dev/null 2>&1
watch --prompts "$TMP/va.json" --input "$TMP/abc.mp4" --frames >"$TMP/va.jsonl" 2>/dev/null
check "clipdex prompts --format video-app: the same scores as its clipdex-format file (1e-6)" "$PY" -c "
import json,sys
a=[json.loads(l) for l in open('$TMP/out.jsonl')]; b=[json.loads(l) for l in open('$TMP/va.jsonl')]
fa=[f['scores'] for f in a if f['event']=='frame']; fb=[f['scores'] for f in b if f['event']=='frame']
sys.exit(not (fa and len(fa)==len(fb) and all(abs(x-y)<=1e-6 for p,q in zip(fa,fb) for x,y in zip(p,q))))"
watch --text "a cat" --negative "a dog" --input "$TMP/abc.mp4" >/dev/null 2>"$TMP/err"
check "--text and --negative run" test $? -eq 0

# --- --db: the scored frames go into an index, searchable as time ranges ----------
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --every 0.5 --frames --db "$TMP/w.db" >"$TMP/db.jsonl" 2>"$TMP/err"
check "--db: exit 0" test $? -eq 0
# every frame event is one stored sample: same times (pts), and the stored
# embedding's cosines with the prompts (the slides) are the event's (1e-6)
check "--db: one sample per scored frame, at its pts, with its embedding" "$PY" - "$TMP/db.jsonl" "$TMP/w.db" "$TMP/emb.jsonl" "$TMP/abc.mp4" <<'PYEOF'
import json, sqlite3, struct, sys, os
fr = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "frame"]
emb = [json.loads(l)["embedding"] for l in open(sys.argv[3])]
db = sqlite3.connect(sys.argv[2])
rows = db.execute("SELECT f.path, s.seq, s.t, s.embedding, length(s.thumb) FROM frames s JOIN files f ON f.id = s.file_id ORDER BY s.seq").fetchall()
ok = len(fr) >= 17 and len(rows) == len(fr)
ok = ok and all(r[0] == os.path.realpath(sys.argv[4]).encode() and r[1] == i and abs(r[2] - e["pts"]) < 1e-9 for i, (r, e) in enumerate(zip(rows, fr)))
for r, e in zip(rows, fr):
    v = struct.unpack("<%df" % (len(r[3]) // 4), r[3])
    cos = [sum(a * b for a, b in zip(v, p)) for p in emb]
    ok = ok and all(abs(c - d) <= 1e-6 for c, d in zip(cos, e["cosines"])) and (r[4] or 0) > 100
sys.exit(not ok)
PYEOF
"$CLIPDEX" search --model "$M" --db "$TMP/w.db" --json -k 3 --image "$TMP/s1.png" >"$TMP/hits.jsonl" 2>"$TMP/err"
check "--db: searching by slide 1's image finds the video at [3, 6) s: $(head -c 300 "$TMP/hits.jsonl")" "$PY" -c "
import json,sys
h=[json.loads(l) for l in open('$TMP/hits.jsonl')]
sys.exit(not (h and h[0]['path'].endswith('abc.mp4') and 2.5<=h[0]['start']<=3.5 and 5<=h[0]['end']<=6 and 3<=h[0]['best_time']<6))"
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --every 1 --db "$TMP/w.db" >/dev/null 2>&1
check "--db: watching the file again replaces its samples" test "$("$PY" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM frames').fetchone()[0])" "$TMP/w.db")" -eq 9
"$GENMODEL" --config tiny --layout hf --seed 8 --out "$TMP/other" --vocab "$SHARED/data/vocab" >/dev/null 2>&1
"$CLIPDEX" watch --model "$TMP/other" --quiet --text cat --input "$TMP/abc.mp4" --db "$TMP/w.db" >/dev/null 2>"$TMP/err"
rc=$?
nframes() { "$PY" -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM frames').fetchone()[0])" "$1"; }
check "--db: another model's index is refused (exit $rc), its samples kept" sh -c "[ $rc -ne 0 ] && grep -qi model '$TMP/err' && [ $(nframes "$TMP/w.db") -eq 9 ]"

# --- bad inputs ------------------------------------------------------------------------
head -c 4000 "$TMP/abc.mp4" >"$TMP/cut.mp4"
$FF -f lavfi -i sine=d=1 "$TMP/sound.mp4"
for bad in cut.mp4 sound.mp4 missing.mp4; do
    watch --prompts "$TMP/p.json" --input "$TMP/$bad" >"$TMP/out.jsonl" 2>"$TMP/err"
    rc=$?
    check "bad input $bad: exit 1 (got $rc) with the reason on stderr" sh -c "[ $rc -eq 1 ] && grep -q '$bad' '$TMP/err'"
done
head -c 20000 /dev/urandom | watch --prompts "$TMP/p.json" --input - --retries 0 >"$TMP/out.jsonl" 2>"$TMP/err"
rc=$?
check "garbage on stdin: exit 1 (got $rc), an error line" sh -c "[ $rc -eq 1 ] && grep -q 'input 0' '$TMP/err'"
watch --prompts "$TMP/p.json" --input "$TMP/abc.mp4" --input "$TMP/cut.mp4" >"$TMP/out.jsonl" 2>"$TMP/err"
rc=$?
check "one bad input of two: the other is watched (exit 1)" sh -c "[ $rc -eq 1 ] && grep -q '\"start\"' '$TMP/out.jsonl'"

# --- a live RTSP source killed and restarted ----------------------------------------
# clipdex is the RTSP server (rtsp-listen://, FFmpeg's RTSP listen mode) and an
# ffmpeg encoder pushes a looping slideshow to it over loopback; the encoder is
# killed and started again (retrying until the watcher listens again).
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
push() {
    (while ! ffmpeg -nostdin -loglevel quiet -re -stream_loop -1 -i "$TMP/abc.mp4" -c copy -f rtsp \
            -rtsp_transport tcp "rtsp://127.0.0.1:$PORT/live"; do sleep 0.3; done) &
    SRV=$!
}
"$CLIPDEX" watch --model "$M" --json --frames --prompts "$TMP/p.json" --input "rtsp-listen://127.0.0.1:$PORT/live" \
    --retries 30 --timeout 3 --db "$TMP/live.db" >"$TMP/live.jsonl" 2>"$TMP/live.err" &
W=$!
sleep 1
push
sleep 6
kill "$SRV" 2>/dev/null; pkill -f "rtsp://127.0.0.1:$PORT/live" 2>/dev/null; wait "$SRV" 2>/dev/null
sleep 2
push
sleep 8
kill -INT "$W" 2>/dev/null
wait "$W"
rc=$?
kill "$SRV" 2>/dev/null; pkill -f "rtsp://127.0.0.1:$PORT/live" 2>/dev/null; wait "$SRV" 2>/dev/null; SRV=""
check "live: Ctrl-C ends with 130 (got $rc) and a summary" sh -c "[ $rc -eq 130 ] && grep -q 'frames scored' '$TMP/live.err'"
check "live: the break is reported and frames go on after it" "$PY" -c "
import json,sys
ev=[json.loads(l) for l in open('$TMP/live.jsonl')]
r=[i for i,e in enumerate(ev) if e['event']=='reconnect']
ok=r and sum(e['event']=='frame' for e in ev[:r[0]])>=3 and sum(e['event']=='frame' for e in ev[r[-1]:])>=3
ok=ok and all('wall' in e for e in ev if e['event']=='frame')
sys.exit(not ok)"
check "live: the reconnect is on stderr" grep -q 'reconnecting' "$TMP/live.err"
check "live: matches were found in the stream" grep -q '"start"' "$TMP/live.jsonl"
check "live --db: every scored frame stored under the URI at its wall-clock time" "$PY" - "$TMP/live.jsonl" "$TMP/live.db" "rtsp-listen://127.0.0.1:$PORT/live" <<'PYEOF'
import json, sqlite3, sys
fr = [e for e in map(json.loads, open(sys.argv[1])) if e["event"] == "frame"]
rows = sqlite3.connect(sys.argv[2]).execute("SELECT f.path, s.t FROM frames s JOIN files f ON f.id = s.file_id ORDER BY s.seq").fetchall()
sys.exit(not (fr and len(rows) == len(fr) and all(r[0] == sys.argv[3].encode() and abs(r[1] - e["wall"]) < 2e-6 for r, e in zip(rows, fr))))
PYEOF
done_
