// tools/detect/ref.mjs - the reference for clipdex's detector: the NanoDet
// graph model run by TensorFlow.js itself (pure-JS CPU backend), with the
// pre- and post-processing written here independently of the C code from
// NanoDet's own definition (nanodet/model/head/gfl_head.py get_bboxes and
// nanodet/model/module/nms.py):
//   letterbox: scale r = min(416/w, 416/h), size (round(w r), round(h r)),
//     bilinear with half-pixel centres (tf.image.resizeBilinear), centred on
//     a black 416x416 canvas at offset floor((416 - size) / 2);
//   input: BGR, (v - mean) / std with NanoDet's mean and std, NCHW;
//   heads: per stride s in 8, 16, 32 a (H W, 80) class score (already a
//     sigmoid in the graph) and (H W, 4 x 11) distance distribution; the
//     distance is softmax(bins) . [0..10] x s from the cell centre
//     ((x + 0.5) s, (y + 0.5) s), clamped to the input;
//   candidates: every (cell, class) with score > 0.05; NMS per class at IoU
//     0.6 (tf.image.nonMaxSuppression), then the best 100 by score.
// Boxes are mapped back to the original image's pixels.
//
// usage: node ref.mjs MODEL_DIR OUT_DIR IMAGE.png...
//   writes OUT_DIR/NAME.json (boxes, input statistics) and NAME.heads.f32
//   (every 61st value of each head, in the order of HEADS below).
import fs from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import pngjs from 'pngjs';

const SIZE = 416, STRIDES = [8, 16, 32], BINS = 11, STEP = 61;
const MEAN = [103.53, 116.28, 123.675], STD = [57.375, 57.12, 58.395]; // B, G, R
const HEADS = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0', 'Identity_4:0', 'Identity_5:0'];

async function loadModel(dir) {
  const g = JSON.parse(fs.readFileSync(path.join(dir, 'nanodet.json'), 'utf8'));
  const bin = fs.readFileSync(path.join(dir, g.weightsManifest[0].paths[0]));
  const data = bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength);
  return tf.loadGraphModel(tf.io.fromMemory({
    modelTopology: g.modelTopology, weightSpecs: g.weightsManifest[0].weights, weightData: data,
    format: g.format, generatedBy: g.generatedBy, convertedBy: g.convertedBy, signature: g.signature,
  }));
}

function readPng(file) {
  const png = pngjs.PNG.sync.read(fs.readFileSync(file), { colorType: 2, inputColorType: undefined });
  const rgb = new Float32Array(png.width * png.height * 3);
  for (let i = 0; i < png.width * png.height; i++) {
    // pngjs gives RGBA; alpha is dropped (clipdex composites on black? no: it
    // ignores alpha for opaque files; the test images are opaque)
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = png.data[i * 4 + c];
  }
  return { w: png.width, h: png.height, rgb };
}

function letterbox(img) {
  const r = Math.min(SIZE / img.w, SIZE / img.h);
  const nw = Math.max(1, Math.round(img.w * r)), nh = Math.max(1, Math.round(img.h * r));
  const px = Math.floor((SIZE - nw) / 2), py = Math.floor((SIZE - nh) / 2);
  return tf.tidy(() => {
    const t = tf.tensor3d(img.rgb, [img.h, img.w, 3]);
    const rs = tf.image.resizeBilinear(t, [nh, nw], false, true);
    const canvas = tf.pad(rs, [[py, SIZE - nh - py], [px, SIZE - nw - px], [0, 0]]);
    const bgr = tf.reverse(canvas, 2);
    const norm = tf.div(tf.sub(bgr, tf.tensor1d(MEAN)), tf.tensor1d(STD));
    return { input: tf.expandDims(tf.transpose(norm, [2, 0, 1]), 0), map: { nw, nh, px, py } };
  });
}

function decode(cls, reg, img, map) {
  const cand = []; // {box: [x0, y0, x1, y1] in input pixels, score, cls}
  let off = 0;
  for (const s of STRIDES) {
    const g = Math.ceil(SIZE / s), n = g * g;
    for (let i = 0; i < n; i++) {
      const cx = (i % g + 0.5) * s, cy = (Math.floor(i / g) + 0.5) * s;
      const d = [0, 0, 0, 0];
      for (let side = 0; side < 4; side++) {
        const v = reg[s].subarray(i * 4 * BINS + side * BINS, i * 4 * BINS + (side + 1) * BINS);
        let m = -Infinity; for (const x of v) m = Math.max(m, x);
        let z = 0, e = 0; v.forEach((x, b) => { const p = Math.exp(x - m); z += p; e += p * b; });
        d[side] = e / z * s;
      }
      const clamp = (x) => Math.min(Math.max(x, 0), SIZE);
      const box = [clamp(cx - d[0]), clamp(cy - d[1]), clamp(cx + d[2]), clamp(cy + d[3])];
      for (let c = 0; c < 80; c++) {
        const sc = cls[s][i * 80 + c];
        if (sc > 0.05) cand.push({ box, score: sc, cls: c });
      }
    }
    off += n;
  }
  const kept = [];
  for (let c = 0; c < 80; c++) {
    const cc = cand.filter((a) => a.cls === c);
    if (!cc.length) continue;
    const boxes = tf.tensor2d(cc.map((a) => [a.box[1], a.box[0], a.box[3], a.box[2]]));
    const scores = tf.tensor1d(cc.map((a) => a.score));
    const idx = tf.image.nonMaxSuppression(boxes, scores, 100, 0.6, 0.05).dataSync();
    for (const k of idx) kept.push(cc[k]);
    tf.dispose([boxes, scores]);
  }
  kept.sort((a, b) => b.score - a.score);
  const sx = img.w / map.nw, sy = img.h / map.nh;
  return kept.slice(0, 100).map((a) => ({
    cls: a.cls, score: a.score,
    box: [Math.min(Math.max((a.box[0] - map.px) * sx, 0), img.w), Math.min(Math.max((a.box[1] - map.py) * sy, 0), img.h),
          Math.min(Math.max((a.box[2] - map.px) * sx, 0), img.w), Math.min(Math.max((a.box[3] - map.py) * sy, 0), img.h)],
  }));
}

async function main() {
  const [dir, out, ...files] = process.argv.slice(2);
  await tf.setBackend('cpu');
  const model = await loadModel(dir);
  fs.mkdirSync(out, { recursive: true });
  for (const f of files) {
    const img = readPng(f);
    const { input, map } = letterbox(img);
    const t0 = Date.now();
    const outs = model.execute(input, HEADS);
    const ms = Date.now() - t0;
    const vals = outs.map((o) => o.dataSync());
    const cls = {}, reg = {};
    STRIDES.forEach((s, k) => { cls[s] = vals[k]; reg[s] = vals[3 + k]; });
    const boxes = decode(cls, reg, img, map);
    const inp = input.dataSync();
    let sum = 0, sq = 0; for (const v of inp) { sum += v; sq += v * v; }
    const sub = []; for (const v of vals) for (let i = 0; i < v.length; i += STEP) sub.push(v[i]);
    const name = path.basename(f).replace(/\.png$/, '');
    fs.writeFileSync(path.join(out, name + '.heads.f32'), Buffer.from(new Float32Array(sub).buffer));
    const res = { image: path.basename(f), width: img.w, height: img.h, letterbox: map,
      input_sum: sum, input_sumsq: sq, heads: HEADS, heads_step: STEP, heads_values: sub.length,
      tfjs: tf.version.tfjs, backend: tf.getBackend(), boxes };
    fs.writeFileSync(path.join(out, name + '.json'), JSON.stringify(res, null, 1) + '\n');
    console.log(`${name}: ${ms} ms, ${boxes.length} boxes; best:`,
      boxes.slice(0, 4).map((b) => `${b.cls}:${b.score.toFixed(3)} [${b.box.map((x) => x.toFixed(0))}]`).join(' '));
    tf.dispose([input, ...outs]);
  }
}
main();
