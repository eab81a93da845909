#!/bin/sh
# tests/app/serve/test_watch_api.sh - /v1/watch of `clipdex serve` over
# loopback, on a slideshow whose content is known (three photos, 3 s each,
# H.264) and prompts whose texts are embedded by the server itself (so the
# expected scores come from POST /v1/embed/text and /v1/embed/image of the
# same server): start a watch, read its Server-Sent Events (a "state" first,
# frame events whose cosines equal the frames' own embeddings against the
# prompt embeddings, start/end events, "stopped" at the end of the file),
# the state's inputs and prompts, the latest frame as a JPEG, changing the
# prompts while it runs (the next frames carry the new prompts' scores), an
# ensemble prompt equal to the mean of its templates, stopping with DELETE,
# and the errors: a path outside --root, a stream without --watch-allow, bad
# JSON and fields, an unknown input's frame, prompts without a watch.
# Skipped without ffmpeg, python3, ../shared or libmicrohttpd.
NAME=test_watch_api
. "$(dirname "$0")/../lib.sh"
. "$(dirname "$0")/server.sh"
PY=${PYTHON:-python3}
if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v "$PY" >/dev/null 2>&1 || [ ! -d "$SHARED/data/images/photos" ] ||
    [ ! -x "$GENMODEL" ]; then
    skip "needs ffmpeg, $PY, genmodel and $SHARED"; done_
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/clipdex-watchapi.XXXXXX") || { fail mktemp; done_; }
unset CLIPDEX_MODEL CLIPDEX_VOCAB CLIPDEX_TOKEN CLIPDEX_DB
M=$TMP/model
"$GENMODEL" --config tiny --layout hf --seed 7 --out "$M" --vocab "$SHARED/data/vocab" >/dev/null 2>&1 || { fail genmodel; done_; }
FF="ffmpeg -nostdin -loglevel error -y"
mkdir -p "$TMP/root" "$TMP/out"
i=0
for f in astronaut.png coffee.png chelsea.png; do
    $FF -i "$SHARED/data/images/photos/$f" -vf scale=160:120,setsar=1 "$TMP/s$i.png" || fail "slide $f"
    i=$((i + 1))
done
$FF -framerate 10 -loop 1 -t 3 -i "$TMP/s0.png" -framerate 10 -loop 1 -t 3 -i "$TMP/s1.png" \
    -framerate 10 -loop 1 -t 3 -i "$TMP/s2.png" -filter_complex "[0][1][2]concat=n=3:v=1,fps=10" \
    -c:v libx264 -pix_fmt yuv420p "$TMP/root/abc.mp4" || fail "slideshow"
# a live stream to change prompts and stop while it plays: ffmpeg serving the
# slideshow in a loop at its real rate over HTTP (allowed by --watch-allow)
HPORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# (ffmpeg's HTTP server takes one client, so it is started again for the next)
(while [ ! -f "$TMP/stop-live" ]; do
    ffmpeg -nostdin -loglevel quiet -re -stream_loop -1 -i "$TMP/root/abc.mp4" -c copy -f mpegts -listen 1 \
        "http://127.0.0.1:$HPORT/live.ts"
done) &
FFPID=$!
stop_live() { touch "$TMP/stop-live"; pkill -f "127.0.0.1:$HPORT/live.ts" 2>/dev/null; wait "$FFPID" 2>/dev/null; }
# the person mode's clip: 2 s panning across the detector test's scene (lossless)
DET=${CLIPDEX_DETECTOR:-build/models/nanodet}
if [ -f "$DET/nanodet.json" ]; then
    export CLIPDEX_DETECTOR="$DET"
    $FF -loop 1 -framerate 10 -i tests/golden/detect/scene.png -t 2 -vf "crop=640:540:8*n:0" -c:v libx264rgb -crf 0 \
        -pix_fmt rgb24 "$TMP/root/pan.mkv" || fail "pan clip"
else
    skip "person mode: no detector in $DET (sh tools/get_detector.sh)"
fi
first_server --root "$TMP/root" --watch-allow "http://127.0.0.1:$HPORT/"

"$PY" - "$U" "$TMP" "http://127.0.0.1:$HPORT/live.ts" <<'PYEOF' >"$TMP/py.log" 2>&1
import base64, http.client, json, math, sys, threading, time, urllib.parse, urllib.request, urllib.error

U, TMP, LIVE = sys.argv[1], sys.argv[2], sys.argv[3]
host = urllib.parse.urlparse(U)
def call(method, path, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    rq = urllib.request.Request(U + path, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(rq, timeout=60) as r:
            b = r.read()
            return r.status, (json.loads(b) if r.headers.get_content_type() == "application/json" else b), r.headers
    except urllib.error.HTTPError as e:
        b = e.read()
        return e.code, json.loads(b), e.headers
def check(name, cond, detail=""):
    print(("ok " if cond else "FAIL ") + name + ("" if cond else ": " + str(detail)[:400]))

def sse(stop_at, timeout=60):
    """Reads /v1/watch/events until an event named in stop_at: [(event, data)]."""
    c = http.client.HTTPConnection(host.hostname, host.port, timeout=15)
    c.request("GET", "/v1/watch/events")
    r = c.getresponse()
    out, name, data = [], None, []
    ctype = r.getheader("Content-Type")
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            line = r.fp.readline()
        except TimeoutError:
            break
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line == "" and name:
            out.append((name, json.loads("\n".join(data))))
            if name in stop_at and len(out) > 1:
                break
            name, data = None, []
    c.close()
    return ctype, out

def emb_texts(texts):
    return call("POST", "/v1/embed/text", {"texts": texts})[1]["embeddings"]
def dot(a, b): return sum(x * y for x, y in zip(a, b))
def norm(v):
    n = math.sqrt(dot(v, v)); return [x / n for x in v]

# prompts: three texts; the expected cosines come from the server's own embeddings
texts = ["a photo of an astronaut", "a cup of coffee", "a cat"]
P = [norm(e) for e in emb_texts(texts)]

# start on the short clip, listening to the events from before the start
res = {}
def listen(): res["sse"] = sse({"stopped"})
th = threading.Thread(target=listen); th.start(); time.sleep(0.5)
st, body, _ = call("POST", "/v1/watch", {"inputs": [TMP + "/root/abc.mp4"], "prompts": texts, "every": 0.5,
                                         "threshold": -1, "dwell": 0, "hold": 0})
check("POST /v1/watch starts (200)", st == 200 and body.get("running") is True, body)
check("the state names the input and the prompts", body["inputs"][0]["uri"].endswith("abc.mp4") and
      [p["text"] for p in body["prompts"]] == texts, body)
th.join(90)
ctype, ev = res.get("sse", (None, []))
names = [n for n, _ in ev]
check("events are text/event-stream", ctype == "text/event-stream", ctype)
check("the stream opens with a state", names and names[0] == "state", names[:3])
frames = [d for n, d in ev if n == "frame"]
check("one frame event per sample (0.5 s over 9 s: 17-19)", 17 <= len(frames) <= 19, len(frames))
check("the stream ends with 'stopped' after 'eos'", "eos" in names and names[-1] == "stopped", names[-3:])
# with threshold -1 and dwell 0 every prompt starts on the first frame
starts = [d for n, d in ev if n == "start"]
check("start events for every prompt, with its text", sorted(d["text"] for d in starts) == sorted(texts), starts)
# the frame scores: each frame's cosines equal its embedding . prompt; the
# frame embedding is not sent, so compare against a frame the server embeds
# from the slide image (same pixels up to H.264 error): the ranking must
# follow the slides, and the cosines must be cosines of unit vectors
S = [norm(e) for e in call("POST", "/v1/embed/image", {"images": [
    {"type": "base64", "value": base64.b64encode(open(TMP + "/s%d.png" % i, "rb").read()).decode()} for i in range(3)]})[1]["embeddings"]]
ok = True
for f in frames:
    slide = min(int(f["pts"] // 3), 2)
    if f["pts"] % 3 < 0.2: continue
    want = [dot(S[slide], p) for p in P]
    ok = ok and all(abs(a - b) < 0.05 for a, b in zip(f["cosines"], want))
check("frame cosines are the slide's embedding against the prompts (H.264 error < 0.05)", ok and frames,
      [(f["pts"], f["cosines"]) for f in frames[:3]])
st, body, _ = call("GET", "/v1/watch")
check("GET /v1/watch after the end: not running, input ended, latest scores kept",
      st == 200 and body["running"] is False and body["inputs"][0]["state"] == "ended" and
      len(body["inputs"][0]["scores"]) == 3 and body["inputs"][0]["frames"] == len(frames), body)
st, jpg, hdr = call("GET", "/v1/watch/frame/0")
check("the latest frame is a JPEG", st == 200 and hdr.get_content_type() == "image/jpeg" and jpg[:2] == b"\xff\xd8", st)
open(TMP + "/out/frame.jpg", "wb").write(jpg if isinstance(jpg, bytes) else b"")

# prompts changed while a long clip plays; an ensemble prompt
st, body, _ = call("POST", "/v1/watch", {"inputs": [LIVE], "prompts": texts[:1], "every": 0.5})
check("a second watch replaces the first", st == 200 and body["id"] == 2 and body["running"], body)
time.sleep(1.5)
res2 = {}
th = threading.Thread(target=lambda: res2.update(sse=sse({"never"}, timeout=6))); th.start(); time.sleep(0.5)
st, body, _ = call("POST", "/v1/watch/prompts", {"prompts": [{"text": "a cat", "ensemble": True}, {"text": "a dog", "negative": True}],
                                                 "threshold": 0.2})
check("POST /v1/watch/prompts changes them", st == 200 and [p["text"] for p in body["prompts"]] == ["a cat", "a dog"] and
      body["prompts"][0]["ensemble"] and body["prompts"][1]["negative"] and abs(body["threshold"] - 0.2) < 1e-9, body)
th.join(20)
ev = res2.get("sse", (None, []))[1]
after = [d for n, d in ev if n == "frame" and len(d["scores"]) == 2]
check("frames after the change carry the two new prompts", len(after) >= 3, [len(d["scores"]) for n, d in ev if n == "frame"])
st_ = [d for n, d in ev if n == "state"]
check("a state event announces the change", any(len(s["prompts"]) == 2 for s in st_), [len(s["prompts"]) for s in st_])
# the ensemble prompt's cosines: its embedding is the normalized mean of the templates
tmpl = ["itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
        "a {} in a video game.", "art of the {}.", "a photo of the small {}."]
E = emb_texts([t.format("a cat") for t in tmpl])
ens = norm([sum(c) / len(E) for c in zip(*E)])
dog = norm(emb_texts(["a dog"])[0])
ok = bool(after)
for f in after:
    slide = min(int((f["pts"] % 9) // 3), 2)
    if not 0.3 < f["pts"] % 3 < 2.7: continue
    ok = ok and abs(f["cosines"][0] - dot(S[slide], ens)) < 0.05 and abs(f["cosines"][1] - dot(S[slide], dog)) < 0.05
check("the ensemble prompt is the mean of OpenAI's 7 templates (and the negative is 'a dog')", ok,
      [(f["pts"], f["cosines"]) for f in after[:3]])
st, body, _ = call("DELETE", "/v1/watch")
check("DELETE /v1/watch stops it", st == 200 and body["running"] is False, body)
st, body, _ = call("POST", "/v1/watch/prompts", {"prompts": ["x"]})
check("prompts without a running watch: 409", st == 409, (st, body))

# the person mode (when the server has a detector: CLIPDEX_DETECTOR)
import os
if os.path.exists(TMP + "/root/pan.mkv"):
    res3 = {}
    th = threading.Thread(target=lambda: res3.update(sse=sse({"stopped"}))); th.start(); time.sleep(0.5)
    st, body, _ = call("POST", "/v1/watch", {"inputs": [TMP + "/root/pan.mkv"], "prompts": ["a person"], "every": 0.5,
                                             "threshold": -1, "dwell": 0, "detector": "person", "crop_every": 1,
                                             "max_crops": 2})
    check("person mode: the watch starts and its state names the detector", st == 200 and body.get("detector") == "person", body)
    th.join(90)
    ev = res3.get("sse", (None, []))[1]
    tracks = [d for n, d in ev if n == "track"]
    frames = [d for n, d in ev if n == "frame"]
    per = {}
    for t in tracks: per[t["pts"]] = per.get(t["pts"], 0) + 1
    check("person mode: track events with a track id, a box and the crop's scores", tracks and all(
        t["track"] > 0 and len(t["box"]) == 4 and t["box"][2] > t["box"][0] and len(t["scores"]) == 1 for t in tracks), tracks[:2])
    check("person mode: at most max_crops crops a frame, people counted per frame",
          max(per.values() or [9]) <= 2 and frames and all(f["people"] >= 2 for f in frames), (per, [f.get("people") for f in frames]))
    starts = [d for n, d in ev if n == "start"]
    check("person mode: the start names its track", starts and all(d.get("track", 0) > 0 for d in starts), starts)
for name, rq, code in [
        ("a detector that is not person", {"inputs": [TMP + "/root/abc.mp4"], "prompts": ["x"], "detector": "car"}, 400),
        ("crop_every without the person mode", {"inputs": [TMP + "/root/abc.mp4"], "prompts": ["x"], "crop_every": 1}, 400),
        ("max_crops out of range", {"inputs": [TMP + "/root/abc.mp4"], "prompts": ["x"], "detector": "person", "max_crops": 99}, 400)]:
    st, body, _ = call("POST", "/v1/watch", rq)
    check("error: %s -> %d" % (name, code), st == code and "error" in body, (st, body))

# errors
for name, rq, code in [
        ("a path outside --root", {"inputs": ["/etc/passwd"], "prompts": ["x"]}, 403),
        ("a stream without --watch-allow", {"inputs": ["rtsp://127.0.0.1:9/x"], "prompts": ["x"]}, 403),
        ("no inputs", {"prompts": ["x"]}, 400),
        ("no prompts", {"inputs": [TMP + "/root/abc.mp4"]}, 400),
        ("a bad score", {"inputs": [TMP + "/root/abc.mp4"], "prompts": ["x"], "score": "max"}, 400),
        ("a threshold out of range", {"inputs": [TMP + "/root/abc.mp4"], "prompts": ["x"], "threshold": 7}, 400),
        ("a prompt of the wrong type", {"inputs": [TMP + "/root/abc.mp4"], "prompts": [3]}, 400)]:
    st, body, _ = call("POST", "/v1/watch", rq)
    check("error: %s -> %d" % (name, code), st == code and "error" in body, (st, body))
st, body, _ = call("POST", "/v1/watch", raw=b"{not json")
check("error: bad JSON -> 400", st == 400, (st, body))
st, body, _ = call("GET", "/v1/watch/frame/7")
check("error: an unknown input's frame -> 404", st == 404, (st, body))
st, body, _ = call("PUT", "/v1/watch")
check("error: PUT /v1/watch -> 405", st == 405, (st, body))
PYEOF
n_ok=$(grep -c '^ok ' "$TMP/py.log")
n_fail=$(grep -c '^FAIL ' "$TMP/py.log")
i=0; while [ $i -lt "$n_ok" ]; do ok; i=$((i + 1)); done
grep '^FAIL ' "$TMP/py.log" | while read -r line; do echo "FAIL $NAME: ${line#FAIL }" >&2; done
i=0; while [ $i -lt "$n_fail" ]; do failed=$((failed + 1)); i=$((i + 1)); done
if [ "$n_ok" -eq 0 ]; then cat "$TMP/py.log" >&2; fail "the python client ran no check"; fi
grep -q Traceback "$TMP/py.log" && { sed -n '/Traceback/,$p' "$TMP/py.log" >&2; fail "the python client crashed"; }

# --- the live page in headless Chromium (tests/app/serve/web/watch.test.mjs) --------
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
if ! command -v node >/dev/null 2>&1 || [ ! -x "$CHROMIUM" ] || [ ! -d tests/app/serve/web/node_modules/playwright-core ]; then
    skip "watch page: needs node, $CHROMIUM and tests/app/serve/web/node_modules (npm ci --prefix tests/app/serve/web)"
else
    mkdir -p tests/out
    (cd tests/app/serve/web && CHROMIUM=$CHROMIUM timeout 180 node watch.test.mjs "$U" "http://127.0.0.1:$HPORT/live.ts" ../../../out "$TMP/root/abc.mp4") \
        >"$TMP/page.log" 2>&1
    n_ok=$(grep -c '^ok ' "$TMP/page.log")
    i=0; while [ $i -lt "$n_ok" ]; do ok; i=$((i + 1)); done
    grep '^FAIL ' "$TMP/page.log" | sed "s/^/$NAME page: /" >&2
    n_fail=$(grep -c '^FAIL ' "$TMP/page.log")
    i=0; while [ $i -lt "$n_fail" ]; do failed=$((failed + 1)); i=$((i + 1)); done
    grep -q 'watch page: ' "$TMP/page.log" || { cat "$TMP/page.log" >&2; fail "watch page: the browser test did not finish"; }
fi
stop_server
stop_live
done_
