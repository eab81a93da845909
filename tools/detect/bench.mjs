// tools/detect/bench.mjs - TF.js's speed on the NanoDet graph model, the
// peer of bench/detect_bench.sh: model.execute on one 416x416 input, after
// warm-up; prints one line "tfjs-BACKEND threads=N ms=MEDIAN min=MIN".
// usage: node bench.mjs MODEL_DIR cpu|wasm THREADS RUNS
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import * as wasm from '@tensorflow/tfjs-backend-wasm';

const [dir, backend, threads, runs] = process.argv.slice(2);
const require = createRequire(import.meta.url);
if (backend === 'wasm') {
  wasm.setWasmPaths(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + '/');
  if (wasm.setThreadsCount) wasm.setThreadsCount(Number(threads));
}
await tf.setBackend(backend);
await tf.ready();
const g = JSON.parse(fs.readFileSync(path.join(dir, 'nanodet.json'), 'utf8'));
const bin = fs.readFileSync(path.join(dir, g.weightsManifest[0].paths[0]));
const model = await tf.loadGraphModel(tf.io.fromMemory({
  modelTopology: g.modelTopology, weightSpecs: g.weightsManifest[0].weights,
  weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
}));
const x = tf.randomUniform([1, 3, 416, 416], -2, 2, 'float32', 1);
const heads = ['Identity:0', 'Identity_1:0', 'Identity_2:0', 'Identity_3:0', 'Identity_4:0', 'Identity_5:0'];
const once = () => { const o = model.execute(x, heads); o.forEach((t) => t.dataSync()); tf.dispose(o); };
once(); once();
const ms = [];
for (let i = 0; i < Number(runs); i++) { const t0 = performance.now(); once(); ms.push(performance.now() - t0); }
ms.sort((a, b) => a - b);
const actual = backend === 'wasm' && wasm.getThreadsCount ? wasm.getThreadsCount() : 1;
console.log(`tfjs-${backend} threads=${actual} ms=${ms[ms.length >> 1].toFixed(2)} min=${ms[0].toFixed(2)}`);
