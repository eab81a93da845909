// tools/detect/make_scene.mjs - the detector test's made-up scene: people
// cut from the sample photos (the astronaut, the cameraman) pasted at known
// places on a plain background, scaled with nearest neighbour, one of them
// mirrored. Writes the PNG and, beside it, the pasted rectangles (.json) the
// test expects a person box on.
//
// usage: node make_scene.mjs PHOTOS_DIR OUT.png
import fs from 'node:fs';
import path from 'node:path';
import pngjs from 'pngjs';

const [photos, out] = process.argv.slice(2);
const read = (f) => pngjs.PNG.sync.read(fs.readFileSync(path.join(photos, f)));
const W = 960, H = 540;
const scene = new pngjs.PNG({ width: W, height: H });
for (let i = 0; i < W * H; i++) scene.data.set([150, 160, 140, 255], i * 4);
// [source, crop x0 y0 x1 y1 (the person in the source), scale, at x, at y, mirror]
const pastes = [
  ['astronaut.png', [20, 20, 360, 512], 0.75, 30, 150, false],
  ['camera.png', [10, 70, 320, 512], 0.9, 330, 130, false],
  ['astronaut.png', [20, 20, 360, 512], 0.55, 700, 260, true],
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
