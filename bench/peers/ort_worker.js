#!/usr/bin/env node
// ort_worker.js - the ONNX Runtime peer of `make bench` (onnxruntime-node, CPU).
//
// Runs the towers exported by tools/export_onnx.py (image[-int8].onnx,
// text[-int8].onnx) and speaks the worker protocol of bench/clipdex_bench.c on
// stdin/stdout, so bench/driver.py can interleave it with clipdex and PyTorch:
//   image B T S   -> result image B T ITERS SECONDS 0
//   text NAME T S -> result text NAME T ITERS SECONDS 0
//   rss           -> rss KILOBYTES
//   quit
// ONNX Runtime fixes the thread count when a session is made, so one worker
// serves one thread count (--threads); the driver starts one per count. The
// first call of each task runs one untimed warm-up.
//
//   node ort_worker.js --dir ONNX_DIR [--variant fp32|int8] [--spin 0|1] --threads T [--text NAME=ID,ID,...]...
//   node ort_worker.js --dir ONNX_DIR [--variant fp32|int8] --check     (cosines vs sample.json)
//   node ort_worker.js --dir ONNX_DIR --first-text ID,ID,...            (load the text tower,
//        embed once, print "embedding ..." : what `process start -> first text embedding` times)
'use strict';

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const ort = require('onnxruntime-node');

function parseArgs(argv) {
  const a = { variant: 'fp32', threads: 1, texts: {}, check: false, firstText: null, dir: null, spin: '1' };
  for (let i = 2; i < argv.length; i++) {
    const k = argv[i];
    if (k === '--dir') a.dir = argv[++i];
    else if (k === '--variant') a.variant = argv[++i];
    else if (k === '--threads') a.threads = parseInt(argv[++i], 10);
    else if (k === '--check') a.check = true;
    else if (k === '--spin') a.spin = argv[++i];
    else if (k === '--first-text') a.firstText = argv[++i].split(',').map(Number);
    else if (k === '--text') {
      const s = argv[++i], eq = s.indexOf('=');
      a.texts[s.slice(0, eq)] = s.slice(eq + 1).split(',').map(Number);
    } else {
      process.stderr.write(`ort_worker: unknown argument ${k}\n`);
      process.exit(2);
    }
  }
  if (!a.dir) {
    process.stderr.write('ort_worker: --dir ONNX_DIR is required\n');
    process.exit(2);
  }
  return a;
}

function modelPath(a, tower) {
  return path.join(a.dir, tower + (a.variant === 'fp32' ? '' : '-' + a.variant) + '.onnx');
}

async function session(a, tower, threads) {
  return ort.InferenceSession.create(modelPath(a, tower), {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // spinning intra-op threads (ONNX Runtime's default, --spin 1) cost it up to 2x at
    // 2 threads on a 2-vCPU VM whose vCPUs share a core; bench/run.sh passes --spin 0
    extra: { session: { 'intra_op.allow_spinning': a.spin } },
  });
}

function idsTensor(ids) {
  return new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]);
}

function now() {
  return Number(process.hrtime.bigint()) * 1e-9;
}

// Seeded pixels in [-2, 2): the values do not change the speed.
function pixels(n) {
  const a = new Float32Array(n);
  let s = 0x2545f491 >>> 0;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    a[i] = (s / 4294967296) * 4 - 2;
  }
  return a;
}

async function timeIt(fn, seconds) {
  let n = 0;
  const t0 = now();
  let t;
  do {
    await fn();
    n++;
    t = now();
  } while (t - t0 < seconds);
  return [n, t - t0];
}

function cosine(a, b) {
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

async function check(a) {
  const meta = JSON.parse(fs.readFileSync(path.join(a.dir, 'sample.json'), 'utf8'));
  const buf = fs.readFileSync(path.join(a.dir, 'sample.bin'));
  const bin = meta.bin;
  let off = 0;
  const take = (shape, Type) => {
    const n = shape.reduce((x, y) => x * y, 1);
    const out = new Type(buf.buffer.slice(buf.byteOffset + off, buf.byteOffset + off + n * Type.BYTES_PER_ELEMENT));
    off += n * Type.BYTES_PER_ELEMENT;
    return out;
  };
  const px = take(bin.pixels[0], Float32Array), ids = take(bin.ids[0], BigInt64Array);
  if (!bin.ref_image) throw new Error('sample.json has no reference outputs (exported with --no-check)');
  const refImg = take(bin.ref_image[0], Float32Array), refTxt = take(bin.ref_text[0], Float32Array);
  const E = meta.cfg.embed, C = meta.cfg.ctx;
  const img = await session(a, 'image', 2), txt = await session(a, 'text', 2);
  const r = await img.run({ pixels: new ort.Tensor('float32', px, bin.pixels[0]) });
  const ci = [];
  for (let i = 0; i < bin.pixels[0][0]; i++)
    ci.push(cosine(r.embeds.data.subarray(i * E, (i + 1) * E), refImg.subarray(i * E, (i + 1) * E)));
  const ct = [];
  for (let i = 0; i < meta.texts.length; i++) {
    const n = meta.n_tokens[i];
    const t = new ort.Tensor('int64', ids.slice(i * C, i * C + n), [1, n]);
    const o = await txt.run({ ids: t });
    ct.push(cosine(o.embeds.data, refTxt.subarray(i * E, (i + 1) * E)));
  }
  const fmt = (v) => v.map((x) => x.toFixed(7)).join(' ');
  console.log(`ort ${a.variant} vs float64 reference: image cosines ${fmt(ci)}; text cosines ${fmt(ct)}`);
  const worst = Math.min(...ci, ...ct);
  const need = a.variant === 'fp32' ? 0.99999 : 0.999;
  console.log(`check ${worst >= need ? 'ok' : 'FAILED'} (min ${worst.toFixed(7)}, need >= ${need})`);
  process.exitCode = worst >= need ? 0 : 1;
}

async function firstText(a) {
  const txt = await session(a, 'text', 0); // 0: ONNX Runtime's default (one per core)
  const o = await txt.run({ ids: idsTensor(a.firstText) });
  console.log('embedding ' + Array.from(o.embeds.data.subarray(0, 4)).map((x) => x.toFixed(6)).join(' '));
}

async function serve(a) {
  const sessions = {};
  const get = async (tower) => (sessions[tower] ??= await session(a, tower, a.threads));
  const S = 224;
  let px = null;
  const warm = new Set();
  const out = (s) => process.stdout.write(s + '\n');
  out(`ready ort ${ort.env.versions.node} variant=${a.variant} threads=${a.threads} allow_spinning=${a.spin}`);
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'image' && w.length === 4) {
      const B = +w[1], T = +w[2], secs = +w[3];
      if (T !== a.threads) { out(`error this worker runs ${a.threads} threads`); continue; }
      const s = await get('image');
      if (!px) px = pixels(16 * 3 * S * S);
      const feed = { pixels: new ort.Tensor('float32', px.subarray(0, B * 3 * S * S), [B, 3, S, S]) };
      const key = 'image' + B;
      if (!warm.has(key)) { await s.run(feed); warm.add(key); }
      const [n, el] = await timeIt(() => s.run(feed), secs);
      out(`result image ${B} ${T} ${n} ${el.toFixed(6)} 0`);
    } else if (w[0] === 'text' && w.length === 4) {
      const name = w[1], T = +w[2], secs = +w[3];
      if (T !== a.threads) { out(`error this worker runs ${a.threads} threads`); continue; }
      if (!a.texts[name]) { out(`error unknown text '${name}'`); continue; }
      const s = await get('text');
      const feed = { ids: idsTensor(a.texts[name]) };
      const key = 'text' + name;
      if (!warm.has(key)) { await s.run(feed); warm.add(key); }
      const [n, el] = await timeIt(() => s.run(feed), secs);
      out(`result text ${name} ${T} ${n} ${el.toFixed(6)} 0`);
    } else if (w[0] === 'rss') {
      out(`rss ${process.resourceUsage().maxRSS}`);
    } else if (w[0] === 'quit') {
      break;
    } else {
      out('error bad command');
    }
  }
  rl.close();
}

(async () => {
  const a = parseArgs(process.argv);
  if (a.check) await check(a);
  else if (a.firstText) await firstText(a);
  else await serve(a);
})().catch((e) => {
  process.stderr.write(`ort_worker: ${e.stack || e}\n`);
  process.exit(1);
});
