// tools/detect/make_scene.mjs - the detector test's made-up scene: people
// cut from the sample photos (the astronaut, the cameraman) pasted at known
// places on a plain background, scaled with nearest neighbour, one of them
// mirrored ("scene": three people on 960x540); or five people 197 to 369 px
// tall, two mirrored, on the coffee photo scaled up ("crowd": 960x640).
// Writes the PNG and, beside it, the pasted rectangles (.json) the test
// expects a person box on.
//
// usage: node make_scene.mjs PHOTOS_DIR OUT.png [scene|crowd]
import fs from 'node:fs';
import path from 'node:path';
import pngjs from 'pngjs';

const [photos, out, kind = 'scene'] = process.argv.slice(2);
const read = (f) => pngjs.PNG.sync.read(fs.readFileSync(path.join(photos, f)));
const crowd = kind === 'crowd';
const W = 960, H = crowd ? 640 : 540;
const scene = new pngjs.PNG({ width: W, height: H });
if (crowd) { // the coffee photo, scaled to W x H (nearest)
  const bg = read('coffee.png');
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const si = (Math.floor(y * bg.height / H) * bg.width + Math.floor(x * bg.width / W)) * 4;
      scene.data.set([bg.data[si], bg.data[si + 1], bg.data[si + 2], 255], (y * W + x) * 4);
    }
} else {
  for (let i = 0; i < W * H; i++) scene.data.set([150, 160, 140, 255], i * 4);
}
// [source, crop x0 y0 x1 y1 (the person in the source), scale, at x, at y, mirror]
const A = [20, 20, 360, 512], C = [10, 70, 320, 512];
const pastes = crowd ? [
  ['astronaut.png', A, 0.4, 20, 420, false],
  ['camera.png', C, 0.6, 180, 330, false],
  ['astronaut.png', A, 0.6, 390, 330, true],
  ['camera.png', C, 0.5, 560, 30, true],
  ['astronaut.png', A, 0.75, 700, 260, false],
] : [
  ['astronaut.png', A, 0.75, 30, 150, false],
  ['camera.png', C, 0.9, 330, 130, false],
  ['astronaut.png', A, 0.55, 700, 260, true],
];
const rects = [];
for (const [file, [cx0, cy0, cx1, cy1], s, ax, ay, mirror] of pastes) {
  const src = read(file);
  const w = Math.round((cx1 - cx0) * s), h = Math.round((cy1 - cy0) * s);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const sx = cx0 + Math.floor((mirror ? w - 1 - x : x) / s), sy = cy0 + Math.floor(y / s);
      const si = (sy * src.width + sx) * 4, di = ((ay + y) * W + ax + x) * 4;
      scene.data.set([src.data[si], src.data[si + 1], src.data[si + 2], 255], di);
    }
  rects.push([ax, ay, ax + w, ay + h]);
}
fs.writeFileSync(out, pngjs.PNG.sync.write(scene, { colorType: 2 }));
fs.writeFileSync(out.replace(/\.png$/, '.pasted.json'), JSON.stringify({ person_rects: rects }) + '\n');
