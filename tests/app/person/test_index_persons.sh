#!/bin/sh
# tests/app/person/test_index_persons.sh - `clipdex index --detector person`
# and `search --persons` (app/person/, tiny seeded model, the real NanoDet):
# - a folder indexed without the detector, then with it: no photo is
#   embedded again, each content is looked at once (a duplicate shares its
#   people), a corrupt file is reported and the rest run;
# - the stored boxes are `clipdex detect`'s, the scene's three pasted people
#   are found at their known places (IoU >= 0.9), and each stored embedding
#   is that of the same square-padded crop cut by ffmpeg and embedded by
#   `clipdex embed` (cosine >= 1 - 1e-5);
# - search --persons with such a crop as the query answers that person (its
#   box, similarity ~1) at both paths of the photo; --copy-to writes the crop;
# - a second run looks at nothing; other settings are refused until
#   --redetect; removing a photo removes its people;
# - a video (a lossless pan across the scene) gets the people of its samples,
#   and search finds the person at the right time and place;
# - two shards merged hold the same people as one index (bitwise);
# - POST /v1/search {"persons":true} answers the CLI's boxes, and the page in
#   headless Chromium draws one box per result where the person is.
# Needs ffmpeg, python3, sqlite3 and the detector (sh tools/get_detector.sh).
NAME=test_index_persons
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/../serve/server.sh"
PY=${PYTHON:-python3}
DET=${CLIPDEX_DETECTOR:-build/models/nanodet}
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v "$PY" >/dev/null 2>&1 || [ ! -d "$SHARED/data/images" ]; then
    skip "needs ffmpeg, $PY and $SHARED"; done_
fi
[ -f "$DET/nanodet.json" ] || { skip "no detector in $DET (sh tools/get_detector.sh)"; done_; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-persons.XXXXXX") || { fail mktemp; done_; }
unset CLIPDEX_DB CLIPDEX_DETECTOR
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 7 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail genmodel; done_; }
FF="ffmpeg -nostdin -loglevel error -y"
SCENE=tests/golden/detect/scene.png
RECTS=tests/golden/detect/scene.pasted.json
P=$TMP/photos
mkdir -p "$P/dup" && cp "$SCENE" "$P/scene.png" && cp "$SCENE" "$P/dup/scene-copy.png" &&
    cp "$SHARED/data/images/photos/astronaut.png" "$SHARED/data/images/photos/coffee.png" "$P/" &&
    printf 'not a jpeg' >"$P/bad.jpg" || { fail "copy photos"; done_; }
DB=$TMP/p.db
IX="$CLIPDEX index --model $M --db $DB --quiet --json"
IXP="$IX --detector person --detector-model $DET"
q() { sqlite3 "$DB" "$1"; }

$IX "$P" >"$TMP/out" 2>"$TMP/err"
check "index without the detector: exit 1 (bad.jpg), the rest indexed" [ $? -eq 1 ]
$IXP "$P" >"$TMP/out" 2>"$TMP/err"
check "index --detector person on the same folder: exit 1 (bad.jpg again), the rest looked at" [ $? -eq 1 ]
rm "$P/bad.jpg"
check "no photo embedded again, 3 contents looked at, people found" "$PY" - "$TMP/out" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
assert s["embedded"] == 0 and s["person_photos"] == 3 and s["persons"] >= 4, s
PY
check "the corrupt file is not looked at again (it has no row)" [ "$(q "SELECT count(*) FROM files")" -eq 4 ]

# the stored boxes are `clipdex detect`'s; the pasted people are where they were pasted
"$CLIPDEX" detect --detector "$DET" --json "$P/scene.png" "$P/astronaut.png" "$P/coffee.png" >"$TMP/det.jsonl" 2>/dev/null
q "SELECT f.path, p.id, p.x0, p.y0, p.x1, p.y1, p.score, p.width, p.height FROM persons p
   JOIN files f ON f.hash = p.hash WHERE CAST(f.path AS TEXT) NOT LIKE '%/dup/%' ORDER BY p.id" >"$TMP/rows"
check "the stored boxes and scores are clipdex detect's, the scene's people at their places" \
    "$PY" - "$TMP/det.jsonl" "$TMP/rows" "$RECTS" <<'PY'
import json, sys
det = {}
for l in open(sys.argv[1]):
    d = json.loads(l)
    det[d["image"].split("/")[-1]] = d["detections"]
rows = {}
for l in open(sys.argv[2]):
    f = l.strip().split("|")
    rows.setdefault(f[0].split("/")[-1], []).append([float(x) for x in f[2:7]])
for name in ("scene.png", "astronaut.png", "coffee.png"):
    want = [d["box"] + [d["score"]] for d in det.get(name, []) if d["class"] == "person"]
    got = rows.get(name, [])
    assert len(got) == len(want), (name, got, want)
    for g, w in zip(got, want):
        assert all(abs(a - b) <= 1e-3 for a, b in zip(g, w)), (name, g, w)
def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0); ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih)
for r in json.load(open(sys.argv[3]))["person_rects"]:
    assert max(iou(r, g) for g in rows["scene.png"]) >= 0.9, r
PY

# each person of the scene, cut by ffmpeg (rounded outward, padded to a square on black)
q "SELECT p.id, p.x0, p.y0, p.x1, p.y1, p.width, p.height FROM persons p JOIN images i ON i.hash = p.hash
   WHERE p.hash = (SELECT hash FROM files WHERE CAST(path AS TEXT) LIKE '%/photos/scene.png') ORDER BY p.id" >"$TMP/scene.rows"
n_crop=0
while IFS='|' read -r pid x0 y0 x1 y1 w h; do
    filt=$("$PY" -c "
import math
x0, y0, x1, y1, W, H = $x0, $y0, $x1, $y1, $w, $h
l, t = max(math.floor(x0), 0), max(math.floor(y0), 0)
r, b = min(math.ceil(x1), W), min(math.ceil(y1), H)
s = max(r - l, b - t)
print('crop=%d:%d:%d:%d,pad=%d:%d:%d:%d:black' % (r - l, b - t, l, t, s, s, (s - r + l) // 2, (s - b + t) // 2))")
    $FF -i "$SCENE" -vf "$filt" "$TMP/crop$pid.png" && n_crop=$((n_crop + 1))
done <"$TMP/scene.rows"
check "ffmpeg cut the scene's people" [ "$n_crop" -ge 3 ]
for f in "$TMP"/crop*.png; do
    pid=$(basename "$f" .png | sed 's/crop//')
    "$CLIPDEX" embed --model "$M" --image "$f" 2>/dev/null | "$PY" -c "import json,sys; print(json.dumps(json.load(sys.stdin)['embedding']))" >"$TMP/emb$pid.json"
    q "SELECT hex(embedding) FROM persons WHERE id = $pid" >"$TMP/stored$pid.hex"
done
check "each stored person embedding is its ffmpeg-cut padded crop's (cosine >= 1 - 1e-5)" "$PY" - "$TMP" <<'PY'
import glob, json, math, struct, sys
n = 0
for f in glob.glob(sys.argv[1] + "/emb*.json"):
    pid = f.split("emb")[-1][:-5]
    a = json.load(open(f))
    h = open(sys.argv[1] + "/stored%s.hex" % pid).read().strip()
    b = struct.unpack("<%df" % (len(h) // 8), bytes.fromhex(h))
    c = sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))
    assert c >= 1 - 1e-5, (pid, c)
    n += 1
assert n >= 3, n
PY

# search --persons with a crop as the query: that person, at both paths of the photo
pid=$(head -n 1 "$TMP/scene.rows" | cut -d'|' -f1)
"$CLIPDEX" search --model "$M" --db "$DB" --persons --json -k 3 --image "$TMP/crop$pid.png" >"$TMP/hits.jsonl" 2>"$TMP/err"
check "search --persons exits 0" [ $? -eq 0 ]
check "the crop finds its person at both paths, with its box (similarity ~1)" "$PY" - "$TMP/hits.jsonl" "$TMP/scene.rows" <<'PY'
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
row = open(sys.argv[2]).readline().strip().split("|")
box = [float(x) for x in row[1:5]]
top = h[:2]
assert sorted(x["path"].split("/")[-1] for x in top) == ["scene-copy.png", "scene.png"], top
for x in top:
    assert x["similarity"] >= 0.9999 and all(abs(a - b) <= 1e-3 for a, b in zip(x["box"], box)), x
    assert x["width"] == 960 and x["height"] == 540 and 0 < x["person_score"] <= 1, x
assert h[0]["rank"] == 1 and h[1]["rank"] == 2
PY
"$CLIPDEX" search --model "$M" --db "$DB" --persons -k 1 --copy-to "$TMP/copy" --image "$TMP/crop$pid.png" >/dev/null 2>&1
check "search --persons --copy-to writes the person's crop (its box's size)" "$PY" - "$TMP/copy" "$TMP/scene.rows" <<'PY'
import glob, math, struct, sys
f = glob.glob(sys.argv[1] + "/001_*.person.jpg")
assert len(f) == 1, f
d = open(f[0], "rb").read()
i = 2
while d[i + 1] not in (0xC0, 0xC1, 0xC2):  # walk the JPEG markers to the frame header
    i += 2 + struct.unpack(">H", d[i + 2:i + 4])[0]
h, w = struct.unpack(">HH", d[i + 5:i + 9])
x0, y0, x1, y1 = [float(x) for x in open(sys.argv[2]).readline().split("|")[1:5]]
assert (w, h) == (min(math.ceil(x1), 960) - max(math.floor(x0), 0), min(math.ceil(y1), 540) - max(math.floor(y0), 0)), (w, h)
PY
"$CLIPDEX" search --model "$M" --db "$DB" -k 10 "a person" --json >"$TMP/plain.jsonl" 2>/dev/null
check "a search without --persons still answers photos (no box)" sh -c "[ \$(wc -l <'$TMP/plain.jsonl') -eq 4 ] && ! grep -q '\"box\"' '$TMP/plain.jsonl'"

# a second run looks at nothing and changes nothing
g0=$(q "SELECT value FROM meta WHERE key='generation'")
n0=$(q "SELECT count(*) FROM persons")
$IXP "$P" >"$TMP/out" 2>/dev/null
check "a second run looks at no photo" grep -q '"person_photos":0,' "$TMP/out"
check "a second run changes nothing (generation, people)" \
    [ "$(q "SELECT value FROM meta WHERE key='generation'")" = "$g0" -a "$(q "SELECT count(*) FROM persons")" = "$n0" ]
# other settings are refused until --redetect
$IXP --max-persons 1 "$P" >"$TMP/out" 2>"$TMP/err"
check "other detector settings are refused (exit 1, naming --redetect)" sh -c "[ $? -eq 1 ] && grep -q -- --redetect '$TMP/err'"
$IXP --max-persons 1 --redetect "$P" >"$TMP/out" 2>"$TMP/err"
check "--redetect looks again: at most one person per photo" \
    [ "$(q "SELECT max(persons) FROM images WHERE persons IS NOT NULL")" -eq 1 -a "$(q "SELECT count(*) FROM persons")" -eq 2 ]
$IXP --redetect "$P" >/dev/null 2>&1
check "--redetect back to the defaults" [ "$(q "SELECT count(*) FROM persons")" = "$n0" ]
# removing the photo (both paths) removes its people
rm "$P/scene.png" "$P/dup/scene-copy.png"
$IXP "$P" >/dev/null 2>&1
check "removing a photo removes its people" [ "$(q "SELECT count(*) FROM persons WHERE hash NOT IN (SELECT hash FROM files)")" -eq 0 -a "$(q "SELECT count(*) FROM persons")" -lt "$n0" ]
cp "$SCENE" "$P/scene.png"

# a video: 4 s at 10 frames/s panning across the scene at 80 px/s (lossless)
V=$TMP/videos
mkdir -p "$V"
$FF -loop 1 -framerate 10 -i "$SCENE" -t 4 -vf "crop=640:540:8*n:0" -c:v libx264rgb -crf 0 -pix_fmt rgb24 "$V/pan.mkv" ||
    { fail "ffmpeg pan"; done_; }
$IXP --video-every 0.5 --scene 1 "$P" "$V" >"$TMP/out" 2>"$TMP/err"
check "index a video with the detector: exit 0" [ $? -eq 0 ]
check "every sample was looked at, people stored per sample" \
    [ "$(q "SELECT count(*) FROM frames WHERE persons IS NULL")" -eq 0 -a "$(q "SELECT count(*) FROM persons WHERE frame_id IS NOT NULL")" -ge 8 ]
"$CLIPDEX" search --model "$M" --db "$DB" --persons --json -k 20 --image "$TMP/crop$pid.png" >"$TMP/vhits.jsonl" 2>/dev/null
check "search finds the person in the video at the right time and place" "$PY" - "$TMP/vhits.jsonl" "$TMP/scene.rows" <<'PY'
import json, sys
h = [json.loads(l) for l in open(sys.argv[1])]
v = [x for x in h if x["path"].endswith("pan.mkv")]
assert v and "time" in v[0], h
x0, y0, x1, y1 = [float(a) for a in open(sys.argv[2]).readline().split("|")[1:5]]
def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0); ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    return iw * ih / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih)
dx = 8 * round(v[0]["time"] * 10)
want = [max(x0 - dx, 0), y0, min(x1 - dx, 640), y1]
assert iou(v[0]["box"], want) >= 0.8 and v[0]["similarity"] >= 0.95, (v[0], want)
PY
# a video indexed without the detector is sampled again once asked
rm -f "$TMP/v.db"
"$CLIPDEX" index --model "$M" --db "$TMP/v.db" -q --video-every 1 --scene 1 "$V" 2>/dev/null
"$CLIPDEX" index --model "$M" --db "$TMP/v.db" --json -q --video-every 1 --scene 1 --detector person --detector-model "$DET" "$V" >"$TMP/out" 2>/dev/null
check "an unchanged video without people is sampled again with the detector" \
    sh -c "grep -q '\"updated\":1,' '$TMP/out' && [ \$(sqlite3 '$TMP/v.db' 'SELECT count(*) FROM frames WHERE persons IS NULL') -eq 0 ]"

# two shards merged hold the people of one index, bitwise
for i in 0 1; do
    "$CLIPDEX" index --model "$M" --db "$TMP/s$i.db" -q --shard $i/2 --video-every 0.5 --scene 1 \
        --detector person --detector-model "$DET" "$P" "$V" 2>/dev/null
done
"$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/s0.db" "$TMP/s1.db" >/dev/null 2>"$TMP/err"
check "merge of two shards: exit 0" [ $? -eq 0 ]
people() {
    sqlite3 "$1" "SELECT hex(f.path), x0, y0, x1, y1, score, hex(p.embedding) FROM persons p JOIN files f ON f.hash = p.hash
                  UNION ALL SELECT hex(f.path) || '@' || fr.seq, x0, y0, x1, y1, score, hex(p.embedding) FROM persons p
                  JOIN frames fr ON fr.id = p.frame_id JOIN files f ON f.id = fr.file_id ORDER BY 1, 2, 3"
}
people "$DB" >"$TMP/one.people"
people "$TMP/merged.db" >"$TMP/merged.people"
check "the merged shards hold the same people as one index (boxes, embeddings bitwise)" \
    sh -c "[ -s '$TMP/one.people' ] && cmp -s '$TMP/one.people' '$TMP/merged.people'"
g1=$(sqlite3 "$TMP/merged.db" "SELECT value FROM meta WHERE key='generation'")
"$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/s0.db" "$TMP/s1.db" >/dev/null 2>&1
check "merging again changes nothing" [ "$(sqlite3 "$TMP/merged.db" "SELECT value FROM meta WHERE key='generation'")" = "$g1" ]
"$CLIPDEX" index --model "$M" --db "$TMP/other.db" -q --max-persons 1 --detector person --detector-model "$DET" "$P" 2>/dev/null
"$CLIPDEX" merge --db "$TMP/merged.db" "$TMP/other.db" >/dev/null 2>"$TMP/err"
check "a shard of other detector settings is refused" sh -c "[ $? -eq 1 ] && grep -q detector '$TMP/err'"

# usage errors
$IX --detector car "$P" >/dev/null 2>&1
check "--detector car is a usage error" [ $? -eq 2 ]
$IX --detector-model "$DET" "$P" >/dev/null 2>&1
check "--detector-model without --detector is a usage error" [ $? -eq 2 ]
$IX --detector person "$P" >/dev/null 2>&1
check "--detector person with no detector folder is a usage error" [ $? -eq 2 ]

# the server and the page
"$CLIPDEX" search --model "$M" --db "$DB" --persons --json -k 5 "a person" >"$TMP/cli.jsonl" 2>/dev/null
first_server --db "$DB"
curl -s -H 'Content-Type: application/json' -d '{"text":"a person","persons":true,"k":5}' "$U/v1/search" >"$TMP/api.json"
check "POST /v1/search persons:true answers the CLI's people and boxes" "$PY" - "$TMP/api.json" "$TMP/cli.jsonl" <<'PY'
import json, sys
api = json.load(open(sys.argv[1]))["results"]
cli = [json.loads(l) for l in open(sys.argv[2])]
assert len(api) == len(cli) == 5, (api, cli)
for a, c in zip(api, cli):
    assert a["path"] == c["path"] and a["box"] == c["box"] and abs(a["similarity"] - c["similarity"]) < 1e-6, (a, c)
    assert a["thumbnail"] == "/v1/person/%d" % a["person"] and a["person"] > 0, a
PY
code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d '{"text":"x","persons":"yes"}' "$U/v1/search")
check "persons must be a boolean (400)" [ "$code" = 400 ]
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1 || [ ! -x "$CHROMIUM" ] || [ ! -d tests/app/serve/web/node_modules/playwright-core ]; then
    skip "browser test: needs node, $CHROMIUM and tests/app/serve/web/node_modules"
else
    mkdir -p tests/out
    if (cd tests/app/serve/web && CHROMIUM=$CHROMIUM timeout 120 node persons.test.mjs "$U" ../../../out) >"$TMP/page.log" 2>&1; then
        ok
    else
        cat "$TMP/page.log" >&2; fail "the page draws the people's boxes in headless Chromium"
    fi
fi
stop_server
done_
