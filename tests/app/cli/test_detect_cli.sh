#!/bin/sh
# tests/app/cli/test_detect_cli.sh - `clipdex detect` end to end: the
# boxes it prints are TF.js's (tests/golden/detect, written by
# tools/detect/ref.mjs), --classes filters, --crops writes JPEGs of the boxes'
# sizes, a bad file is reported and the rest still run, and usage errors.
# Needs the detector (sh tools/get_detector.sh; $CLIPDEX_DETECTOR, else
# build/models/nanodet); without it the test is skipped.
NAME=test_detect_cli
. tests/app/lib.sh
TMP=$(mktemp -d)
DET=${CLIPDEX_DETECTOR:-build/models/nanodet}
[ -f "$DET/nanodet.json" ] || { skip "no detector in $DET (sh tools/get_detector.sh)"; done_; }
export CLIPDEX_DETECTOR=$DET
G=tests/golden/detect

# the scene, persons only: the TF.js boxes of class 0 scoring >= 0.35
"$CLIPDEX" detect --json tests/golden/detect/scene.png >$TMP/scene.json 2>$TMP/err
check "detect exits 0" [ $? -eq 0 ]
check "the JSON boxes are TF.js's persons (IoU >= 0.99, score within 1e-4)" python3 - $TMP/scene.json $G/scene.json <<'PY'
import json, sys
got = json.loads(open(sys.argv[1]).read())
ref = [b for b in json.load(open(sys.argv[2]))["boxes"] if b["cls"] == 0 and b["score"] >= 0.35]
def iou(a, b):
    iw = max(min(a[2], b[2]) - max(a[0], b[0]), 0); ih = max(min(a[3], b[3]) - max(a[1], b[1]), 0)
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / u
d = got["detections"]
assert got["width"] == 960 and got["height"] == 540, got
assert len(d) == len(ref) == 3, (len(d), len(ref))
for x, r in zip(d, ref):
    assert x["class"] == "person" and x["class_id"] == 0, x
    assert abs(x["score"] - r["score"]) < 1e-4 and iou(x["box"], r["box"]) >= 0.99, (x, r)
PY

# text lines; --classes with two names; all classes
"$CLIPDEX" detect --classes "person, backpack" tests/golden/detect/scene.png >$TMP/two.txt
check "--classes person,backpack: 3 people and the backpack" [ "$(cut -f2 $TMP/two.txt | sort | uniq -c | tr -s ' ' | tr '\n' ';')" = " 1 backpack; 3 person;" ]
check "text lines are IMAGE CLASS SCORE BOX" awk -F'\t' 'NF != 4 || $3 < 0.35 || $3 > 1 { exit 1 }' $TMP/two.txt
"$CLIPDEX" detect --classes all --min-score 0.05 --max 7 tests/golden/detect/scene.png >$TMP/all.txt
check "--max 7 with all classes: 7 lines" [ "$(wc -l <$TMP/all.txt)" -eq 7 ]

# crops: one JPEG per box, of the box's size
"$CLIPDEX" detect --crops $TMP/crops tests/golden/detect/scene.png >/dev/null
check "--crops writes 3 files" [ "$(ls $TMP/crops | wc -l)" -eq 3 ]
if command -v ffprobe >/dev/null 2>&1; then
    wh=$(ffprobe -v error -select_streams v:0 -show_entries stream=width,height -of csv=p=0 $TMP/crops/scene-0-person.jpg)
    check "the first crop is the first box's size (274x405: 327.6..600.0 rounded outward, got $wh)" [ "$wh" = "274,405" ]
else
    skip "ffprobe missing: crop sizes"
fi

# a bad file among good ones: reported, the others run, exit 1
printf 'not an image' >$TMP/bad.png
"$CLIPDEX" detect --json $TMP/bad.png tests/golden/detect/scene.png >$TMP/mixed.json 2>/dev/null
check "a bad file gives exit 1" [ $? -eq 1 ]
check "the bad file's line is an error, the good file still detected" python3 -c "
import json,sys
l=[json.loads(x) for x in open('$TMP/mixed.json')]
assert 'error' in l[0] and len(l[1]['detections'])==3, l"

# usage errors
"$CLIPDEX" detect --classes unicorn tests/golden/detect/scene.png 2>$TMP/err >/dev/null
check "an unknown class is a usage error (2)" [ $? -eq 2 ]
check "which names the class" grep -q "unknown class 'unicorn'" $TMP/err
CLIPDEX_DETECTOR= "$CLIPDEX" detect tests/golden/detect/scene.png 2>$TMP/err >/dev/null
check "no detector is a usage error (2)" [ $? -eq 2 ]
"$CLIPDEX" detect --detector $TMP tests/golden/detect/scene.png 2>$TMP/err >/dev/null
check "a folder without a model exits 3" [ $? -eq 3 ]
"$CLIPDEX" detect --min-score 2 x.png 2>/dev/null
check "--min-score 2 is refused" [ $? -eq 2 ]
done_
