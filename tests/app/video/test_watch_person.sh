#!/bin/sh
# tests/app/video/test_watch_person.sh - `clipdex watch --detector person`:
# a lossless video pans across the detector test's scene (three people
# pasted at known places, tests/golden/detect/scene.png) at 80 px/s, so
# every person's box is known at every time, and one walks in from the
# right. Checked: three tracks and no identity switch (each track id stays on
# one person, each person keeps one id while over 60 px of them are in
# view; a sliver found again after the person was lost may get a new id), every crop's box on its person's
# known place (IoU >= 0.8; 0.3 while under 120 px of them are in view), crops of one track at least --crop-every apart and at most
# --max-crops per frame, a frame's score the best of its tracks', start
# events naming a track, a second input without people never matching nor
# taking the focus, and a crop's cosine equal to that of the same
# square-padded crop cut by ffmpeg and embedded by `clipdex embed` (1e-5):
# the person mode embeds exactly the person; --db stores the frames and the
# crops with their boxes, searchable with search --persons. Needs ffmpeg, python3 and the
# detector (sh tools/get_detector.sh).
NAME=test_watch_person
. "$(dirname "$0")/../lib.sh"
PY=${PYTHON:-python3}
DET=${CLIPDEX_DETECTOR:-build/models/nanodet}
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v "$PY" >/dev/null 2>&1 || [ ! -d "$SHARED/data/vocab" ] && [ ! -f "$SHARED/data/vocab" ]; then
    skip "needs ffmpeg, $PY and $SHARED"; done_
fi
[ -f "$DET/nanodet.json" ] || { skip "no detector in $DET (sh tools/get_detector.sh)"; done_; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-wperson.XXXXXX") || { fail mktemp; done_; }
trap 'rm -rf "$TMP"' EXIT INT TERM
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 7 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail genmodel; done_; }
FF="ffmpeg -nostdin -loglevel error -y"
# 4 s at 10 frames/s; frame n shows scene x in [8n, 8n + 640) (80 px/s, lossless RGB)
$FF -loop 1 -framerate 10 -i tests/golden/detect/scene.png -t 4 -vf "crop=640:540:8*n:0" \
    -c:v libx264rgb -crf 0 -pix_fmt rgb24 "$TMP/pan.mkv" || { fail "ffmpeg pan"; done_; }

"$CLIPDEX" watch --model "$M" --quiet --json --frames --detector person --detector-model "$DET" \
    --text "a person" --text "an astronaut" --threshold -1 --dwell 0 --every 0.1 --crop-every 1 \
    --input "$TMP/pan.mkv" >"$TMP/out.jsonl" 2>"$TMP/err"
check "watch --detector person exits 0" [ $? -eq 0 ]

check "tracks follow the pasted people, no identity switch, crop timing, frame scores" \
    "$PY" - "$TMP/out.jsonl" tests/golden/detect/scene.pasted.json <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
rects = json.load(open(sys.argv[2]))["person_rects"]
def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0); ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / u if u > 0 else 0
def expected(r, t):  # the pasted rectangle in the frame at time t, clipped to the window
    dx = 8 * round(t * 10)
    return [max(r[0] - dx, 0), r[1], min(r[2] - dx, 640), r[3]]
tracks = [e for e in ev if e["event"] == "track"]
person_of = {}
for e in tracks:
    best = max(range(3), key=lambda p: iou(e["box"], expected(rects[p], e["pts"])))
    x = expected(rects[best], e["pts"])
    u = iou(e["box"], x)
    # a sliver of a person walking in is found only in part
    assert u >= (0.8 if x[2] - x[0] >= 120 else 0.3), ("box off its person", e["track"], e["pts"], e["box"], u)
    if x[2] - x[0] < 60 and e["track"] not in person_of: continue  # a sliver after the person was lost
    assert person_of.setdefault(e["track"], best) == best, ("identity switch", e["track"])
assert len(person_of) == 3 and len(set(person_of.values())) == 3, person_of
tracks = [e for e in tracks if e["track"] in person_of]
# the third person walks in: its first crop once a fair part is in view
first = {}
for e in tracks: first.setdefault(person_of[e["track"]], e["pts"])
assert first[0] == 0 and first[1] == 0 and 0.8 <= first[2] <= 2.5, first
# crops of one track >= 1 s apart; at most 4 per frame
last = {}
for e in tracks:
    if e["track"] in last: assert e["pts"] - last[e["track"]] >= 1 - 1e-6, e
    last[e["track"]] = e["pts"]
# a frame's scores are the best of its tracks' latest crops
latest, alive = {}, {}
for e in ev:
    if e["event"] == "track": latest[e["track"]] = e["scores"]
    if e["event"] == "frame":
        assert e["people"] >= 1
        want = [max(s[j] for s in latest.values()) for j in range(2)]
        # tracks that left are dropped from the max: the frame's score may only be lower
        assert all(e["scores"][j] <= want[j] + 1e-9 for j in range(2)), (e, want)
starts = [e for e in ev if e["event"] == "start"]
assert starts and all(e.get("track", 0) > 0 for e in starts), starts
PY

# the first crop of track 1, cut by ffmpeg from frame 0 and padded to a square, embedded
"$PY" - "$TMP/out.jsonl" >"$TMP/crop.args" <<'PY'
import json, math, sys
e = next(json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["event"] == "track")
x0, y0, x1, y1 = e["box"]
l, t = max(math.floor(x0), 0), max(math.floor(y0), 0)
r, b = min(math.ceil(x1), 640), min(math.ceil(y1), 540)
w, h = r - l, b - t
s = max(w, h)
print("crop=%d:%d:%d:%d,pad=%d:%d:%d:%d:black %s" % (w, h, l, t, s, s, (s - w) // 2, (s - h) // 2, " ".join("%.9g" % c for c in e["cosines"])))
PY
read -r filt c0 c1 <"$TMP/crop.args"
$FF -i "$TMP/pan.mkv" -vf "select=eq(n\,${PTS_FRAME:-0}),$filt" -frames:v 1 "$TMP/crop.png" || fail "ffmpeg crop"
"$CLIPDEX" embed --model "$M" --image "$TMP/crop.png" --text "a person" --text "an astronaut" >"$TMP/emb.jsonl" 2>/dev/null
check "a crop's cosines are those of the same padded crop embedded by clipdex embed (1e-5)" "$PY" - "$TMP/emb.jsonl" "$c0" "$c1" <<'PY'
import json, sys
e = [json.loads(l)["embedding"] for l in open(sys.argv[1])]
got = [float(sys.argv[2]), float(sys.argv[3])]
want = [sum(a * b for a, b in zip(e[0], e[k])) for k in (1, 2)]
assert all(abs(g - w) <= 1e-5 for g, w in zip(got, want)), (got, want)
PY

"$CLIPDEX" watch --model "$M" --quiet --json --frames --detector person --detector-model "$DET" \
    --text "a person" --max-crops 1 --crop-every 0 --every 0.1 --input "$TMP/pan.mkv" >"$TMP/one.jsonl" 2>/dev/null
check "--max-crops 1: at most one crop per frame, every frame has one" "$PY" - "$TMP/one.jsonl" <<'PY'
import json, sys, collections
ev = [json.loads(l) for l in open(sys.argv[1])]
n = collections.Counter(e["pts"] for e in ev if e["event"] == "track")
frames = [e["pts"] for e in ev if e["event"] == "frame"]
assert max(n.values()) == 1 and len(n) == len(frames), (n, len(frames))
PY

# multi-stream: an input without people never matches nor takes the focus
# (with --threshold -1 a frame scored 0 for want of people would match)
$FF -f lavfi -i color=c=0x8ca08c:s=640x540:r=10 -t 4 -c:v libx264rgb -crf 0 -pix_fmt rgb24 "$TMP/empty.mkv" || fail "ffmpeg empty"
"$CLIPDEX" watch --model "$M" --quiet --json --detector person --detector-model "$DET" --text "a person" \
    --threshold -1 --dwell 0 --every 0.1 --input "$TMP/empty.mkv" --input "$TMP/pan.mkv" >"$TMP/two.jsonl" 2>/dev/null
check "two inputs: matches and the focus only on the one with people" "$PY" - "$TMP/two.jsonl" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
kinds = [(e["event"], e["input"]) for e in ev if e["event"] in ("start", "focus", "end")]
assert ("start", 1) in kinds and ("focus", 1) in kinds, kinds
assert all(i == 1 for _, i in kinds), kinds
PY

"$CLIPDEX" watch --model "$M" --quiet --detector car --text x --input "$TMP/pan.mkv" 2>"$TMP/err" >/dev/null
check "--detector car is a usage error" [ $? -eq 2 ]
# --db in person mode: every scored frame (embedded whole) and every crop with its box go into the index
"$CLIPDEX" watch --model "$M" --quiet --json --frames --detector person --detector-model "$DET" --text "a person" \
    --every 0.5 --crop-every 1 --db "$TMP/w.db" --input "$TMP/pan.mkv" >"$TMP/db.jsonl" 2>"$TMP/err"
check "watch --db --detector person exits 0" [ $? -eq 0 ]
sqlite3 "$TMP/w.db" "SELECT fr.t, p.x0, p.y0, p.x1, p.y1, p.score, p.width, p.height FROM persons p
                     JOIN frames fr ON fr.id = p.frame_id ORDER BY fr.t, p.id" >"$TMP/db.rows" 2>/dev/null
check "the index holds the scored frames and, per frame, the crops of its track events (same boxes)" \
    "$PY" - "$TMP/db.jsonl" "$TMP/db.rows" "$(sqlite3 "$TMP/w.db" 'SELECT count(*) FROM frames WHERE persons IS NOT NULL')" <<'PY'
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
frames = [e for e in ev if e["event"] == "frame"]
tracks = sorted(((e["pts"], e["box"]) for e in ev if e["event"] == "track"), key=lambda x: x[0])
rows = [[float(v) for v in l.strip().split("|")] for l in open(sys.argv[2])]
assert int(sys.argv[3]) == len(frames) > 0, (sys.argv[3], len(frames))
assert len(rows) == len(tracks) > 0, (len(rows), len(tracks))
for r, (t, box) in zip(sorted(rows, key=lambda r: r[0]), tracks):
    assert abs(r[0] - t) < 1e-6 and all(abs(a - b) < 1e-3 for a, b in zip(r[1:5], box)), (r, t, box)
    assert 0.35 <= r[5] <= 1 and r[6:8] == [640, 540], r
PY
"$CLIPDEX" search --model "$M" --db "$TMP/w.db" --persons --json -k 1 --image "$TMP/crop.png" >"$TMP/s.jsonl" 2>/dev/null
check "search --persons over the watched video finds the first track's person at its time" "$PY" - "$TMP/s.jsonl" "$TMP/out.jsonl" <<'PY'
import json, sys
h = json.loads(open(sys.argv[1]).readline())
e = next(json.loads(l) for l in open(sys.argv[2]) if json.loads(l)["event"] == "track")
assert h["path"].endswith("pan.mkv") and abs(h["time"] - e["pts"]) < 1e-6 and h["similarity"] > 0.99, (h, e)
PY
"$CLIPDEX" watch --model "$M" --quiet --detector person --detector-model "$DET" --max-crops 2 --db "$TMP/w.db" \
    --text x --input "$TMP/pan.mkv" 2>"$TMP/err" >/dev/null
check "--db whose people came from other settings is refused" sh -c "[ $? -eq 1 ] && grep -q detector '$TMP/err'"
CLIPDEX_DETECTOR= "$CLIPDEX" watch --model "$M" --quiet --detector person --text x --input "$TMP/pan.mkv" 2>"$TMP/err" >/dev/null
check "person mode without a detector is a usage error" [ $? -eq 2 ]
done_
