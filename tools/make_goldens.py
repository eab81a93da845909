#!/usr/bin/python3
"""make_goldens.py - regenerates the committed goldens under tests/golden/.

  /usr/bin/python3 tools/make_goldens.py [--work DIR] [--only NAME]...

1. builds tools/genmodel.c (`make BUILD=build-ref build-ref/tools/genmodel`, or
   plain gcc when the library does not build),
2. generates the seeded random models listed in MODELS into --work
   (default build-ref/golden-models),
3. runs tools/reference.py (float64) on the images and texts below, and writes
   tests/golden/models/<name>.json, plus the 8-bit crops (after resize, center
   crop and RGB conversion, before normalization) as lossless PNGs in
   tests/golden/pixels/<resolution>/<name>.png.

See docs/testing.md for how the C tests use them.
"""
import argparse
import hashlib
import json
import math
import os
import re
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import reference as ref  # noqa: E402

SHARED = ref.SHARED

# name -> genmodel arguments. b32-hf-f32 and b32-oc-f16 share the seed, so they
# hold the same weights (the second rounded to f16).
MODELS = [
    ("tiny-hf-f32", dict(config="tiny", layout="hf", dtype="f32", seed=1)),
    ("small-oc-f32", dict(config="small", layout="openclip", dtype="f32", seed=2)),
    ("b32-hf-f32", dict(config="b32", layout="hf", dtype="f32", seed=3)),
    ("b32-oc-f16", dict(config="b32", layout="openclip", dtype="f16", seed=3)),
]

PHOTOS_DIR = os.path.join("data", "images", "photos")
IMAGES = (["data/images/CLIP.png"] +
          sorted(os.path.join(PHOTOS_DIR, f) for f in os.listdir(os.path.join(SHARED, PHOTOS_DIR))
                 if f.lower().endswith((".png", ".jpg", ".jpeg"))) +
          ["data/imagenet-samples/n01440764_tench.JPEG",
           "data/imagenet-samples/n01748264_Indian_cobra.JPEG",   # 539 px: crop offset rounds half to even
           "data/imagenet-samples/n02692877_airship.JPEG"])       # grayscale (L mode)

LONG_TEXT = (
    "A photograph taken at dawn shows a small red rocket standing on its launch pad while engineers "
    "in white coats walk slowly around it checking cables and valves. Behind them the sky turns orange "
    "then pink and a flock of birds crosses above the tower. Nearby a dog sleeps under a truck and a cat "
    "watches from the roof of a shed. Everyone waits quietly for the countdown to begin and the only "
    "sound is the wind moving across the dry grass of the desert plain. Later that morning the engines "
    "ignite and the rocket rises into the blue sky.")
assert len(LONG_TEXT.split()) == 100, len(LONG_TEXT.split())

TEXTS = [
    "a diagram",
    "a dog",
    "a cat",
    "",
    "\u00fcber-na\u00efve caf\u00e9 \U0001F600 \u2014 CAPS and  spaces",
    "Tom &amp;amp; Jerry &lt;3 caf&eacute; &#x1F600;",
    "\u201c\ufb01ne\u201d \uff21\uff22\uff23",
    LONG_TEXT,
    "a photo of a n01440764 tench",
]
LOGIT_TEXTS = ["a diagram", "a dog", "a cat"]


def g9(v):
    return [float("%.9g" % x) for x in v]


def build_genmodel():
    exe = os.path.join(ROOT, "build-ref", "tools", "genmodel")
    r = subprocess.run(["make", "-s", "BUILD=build-ref", "build-ref/tools/genmodel"], cwd=ROOT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        print("make failed (library mid-edit?); compiling genmodel alone", file=sys.stderr)
        os.makedirs(os.path.dirname(exe), exist_ok=True)
        subprocess.run(["gcc", "-std=c11", "-O2", "-Wall", "-Wextra", "-o", exe,
                        os.path.join(ROOT, "tools", "genmodel.c"), "-lm"], check=True)
    return exe


def command_line(spec, out):
    return ["build/tools/genmodel", "--config", spec["config"], "--layout", spec["layout"],
            "--dtype", spec["dtype"], "--seed", str(spec["seed"]), "--out", out,
            "--vocab", "../shared/data/vocab"]


def generate(exe, name, spec, work):
    out = os.path.join(work, name)
    args = [exe] + command_line(spec, out)[1:-2] + ["--vocab", os.path.join(SHARED, "data", "vocab")]
    r = subprocess.run(args, check=True, stdout=subprocess.PIPE, text=True)
    shas = {}
    for line in r.stdout.splitlines():
        h, p = line.split("  ", 1)
        shas[os.path.basename(p)] = h
    # the printed hashes must be the files' hashes
    for f, h in shas.items():
        with open(os.path.join(out, f), "rb") as fh:
            d = hashlib.sha256()
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                d.update(chunk)
        assert d.hexdigest() == h, (f, h)
    return out, shas


def pixels_path(n, path):
    stem = os.path.splitext(os.path.basename(path))[0]
    return os.path.join("tests", "golden", "pixels", str(n), stem + ".png")


def cos_stats(e):
    """mean and max cosine between different rows of normalized embeddings."""
    c = e @ e.T
    off = c[~np.eye(len(c), dtype=bool)]
    return float("%.4g" % off.mean()), float("%.4g" % off.max())


def make_model_golden(name, spec, model_dir, shas, tok, pixels_done):
    layout = spec["layout"]
    m = ref.load_model_layout(model_dir, layout, torch.float64)
    c = m.cfg
    n = c["image_size"]
    images, xs = [], []
    for p in IMAGES:
        x, info = ref.preprocess(os.path.join(SHARED, p), n)
        xs.append(x)
        crop = info.pop("crop")
        pp = pixels_path(n, p)
        if pp not in pixels_done:
            os.makedirs(os.path.join(ROOT, os.path.dirname(pp)), exist_ok=True)
            crop.save(os.path.join(ROOT, pp), format="PNG", optimize=True)
            pixels_done.add(pp)
        images.append(dict(path=p, mode=info["mode"], size=info["size"],
                           resized_size=info["resized_size"], crop_left_top=info["crop_left_top"],
                           pixels=pp,
                           pixels_sha256=hashlib.sha256(np.asarray(crop, np.uint8).tobytes()).hexdigest(),
                           preprocessed_sha256=hashlib.sha256(
                               x.numpy().astype("<f4").tobytes()).hexdigest()))
    texts, ids = [], []
    for t in TEXTS:
        tid, nt, tr = tok.tokenize(t, c["ctx"])
        ids.append(tid)
        texts.append(dict(text=t, tokens=tid[:nt], n_tokens=nt, truncated=tr))
    with torch.no_grad():
        ie = ref.encode_image(m, torch.stack(xs)).numpy()
        te = ref.encode_text(m, torch.tensor(ids)).numpy()
    ien = ie / np.linalg.norm(ie, axis=1, keepdims=True)
    ten = te / np.linalg.norm(te, axis=1, keepdims=True)
    for i, im in enumerate(images):
        im["embedding"] = g9(ie[i])
        im["embedding_normalized"] = g9(ien[i])
    for i, t in enumerate(texts):
        t["embedding"] = g9(te[i])
        t["embedding_normalized"] = g9(ten[i])
    scale = math.exp(float(m["logit_scale"]))
    li = [TEXTS.index(t) for t in LOGIT_TEXTS]
    logits = scale * ien @ ten[li].T
    out_name = {"hf": "model.safetensors", "openclip": "open_clip_model.safetensors"}[layout]
    golden = dict(
        name=name,
        generator="tools/reference.py (float64 PyTorch), weights read from the file below",
        genmodel=dict(command=" ".join(command_line(spec, "OUT/" + name)), **spec),
        files={out_name: shas[out_name]},
        config=dict(image_size=n, patch_size=c["patch"], vision_width=c["v_width"],
                    vision_layers=c["v_layers"], vision_heads=c["v_heads"],
                    text_width=c["t_width"], text_layers=c["t_layers"], text_heads=c["t_heads"],
                    context_length=c["ctx"], vocab_size=c["vocab"], embed_dim=c["embed"],
                    activation="quick_gelu" if c["quick_gelu"] else "gelu"),
        logit_scale=float("%.9g" % float(m["logit_scale"])),
        logit_scale_exp=float("%.9g" % scale),
        preprocess=dict(resolution=n, mean=list(ref.MEAN), std=list(ref.STD),
                        resize="shorter side to n (longer int(n*long/short)), Pillow BICUBIC in the image's mode",
                        crop="left/top = int(round((L - n) / 2)) (half to even)",
                        pixels="8-bit RGB crop before normalization (PNG)"),
        tolerance=dict(embedding_cosine_min=0.99999, embedding_max_abs_err=1e-4, pixel_levels=1),
        stats=dict(image_cosine_mean_max=cos_stats(ien), text_cosine_mean_max=cos_stats(ten)),
        images=images,
        texts=texts,
        logits=dict(texts=LOGIT_TEXTS, scale="exp(logit_scale) from the weights",
                    per_image=[g9(r) for r in logits]),
    )
    return golden


def dump(golden, path):
    """JSON with one line per list of numbers (reviewable diffs, small files)."""
    s = json.dumps(golden, indent=1, ensure_ascii=False)
    s = re.sub(r"\[\s+([-0-9.eE+,\s]+?)\s+\]",
               lambda mt: "[" + ", ".join(x.strip() for x in mt.group(1).split(",")) + "]", s)
    with open(path, "w", encoding="utf-8") as f:
        f.write(s + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=os.path.join(ROOT, "build-ref", "golden-models"))
    ap.add_argument("--only", action="append", default=[])
    ap.add_argument("--keep", action="store_true", help="keep the generated models")
    a = ap.parse_args()
    exe = build_genmodel()
    os.makedirs(a.work, exist_ok=True)
    tok = ref.Tokenizer()
    pixels_done = set()
    outdir = os.path.join(ROOT, "tests", "golden", "models")
    os.makedirs(outdir, exist_ok=True)
    for name, spec in MODELS:
        if a.only and name not in a.only:
            continue
        model_dir, shas = generate(exe, name, spec, a.work)
        g = make_model_golden(name, spec, model_dir, shas, tok, pixels_done)
        dump(g, os.path.join(outdir, name + ".json"))
        print("%-14s %s  image cos mean/max %s  text cos mean/max %s  logits[0] %s" % (
            name, list(g["files"].values())[0][:16], g["stats"]["image_cosine_mean_max"],
            g["stats"]["text_cosine_mean_max"], g["logits"]["per_image"][0]))
        if not a.keep and spec["config"] in ("b32", "b16", "l14"):
            for f in os.listdir(model_dir):
                if f.endswith(".safetensors"):
                    os.remove(os.path.join(model_dir, f))


if __name__ == "__main__":
    main()
