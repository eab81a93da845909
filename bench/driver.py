#!/usr/bin/python3
"""driver.py - runs clipdex and its peers interleaved and prints the table of `make bench`.

The speed of this kind of machine drifts (up to 2x over minutes), so numbers
taken minutes apart cannot be compared. Every system therefore runs as a
long-lived worker process (bench/clipdex_bench.c --serve, bench/peers/
ort_worker.js, bench/peers/torch_worker.py) speaking one line protocol, and the
driver runs each task on every system back to back, rotating the order each
round; the ratios clipdex/peer are taken within a round, then the median over
rounds is printed. bench/peak.c measures the machine's peaks (fp32 FMA and
int8/bf16 dot products, per SIMD width) right before and after each task, for
the "% of peak" column: each figure is divided by the peak of the instructions
its kernels use (the clipdex worker names them: clipdex_ctx_kernels).

clipdex runs on the best kernel path of the CPU and, in fewer rounds, on the
AVX2 path (CLIPDEX_ISA=avx2: what an older machine gets). Its images are timed
from JPEG bytes (decode + preprocess + embed); the peers get preprocessed
pixels. The end of the table checks the speed issue's targets.

Python standard library only: the driver itself never imports torch.
Called by bench/run.sh, which builds and generates everything; see
docs/benchmarks.md.
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time

VARIANTS = ["fp32", "fp32st", "f16", "bf16", "q8", "i8", "q4"]  # clipdex weight formats, in print order
OPTIONAL = {"fp32st"}                                     # printed only when given
AVX2_VARIANTS = ["fp32", "q8", "i8"]                      # also run with CLIPDEX_ISA=avx2
PEERS = ["ort-fp32", "ort-int8", "torch-fp32"]
RATIO_PEERS = ["ort-fp32", "ort-int8", "torch-fp32"]
FAMILY = {"fp32": "fp32", "fp32st": "fp32", "f16": "fp32", "bf16": "bf16", "q8": "int8", "i8": "int8", "q4": "int8"}
# the peak kind (bench/peak.c --kind) of each kernel named by clipdex_ctx_kernels
FP32_PEAK = {"avx512": "avx512-fma", "avx2": "avx2-fma", "avx-vnni": "avx2-fma", "fma": "avx2-fma"}
INT8_PEAK = {"avx512-vnni": "avx512-vnni", "avx-vnni": "avx-vnni", "avx2": "avx2-int8"}
BF16_DOT = {"avx512-bf16": "avx512-bf16"}
PEAK_KINDS = ["avx2-fma", "avx512-fma", "avx2-int8", "avx-vnni", "avx512-vnni", "avx512-bf16"]
# the speed issue's targets, 2 threads: (label, system, peer, tasks, minimum ratio)
TARGETS = [
    ("fp32 images vs ORT fp32", "fp32", "ort-fp32", [("image", "16"), ("image", "1")], 1.1),
    ("Q8 images vs ORT fp32", "q8", "ort-fp32", [("image", "16"), ("image", "1")], 2.0),
    ("Q8 images vs ORT int8", "q8", "ort-int8", [("image", "16"), ("image", "1")], 1.3),
    ("BF16 images vs ORT fp32", "bf16", "ort-fp32", [("image", "16"), ("image", "1")], 1.6),
    ("fp32 text vs ORT fp32, same positions", "fp32", "ort-fp32", [("text", "t6"), ("text", "t7")], 2.0),
    ("Q8 text vs ORT fp32, same positions", "q8", "ort-fp32", [("text", "t6"), ("text", "t7")], 8.0),
    # the same 8-bit targets with I8 (int8 with one scale per output row, ONNX Runtime's own format)
    ("I8 images vs ORT fp32", "i8", "ort-fp32", [("image", "16"), ("image", "1")], 2.0),
    ("I8 images vs ORT int8", "i8", "ort-int8", [("image", "16"), ("image", "1")], 1.3),
    ("I8 text vs ORT fp32, same positions", "i8", "ort-fp32", [("text", "t6"), ("text", "t7")], 8.0),
]


class Worker:
    """A process speaking the worker protocol (see bench/clipdex_bench.c)."""

    def __init__(self, name, argv, env=None):
        self.name, self.argv = name, argv
        self.error = None
        self.ready = ""
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env, bufsize=1)
        except OSError as e:
            self.p, self.error = None, str(e)
            return
        line = self._read()
        if line is None or not line.startswith("ready"):
            self._fail("did not start (%s)" % (line or "no output"))
        else:
            self.ready = line

    def _read(self):
        line = self.p.stdout.readline()
        return line.strip() if line else None

    def _fail(self, why):
        err = ""
        if self.p:
            try:
                self.p.kill()
                err = self.p.stderr.read().strip().splitlines()
                err = err[-1] if err else ""
            except OSError:
                pass
        self.error = why + ((": " + err) if err else "")
        self.p = None

    def ask(self, cmd):
        if not self.p:
            return None
        try:
            self.p.stdin.write(cmd + "\n")
            self.p.stdin.flush()
        except OSError:
            self._fail("died")
            return None
        line = self._read()
        if line is None:
            self._fail("died on '%s'" % cmd)
            return None
        if line.startswith("error"):
            self.error = line
            return None
        return line

    def close(self):
        if self.p:
            try:
                self.p.stdin.write("quit\n")
                self.p.stdin.flush()
                self.p.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                self.p.kill()
            self.p = None


class System:
    """One column of the comparison: a worker for any thread count, or one per count."""

    def __init__(self, name, workers_by_threads):
        self.name = name
        self.workers = workers_by_threads  # {threads or None: Worker}
        self.rss_kb = None
        self.last_load = None  # (% of all CPUs busy in other processes, % stolen) during the last run

    def worker(self, threads):
        return self.workers.get(threads) or self.workers.get(None)

    def error(self):
        errs = [w.error for w in self.workers.values() if w.error]
        return errs[0] if errs else None

    def run(self, task, threads, seconds):
        w = self.worker(threads)
        if not w:
            return None
        return self.run_on(w, task, threads, seconds)

    def run_on(self, w, task, threads, seconds):
        kind, param = task
        pid = w.p.pid if w.p else None
        c0, p0 = cpu_jiffies(), pid and proc_jiffies(pid)
        line = w.ask("%s %s %d %.3f" % (kind, param, threads, seconds))
        c1, p1 = cpu_jiffies(), pid and proc_jiffies(pid)
        self.last_load = None
        if c0 and c1 and p0 is not None and p1 is not None and c1[2] > c0[2]:
            tot = c1[2] - c0[2]
            others = max(0, (c1[0] - c0[0]) - (p1 - p0))
            self.last_load = (100.0 * others / tot, 100.0 * (c1[1] - c0[1]) / tot)
        if not line:
            return None
        f = line.split()  # result KIND PARAM T ITERS SECONDS GFLOP
        iters, secs = int(f[4]), float(f[5])
        n = int(param) if kind in ("image", "decode", "pixels") else 1
        return iters * n / secs

    def rss(self):
        vals = []
        for w in self.workers.values():
            line = w.ask("rss")
            if line:
                vals.append(int(line.split()[1]))
        return max(vals) if vals else None

    def close(self):
        for w in self.workers.values():
            w.close()


def cpu_jiffies():
    """(busy, steal, total) jiffies of all CPUs from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return user + nice + system + irq + softirq, steal, user + nice + system + idle + iowait + irq + softirq + steal


def proc_jiffies(pid):
    """utime + stime of a process (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return int(rest[11]) + int(rest[12])
    except (OSError, ValueError, IndexError):
        return None


def first_embedding_ms(argv, cwd=None, env=None):
    """Wall time from fork+exec to the first stdout line holding an embedding,
    and the child's peak RSS (wait4)."""
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=cwd, env=env)
    except OSError:
        return None, None
    ms = None
    for line in p.stdout:
        if "embedding" in line:
            ms = (time.monotonic() - t0) * 1000.0
            break
    p.stdout.close()
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        return None, None
    return ms, ru.ru_maxrss


def peak_tool(peak_bin, key, args, timeout):
    """The figure bench/peak.c prints on its `KEY THREADS VALUE` line for `args`, or None."""
    try:
        r = subprocess.run([peak_bin] + args, capture_output=True, text=True, timeout=timeout)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 3 and f[0] == key:
                return float(f[2])
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def peaks_now(peak_bin, threads, kinds):
    """{kind: G ops/s} of bench/peak.c right now at `threads` threads (best of two
    0.05 s runs per kind); kinds the CPU lacks are left out."""
    out = {}
    args = sum([["--kind", k] for k in kinds], []) + ["--threads", str(threads), "--seconds", "0.05", "--repeat", "2"]
    try:
        r = subprocess.run([peak_bin] + args, capture_output=True, text=True, timeout=120)
        for line in r.stdout.splitlines():
            f = line.split()
            if len(f) == 4 and f[0] == "peak":
                out[f[1]] = float(f[3])
    except (OSError, subprocess.SubprocessError, ValueError):
        pass
    return out


def peak_kinds(peak_bin):
    """The kinds bench/peak.c can measure on this CPU."""
    try:
        r = subprocess.run([peak_bin, "--list"], capture_output=True, text=True, timeout=30)
        return [l.split()[1] for l in r.stdout.splitlines() if l.startswith("kind ") and l.split()[2] == "yes"]
    except (OSError, subprocess.SubprocessError, IndexError):
        return []


def parse_ready(line):
    """key=value fields of a worker's ready line (values may be quoted)."""
    out = {}
    try:
        words = shlex.split(line)
    except ValueError:
        words = line.split()
    for kv in words:
        if "=" in kv:
            k, v = kv.split("=", 1)
            out[k] = v
    return out


def kernel_peaks(kernels, isa):
    """{family: peak kind} for a clipdex worker from its kernels line
    ("fp32 avx512, int8 avx512-vnni, bf16 avx512-bf16"); the isa when the line is missing."""
    k = {}
    for part in (kernels or "").split(","):
        w = part.split()
        if len(w) >= 2:
            k[w[0]] = w[1]
    fp = FP32_PEAK.get(k.get("fp32", isa))
    out = {"fp32": fp, "bf16": fp}
    out["int8"] = INT8_PEAK.get(k.get("int8", {"avx512": "avx512-vnni", "avx-vnni": "avx-vnni"}.get(isa, isa)))
    out["bf16dot"] = BF16_DOT.get(k.get("bf16", ""))
    return out


def mem_gbs(peak_bin, threads):
    """Memory read bandwidth right now (bench/peak.c --mem 256, best of two 0.3 s runs), GB/s, or None."""
    return peak_tool(peak_bin, "mem_read_gbs",
                     ["--mem", "256", "--threads", str(threads), "--seconds", "0.3", "--repeat", "2"], 120)


def text_matrix_weights(config_path):
    """Weights of the text tower's matrices (what a short query streams once), from an HF config.json."""
    try:
        with open(config_path) as f:
            c = json.load(f)
        t = c["text_config"]
        h, i, n = t["hidden_size"], t["intermediate_size"], t["num_hidden_layers"]
        return n * (4 * h * h + 2 * h * i) + h * c.get("projection_dim", h)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def med(v):
    v = [x for x in v if x is not None]
    return statistics.median(v) if v else None


def fmt(x, spec, na="n/a"):
    return na if x is None else format(x, spec)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", required=True)
    ap.add_argument("--model", action="append", default=[], metavar="VARIANT=PATH",
                    help="clipdex model per variant (fp32, f16, bf16, q8, i8, q4); missing ones print n/a")
    ap.add_argument("--onnx", help="directory of tools/export_onnx.py's output (ONNX Runtime peer)")
    ap.add_argument("--torch-model", help="model directory for the PyTorch peer")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--node", default="node")
    ap.add_argument("--ort-spin", default="0", help="ONNX Runtime intra_op.allow_spinning (its default: 1)")
    ap.add_argument("--torch-omp-wait", default="PASSIVE", help="OMP_WAIT_POLICY for PyTorch ('' = its default)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--avx2-rounds", type=int, default=2,
                    help="rounds that also run the CLIPDEX_ISA=avx2 columns (0: none)")
    ap.add_argument("--jpeg", help="directory of JPEGs clipdex decodes in its image tasks (default: synthetic)")
    ap.add_argument("--note", action="append", default=[], help="a line for the notes under the table")
    ap.add_argument("--seconds", type=float, default=1.0, help="time per task and system in each round")
    ap.add_argument("--text6", default="a photo of dogs")
    ap.add_argument("--text7", default="a photo of a dog")
    ap.add_argument("--text77", default=" ".join(["photo"] * 100))
    ap.add_argument("--config", help="the source model's config.json (text tower size for the memory bound)")
    ap.add_argument("--out", required=True, help="also write the table here")
    ap.add_argument("--raw", help="write every measurement here (TSV)")
    ap.add_argument("--command", default="make bench")
    ap.add_argument("--build-flags", default="")
    ap.add_argument("--source", default="", help="what was built (git commit)")
    a = ap.parse_args()

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    # PyTorch's OpenMP threads spin-wait by default; on a 2-vCPU VM that makes 2 threads
    # 4-20x slower than 1 (measured), so its workers run with OMP_WAIT_POLICY=PASSIVE
    torch_env = dict(os.environ)
    if a.torch_omp_wait:
        torch_env["OMP_WAIT_POLICY"] = a.torch_omp_wait
    models = dict(s.split("=", 1) for s in a.model)
    fp32_model = models.get("fp32")
    clipdex_cli = os.path.join(a.build, "clipdex")
    bench_bin = os.path.join(a.build, "bench", "clipdex_bench")
    peak_bin = os.path.join(a.build, "bench", "peak")

    # token ids (the peers get ids, not strings; clipdex tokenized once at start-up too)
    texts = {"t6": a.text6, "t7": a.text7, "t77": a.text77}
    ids = {}
    r = subprocess.run([clipdex_cli, "tokenize", "--model", fp32_model] + list(texts.values()),
                       capture_output=True, text=True, check=True)
    for name, line in zip(texts, r.stdout.splitlines()):
        ids[name] = json.loads(line)["ids"]
    idarg = lambda n: ",".join(str(i) for i in ids[n])  # noqa: E731
    ntok = {n: len(ids[n]) for n in ids}

    tasks = [("image", "1"), ("image", "16"), ("text", "t6"), ("text", "t7"), ("text", "t77")]
    thread_counts = [1, 2]

    def task_label(t):
        return "image batch %s" % t[1] if t[0] == "image" else "text %d tokens" % ntok[t[1]]

    # ---- start the workers
    systems = {}
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    jpeg = ["--jpeg", a.jpeg] if a.jpeg else []
    for v in VARIANTS:
        if v in models:
            argv = [bench_bin, "--serve", "--model", models[v]] + jpeg + \
                   sum([["--text", "%s=%s" % (n, t)] for n, t in texts.items()], [])
            systems["clipdex-" + v] = System("clipdex-" + v, {None: Worker("clipdex-" + v, argv)})
    # the AVX2 path beside the best one, unless the best one is AVX2 already
    best = parse_ready(systems["clipdex-fp32"].worker(None).ready) if "clipdex-fp32" in systems else {}
    avx2_names = []
    if a.avx2_rounds > 0 and best.get("isa") not in (None, "avx2", "scalar"):
        env2 = dict(os.environ, CLIPDEX_ISA="avx2")
        for v in AVX2_VARIANTS:
            if v in models:
                name = "clipdex-%s-avx2" % v
                argv = [bench_bin, "--serve", "--model", models[v]] + jpeg + \
                       sum([["--text", "%s=%s" % (n, t)] for n, t in texts.items()], [])
                systems[name] = System(name, {None: Worker(name, argv, env2)})
                avx2_names.append(name)
    ort_js = os.path.join(here, "peers", "ort_worker.js")
    if a.onnx:
        for v in ("fp32", "int8"):
            if not os.path.exists(os.path.join(a.onnx, "image%s.onnx" % ("" if v == "fp32" else "-" + v))):
                continue
            ws = {}
            for t in thread_counts:
                argv = [a.node, ort_js, "--dir", a.onnx, "--variant", v, "--threads", str(t), "--spin", a.ort_spin] + \
                       sum([["--text", "%s=%s" % (n, idarg(n))] for n in ids], [])
                ws[t] = Worker("ort-%s/%d" % (v, t), argv)
            systems["ort-" + v] = System("ort-" + v, ws)
    if a.torch_model:
        argv = [a.python, os.path.join(here, "peers", "torch_worker.py"), "--model", a.torch_model] + \
               sum([["--text", "%s=%s" % (n, idarg(n))] for n in ids], [])
        systems["torch-fp32"] = System("torch-fp32", {None: Worker("torch-fp32", argv, torch_env)})
    for s in systems.values():
        for w in s.workers.values():
            log("%-14s %s" % (w.name, w.ready or ("FAILED: " + str(w.error))))
    gflop = {}
    cw = systems.get("clipdex-fp32") or next((s for s in systems.values() if s.name.startswith("clipdex")), None)
    ready = parse_ready(cw.worker(None).ready) if cw else {}
    for k, v in ready.items():
        if k == "image_gflop":
            gflop[("image", None)] = float(v)
        elif k.endswith("_gflop"):
            gflop[("text", k[:-6])] = float(v)
    # which peak each system's figures are divided by
    kinds = peak_kinds(peak_bin)
    best_fp32 = next((k for k in ("avx512-fma", "avx2-fma") if k in kinds), None)
    best_int8 = next((k for k in ("avx512-vnni", "avx-vnni", "avx2-int8") if k in kinds), None)
    peak_of, bf16dot_of, info = {}, {}, {}
    for name, s in systems.items():
        if name.startswith("clipdex-"):
            r = parse_ready(s.worker(None).ready)
            info[name] = r
            kp = kernel_peaks(r.get("kernels"), r.get("isa"))
            fam = FAMILY[name.split("-")[1]]
            peak_of[name] = kp[fam]
            if fam == "bf16" and kp["bf16dot"]:
                bf16dot_of[name] = kp["bf16dot"]
        else:
            peak_of[name] = best_int8 if name == "ort-int8" else best_fp32

    def task_gflop(t):  # per encode (one image or one text)
        if t[0] == "image":
            return gflop.get(("image", None), 0)
        return gflop.get(("text", t[1]), 0)

    # ---- interleaved rounds
    order = [n for n in ["clipdex-" + v for v in VARIANTS] + avx2_names + PEERS if n in systems]
    res = {}     # (task, threads, system) -> [enc/s per round]
    peaks = {}   # (kind, threads) -> [G ops/s, every measurement]
    decode = {t: [] for t in thread_counts}  # clipdex-fp32 decode + preprocess alone, images/s
    pct = {}     # (task, threads, system) -> [% of that round's peak of its kind]
    pct2 = {}    # the same against the bf16 dot-product peak (BF16 weights)
    load = {}    # (task, threads, system) -> [(others %, steal %)]
    raw = ["round\ttask\tthreads\tsystem\tencodes_per_s\tgflops\tpeak_kind\tpeak_gops"]
    first = {n: [] for n in order}
    first_rss = {}
    t_start = time.monotonic()
    membw = {t: [mem_gbs(peak_bin, t)] for t in thread_counts}
    for rnd in range(a.rounds):
        log("round %d/%d, %.0f s so far" % (rnd + 1, a.rounds, time.monotonic() - t_start))
        live = [n for n in order if n not in avx2_names or rnd < a.avx2_rounds]
        rot = live[rnd % len(live):] + live[:rnd % len(live)] if live else []
        for task in tasks:
            for thr in thread_counts:
                # the peaks are measured right before and after each task's block of
                # systems and the higher one kept, so drift cannot flatter the %
                before = peaks_now(peak_bin, thr, kinds)
                vals = {}
                for name in rot:
                    vals[name] = systems[name].run(task, thr, a.seconds)
                    if systems[name].last_load:
                        load.setdefault((task, thr, name), []).append(systems[name].last_load)
                    time.sleep(0.1)  # let the last system's threads go idle
                after = peaks_now(peak_bin, thr, kinds)
                pk = {}
                for k in kinds:
                    got = [d[k] for d in (before, after) if d.get(k)]
                    peaks.setdefault((k, thr), []).extend(got)
                    pk[k] = max(got) if got else None
                for name, v in vals.items():
                    key = (task, thr, name)
                    res.setdefault(key, []).append(v)
                    g = None if v is None else v * task_gflop(task)
                    p1 = pk.get(peak_of.get(name))
                    pct.setdefault(key, []).append(None if g is None or not p1 else 100 * g / p1)
                    p2 = pk.get(bf16dot_of.get(name))
                    if p2 and g is not None:
                        pct2.setdefault(key, []).append(100 * g / p2)
                    raw.append("%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s" % (rnd + 1, task_label(task), thr, name,
                                                                   fmt(v, ".4f"), fmt(g, ".2f"), peak_of.get(name),
                                                                   fmt(p1, ".2f")))
        # decoding + preprocessing alone (clipdex-fp32's worker; the same code for every type)
        if "clipdex-fp32" in systems:
            for thr in thread_counts:
                decode[thr].append(systems["clipdex-fp32"].run(("decode", "16"), thr, a.seconds / 2))
        # process start -> first text embedding, once per round and system
        for name in rot:
            if name in avx2_names:
                continue
            if name.startswith("clipdex-"):
                argv = [clipdex_cli, "embed", "--model", models[name[8:]], "--text", a.text6]
            elif name.startswith("ort-"):
                argv = [a.node, ort_js, "--dir", a.onnx, "--variant", name[4:], "--spin", a.ort_spin,
                        "--first-text", idarg("t6")]
            else:
                argv = [a.python, os.path.join(here, "peers", "torch_worker.py"), "--model", a.torch_model,
                        "--first-text", idarg("t6")]
            ms, rss = first_embedding_ms(argv, cwd=root, env=torch_env if name.startswith("torch") else None)
            first[name].append(ms)
            if rss:
                first_rss[name] = max(first_rss.get(name, 0), rss)
    for s in systems.values():
        s.rss_kb = s.rss()
        s.close()
    for t in thread_counts:
        membw[t].append(mem_gbs(peak_bin, t))
    wall = time.monotonic() - t_start

    # ---- the table
    L = []
    p = L.append

    def pkstat(kind, t):
        v = [x for x in peaks.get((kind, t), []) if x]
        return "%s [%s-%s]" % (fmt(med(v), ".0f"), fmt(min(v, default=None), ".0f"), fmt(max(v, default=None), ".0f"))

    p("clipdex benchmark, ViT-B/32 shapes (seeded random weights: speed does not depend on the values)")
    p("date      %s" % datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"))
    p("command   %s" % a.command)
    p("machine   %s" % machine())
    p("build     %s" % (a.build_flags or "?"))
    if a.source:
        p("source    %s" % a.source)
    for name in ["clipdex-fp32"] + avx2_names[:1]:
        r = info.get(name)
        if r:
            p("clipdex   %s %s (kernels: %s)%s" % (
                "best path" if name == "clipdex-fp32" else "-avx2 columns (CLIPDEX_ISA=avx2): path", r.get("isa", "?"),
                r.get("kernels", "?"), ("; CPU features clipdex detected: %s" % r.get("cpu", "?").replace(",", " "))
                if name == "clipdex-fp32" else ""))
    if "clipdex-fp32" in info:
        r = info["clipdex-fp32"]
        p("images    clipdex: JPEG bytes -> decode + preprocess (on the task's threads) + embed, %s JPEGs of %s "
          "(%s KiB on average); the peers: preprocessed pixels, decoding not timed" %
          (r.get("jpegs", "?"), a.jpeg or "synthetic 500x375 q90 images", r.get("jpeg_kb", "?")))
        dc = ["%d thread%s %s ms/image" % (t, "s" if t > 1 else "", fmt(med(decode[t]) and 1000.0 / med(decode[t]), ".1f"))
              for t in thread_counts]
        p("          decode + preprocess alone (batch 16): %s" % ", ".join(dc))
    p("peers     %s" % peer_versions(systems))
    p("          threads: ONNX Runtime intra_op.allow_spinning=%s, PyTorch OMP_WAIT_POLICY=%s (see docs/benchmarks.md)" %
      (a.ort_spin, a.torch_omp_wait or "default"))
    if "ort-int8" in systems:
        try:
            with open(os.path.join(a.onnx, "sample.json")) as f:
                bits = json.load(f).get("int8_bits") or 7
        except (OSError, ValueError):
            bits = "?"
        p("          ORT int8: quantize_dynamic recipe (tools/export_onnx.py): u8 activations per tensor, s8 weights "
          "per column, %s-bit weights%s" % (bits, " (reduce_range)" if bits == 7 else ""))
    p("peaks     bench/peak.c, G ops/s (2 per multiply-add), median [min-max] of %d measurements per thread count:" %
      len(peaks.get((kinds[0], 1), [])) if kinds else "peaks     bench/peak.c measured nothing (no AVX2?)")
    for k in PEAK_KINDS:
        if k in kinds:
            p("          %-12s 1 thread %-18s 2 threads %s" % (k, pkstat(k, 1), pkstat(k, 2)))
        else:
            p("          %-12s not measured: this CPU lacks it" % k)
    p("work      image %s GFLOP; text %d tokens %s GFLOP, %d tokens %s GFLOP, %d tokens %s GFLOP "
      "(2 x multiply-adds of the matrix products)" %
      (fmt(gflop.get(("image", None)), ".2f"), ntok["t6"], fmt(gflop.get(("text", "t6")), ".3f"),
       ntok["t7"], fmt(gflop.get(("text", "t7")), ".3f"), ntok["t77"], fmt(gflop.get(("text", "t77")), ".2f")))
    p("method    %d rounds x %.1f s per task and system, interleaved (each task runs on every system back to back;" %
      (a.rounds, a.seconds))
    p("          the -avx2 columns in the first %d); medians over rounds;" % min(a.avx2_rounds, a.rounds))
    p("          %peak = GFLOP/s / the peak (column 'of') at the same thread count measured just before and")
    p("          after that task (the higher): fp32/F16/BF16 weights against the FMA peak of the fp32 kernels")
    p("          they run, Q8/Q4 against the int8 peak of the int8 kernels (clipdex_ctx_kernels), the peers")
    p("          against the best of the machine (ORT int8: the best int8 peak);")
    p("          vs PEER = clipdex encodes/s / PEER encodes/s in the same round (median; > 1: clipdex faster);")
    p("          other = CPU used by other processes during the measurement, % of all CPUs (/proc/stat)")
    p("")
    hdr = "%-22s %3s  %-17s %9s %9s %8s %6s %-11s %6s  %s" % (
        "task", "thr", "system", "encodes/s", "ms/encode", "GFLOP/s", "%peak", "of", "other",
        "  ".join("vs %-10s" % r for r in RATIO_PEERS))
    p(hdr)
    p("-" * len(hdr))
    all_names = ["clipdex-" + v for v in VARIANTS if v in models or v not in OPTIONAL] + avx2_names + PEERS

    def ratio(task, thr, name, peer):
        k1, k2 = (task, thr, name), (task, thr, peer)
        if k1 not in res or k2 not in res:
            return None
        return med([x / y for x, y in zip(res[k1], res[k2]) if x and y])

    for task in tasks:
        for thr in thread_counts:
            for i, name in enumerate(all_names):
                key = (task, thr, name)
                v = med(res.get(key, []))
                lab = task_label(task) if i == 0 else ""
                th = str(thr) if i == 0 else ""
                if v is None:
                    why = "n/a" if name not in systems else "failed"
                    p("%-22s %3s  %-17s %9s" % (lab, th, name, why))
                    continue
                g = v * task_gflop(task)
                ratios = []
                for rp in RATIO_PEERS:
                    rr = ratio(task, thr, name, rp) if name.startswith("clipdex-") else None
                    ratios.append("%13s" % fmt(rr, ".2f", ""))
                oth = med([x[0] for x in load.get(key, [])])
                pc = med(pct.get(key, []))
                p("%-22s %3s  %-17s %9.2f %9.1f %8.1f %6s %-11s %5s%%  %s" %
                  (lab, th, name, v, 1000.0 / v, g, fmt(pc, ".0f", "?") + "%", peak_of.get(name) or "?",
                   fmt(oth, ".0f", "?"), "  ".join(ratios).rstrip()))
        p("")
    for name in bf16dot_of:
        cells = ["%s %d thr %s%%" % (task_label(t), thr, fmt(med(pct2.get((t, thr, name), [])), ".0f"))
                 for t in tasks for thr in thread_counts if pct2.get((t, thr, name))]
        p("%s against the bf16 dot-product peak (%s): %s" % (name, bf16dot_of[name], ", ".join(cells)))
        p("")

    # ---- the speed issue's targets (2 threads)
    p("targets (2 threads; ratios as in the table: same round, median; clipdex images include JPEG decoding)")
    p("%-40s %-16s %10s %12s %8s  %s" % ("target", "task", "best path", "AVX2 path", "need", "verdict"))
    for lab, v, peer, ttasks, need in TARGETS:
        for t in ttasks:
            r1 = ratio(t, 2, "clipdex-" + v, peer)
            r2 = ratio(t, 2, "clipdex-%s-avx2" % v, peer)
            verdict = "n/a" if r1 is None else ("met" if r1 >= need else "MISSED")
            why = ""
            if r1 is None:
                why = " (no %s)" % ("clipdex-" + v if ("clipdex-" + v) not in systems else peer)
            p("%-40s %-16s %10s %12s %8s  %s%s" % (lab, task_label(t), fmt(r1, ".2f"), fmt(r2, ".2f", "-"),
                                                  ">= %.1f" % need, verdict, why))
    p("")
    # a short query as the ONNX Runtime users run it: immich's OpenClipTextualEncoder pads every
    # query to context_length (77) before session.run, rclip and Roboflow use clip.tokenize (77)
    t6, t77 = ("text", "t6"), ("text", "t77")
    if any((t77, thr, "ort-fp32") in res for thr in thread_counts):
        p("6-token query vs ONNX Runtime fed the query padded to 77 positions, as immich, rclip and Roboflow")
        p("Inference call it (the 77-token row above is that cost): clipdex 6-token encodes/s / ort 77-token")
        p("encodes/s, same round, median")
        for thr in thread_counts:
            cells = []
            for name in all_names:
                if not name.startswith("clipdex-") or (t6, thr, name) not in res or (t77, thr, "ort-fp32") not in res:
                    continue
                rr = med([x / y for x, y in zip(res[(t6, thr, name)], res[(t77, thr, "ort-fp32")]) if x and y])
                cells.append("%s %s" % (name, fmt(rr, ".2f")))
            p("  %d thread%s: %s" % (thr, "s" if thr > 1 else "", ", ".join(cells)))
        p("")
    # a short fp32 query reads every text-tower weight once: the memory read rate bounds it
    nw = text_matrix_weights(a.config) if a.config else None
    bw = {t: max([x for x in membw[t] if x] or [0]) or None for t in thread_counts}
    if nw and any(bw.values()):
        mb = nw * 4 / 1e6
        p("memory bound of a short fp32 query: it streams the text tower's %.1f M matrix weights once (%.0f MB);" %
          (nw / 1e6, mb))
        p("machine read bandwidth (bench/peak.c --mem 256, best of before/after): %s" %
          ", ".join("%d thread%s %s GB/s" % (t, "s" if t > 1 else "", fmt(bw[t], ".1f")) for t in thread_counts))
        for thr in thread_counts:
            cells = []
            for name in ("clipdex-fp32", "ort-fp32"):
                v = med(res.get((t6, thr, name), []))
                if v:
                    gbs = v * mb / 1e3
                    cells.append("%s %.1f GB/s (%s of it)" % (name, gbs, fmt(bw[thr] and 100 * gbs / bw[thr], ".0f", "?") + "%"))
            ov = med(res.get((t6, thr, "ort-fp32"), []))
            need = ("; 2x ort-fp32 would need %.1f GB/s" % (2 * ov * mb / 1e3)) if ov else ""
            p("  %d thread%s, 6 tokens: %s%s" % (thr, "s" if thr > 1 else "", ", ".join(cells), need))
        p("")
    p("%-18s %14s %16s %18s" % ("system", "peak RSS MiB", "first text ms", "(its peak RSS MiB)"))
    for name in all_names:
        if name not in systems:
            p("%-18s %14s" % (name, "n/a"))
            continue
        s = systems[name]
        p("%-18s %14s %16s %18s" % (name, fmt(s.rss_kb and s.rss_kb / 1024.0, ".0f"), fmt(med(first[name]), ".0f"),
                                    fmt(first_rss.get(name) and first_rss[name] / 1024.0, ".0f")))
    p("")
    p("peak RSS: the worker process after all tasks (weights + batch-16 activations; clipdex maps F32 weights")
    p("from the file, so their pages count once touched). first text: fork+exec of `clipdex embed --text` /")
    p("`ort_worker.js --first-text` / `torch_worker.py --first-text` until the embedding is printed, warm page")
    p("cache, all threads; the peers get token ids, clipdex also tokenizes. Total bench time %.0f s." % wall)
    allo = [x[0] for v in load.values() for x in v]
    alls = [x[1] for v in load.values() for x in v]
    if allo:
        p("load: other processes used %.0f%% of the CPUs (median over measurements, max %.0f%%); hypervisor steal %.0f%% "
          "(max %.0f%%)." % (med(allo), max(allo), med(alls), max(alls)))
        if med(allo) > 10:
            p("WARNING: the machine was busy with other work during this run: absolute figures are low and noisy;")
            p("         the interleaved ratios are less affected, but re-run on an idle machine before quoting them.")
    for n in a.note:
        p("note: %s" % n)
    errs = [(n, s.error()) for n, s in systems.items() if s.error()]
    for n, e in errs:
        p("note: %s: %s" % (n, e))
    text = "\n".join(L) + "\n"
    sys.stdout.write(text)
    with open(a.out, "w") as f:
        f.write(text)
    if a.raw:
        with open(a.raw, "w") as f:
            f.write("\n".join(raw) + "\n")


def machine():
    model, cores = platform.processor() or "?", os.cpu_count()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        kv = dict(l.split(":", 1) for l in out.splitlines() if ":" in l)
        model = kv.get("Model name", model).strip()
        cps = kv.get("Core(s) per socket", "?").strip()
        tpc = kv.get("Thread(s) per core", "?").strip()
        flags = kv.get("Flags", "").split()
        simd = " ".join(f for f in ("avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx_vnni",
                                    "avx512_bf16", "amx_int8") if f in flags)
        hyp = kv.get("Hypervisor vendor", "").strip()
        return "%s, %d CPUs (%s cores/socket, %s threads/core)%s, flags: %s; %s" % (
            model, cores, cps, tpc, (", " + hyp + " VM") if hyp else "", simd or "no AVX2", platform.platform())
    except (OSError, ValueError):
        return "%s, %d CPUs" % (model, cores)


def peer_versions(systems):
    out = []
    for n in ("ort-fp32", "torch-fp32"):
        s = systems.get(n)
        if s:
            w = next(iter(s.workers.values()))
            out.append(" ".join(w.ready.split()[1:]) if w.ready else n + " (failed)")
    return "; ".join(out) or "none"


if __name__ == "__main__":
    main()
