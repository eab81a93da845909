#!/usr/bin/python3
"""torch_worker.py - the PyTorch peer of `make bench` (Debian's python3-torch, CPU, float32).

Runs the same model as clipdex with the eager PyTorch modules of
tools/export_onnx.py (OpenAI model.py design; nn.functional ops) under
torch.inference_mode(), and speaks the worker protocol of bench/clipdex_bench.c
on stdin/stdout so bench/driver.py can interleave it with clipdex and ONNX Runtime:
  image B T S   -> result image B T ITERS SECONDS 0
  text NAME T S -> result text NAME T ITERS SECONDS 0
  rss           -> rss KILOBYTES
  quit
T is set with torch.set_num_threads before each task; the first call of each
(task, threads) runs one untimed warm-up.

  torch_worker.py --model DIR [--text NAME=ID,ID,...]...
  torch_worker.py --model DIR --first-text ID,ID,...    load, embed once, print "embedding ..."
"""
import argparse
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))

import torch  # noqa: E402

import export_onnx  # noqa: E402


def blas_name():
    """The BLAS library PyTorch's float32 matmuls went to (Debian's torch uses the
    libblas.so.3 alternative: reference BLAS unless OpenBLAS/BLIS is installed)."""
    torch.ones(64, 64) @ torch.ones(64, 64)
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1]
            b = os.path.basename(p)
            if "blas" in b or "blis" in b or "mkl" in b:
                libs.add(os.path.realpath(p))
    names = []
    for p in sorted(libs):
        if "openblas" in p:
            names.append("openblas")
        elif "blis" in p:
            names.append("blis")
        elif "mkl" in p:
            names.append("mkl")
        elif "/blas/" in p:
            names.append("reference-blas")
    return "+".join(sorted(set(names))) or "unknown"


def timed(fn, seconds):
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        t = time.perf_counter()
        if t - t0 >= seconds:
            return n, t - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--text", action="append", default=[])
    ap.add_argument("--first-text")
    a = ap.parse_args()

    if a.first_text:
        torch.set_num_threads(os.cpu_count() or 1)
        w, cfg = export_onnx.load_weights(a.model)
        txt = export_onnx.TextTower(w, cfg).eval()
        ids = torch.tensor([[int(x) for x in a.first_text.split(",")]])
        with torch.inference_mode():
            e = txt(ids)[0]
        print("embedding " + " ".join("%.6f" % float(x) for x in e[:4]), flush=True)
        return

    texts = {}
    for s in a.text:
        k, v = s.split("=", 1)
        texts[k] = torch.tensor([[int(x) for x in v.split(",")]])
    img, txt, cfg = export_onnx.load_towers(a.model)
    S = cfg["image_size"]
    pixels = torch.rand(16, 3, S, S, generator=torch.Generator().manual_seed(1)) * 4 - 2
    warm = set()
    print("ready torch %s blas=%s" % (torch.__version__, blas_name()), flush=True)
    with torch.inference_mode():
        for line in sys.stdin:
            w = line.split()
            if len(w) == 4 and w[0] in ("image", "text"):
                T, secs = int(w[2]), float(w[3])
                torch.set_num_threads(T)
                if w[0] == "image":
                    x = pixels[:int(w[1])]
                    fn = lambda: img(x)  # noqa: E731
                else:
                    if w[1] not in texts:
                        print("error unknown text '%s'" % w[1], flush=True)
                        continue
                    ids = texts[w[1]]
                    fn = lambda: txt(ids)  # noqa: E731
                key = (w[0], w[1], T)
                if key not in warm:
                    fn()
                    warm.add(key)
                n, el = timed(fn, secs)
                print("result %s %s %d %d %.6f 0" % (w[0], w[1], T, n, el), flush=True)
            elif w and w[0] == "rss":
                print("rss %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
            elif w and w[0] == "quit":
                break
            else:
                print("error bad command", flush=True)


if __name__ == "__main__":
    main()
