#!/usr/bin/python3
"""ref_preprocess.py - Pillow (9.4) reference for clipdex's image decoding and
preprocessing; run with the Debian python3 that has PIL and numpy.

  tools/ref_preprocess.py gen [DIR]     write the small test images and
                                        DIR/manifest.txt (default
                                        tests/golden/image)
  tools/ref_preprocess.py crop FILE N   print the reference 8-bit crop at size
                                        N as hex (for debugging)

The pipeline is OpenAI CLIP's: Resize(N, BICUBIC) (torchvision's size rule),
CenterCrop(N), convert("RGB"). Each manifest line is
  file mode width height size fnv1a32(crop bytes, HWC RGB) exif_orient
where width/height/mode are as Pillow opens the file (EXIF ignored) and the
crop is computed with EXIF ignored; exif_orient lines carry the size after
ImageOps.exif_transpose and the crop of the transposed image.
"""
import io
import os
import struct
import sys

import numpy as np
from PIL import Image, ImageOps


def fnv1a(b):
    h = 0x811C9DC5
    for x in b:
        h ^= x
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def ref_crop(im, n):
    w, h = im.size
    short, long_ = (w, h) if w <= h else (h, w)
    new_short, new_long = n, int(n * long_ / short)
    nw, nh = (new_short, new_long) if w <= h else (new_long, new_short)
    r = im.resize((nw, nh), Image.BICUBIC)
    top = int(round((nh - n) / 2.0))
    left = int(round((nw - n) / 2.0))
    c = r.crop((left, top, left + n, top + n))
    return np.asarray(c.convert("RGB"), dtype=np.uint8).tobytes()


def noise(rng, w, h, c):
    """Smooth gradient plus noise: compresses a little, stresses the filter."""
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255 // max(w - 1, 1) + y * 127 // max(h - 1, 1))[..., None]
    a = (base + rng.integers(0, 90, (h, w, c))) % 256
    return a.astype(np.uint8)


def gen(d):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(1234)
    W, H = 45, 33
    files = []

    def save(name, im, **kw):
        im.save(os.path.join(d, name), **kw)
        files.append(name)

    rgb = Image.fromarray(noise(rng, W, H, 3), "RGB")
    save("rgb.png", rgb)
    rgba = noise(rng, W, H, 4)
    rgba[..., 3] = rng.choice([0, 1, 77, 128, 200, 254, 255], (H, W))
    save("rgba.png", Image.fromarray(rgba, "RGBA"))
    la = noise(rng, H, W, 2)  # portrait
    la[..., 1] = rng.choice([0, 3, 90, 180, 255], (W, H))
    save("la.png", Image.fromarray(la, "LA"))
    save("l.png", Image.fromarray(noise(rng, W, H, 1)[..., 0], "L"))
    p = Image.fromarray(rng.integers(0, 16, (H, W)).astype(np.uint8), "P")
    p.putpalette(list(rng.integers(0, 256, 48).astype(int)))
    save("p.png", p)
    save("bit.png", Image.fromarray(rng.integers(0, 2, (H, W)).astype(bool)).convert("1"))
    save("p.gif", p)
    save("rgb.bmp", rgb)
    save("p8.bmp", p)
    save("bit.bmp", Image.open(os.path.join(d, "bit.png")))
    save("rgb.tif", rgb)
    save("rgba.tif", Image.open(os.path.join(d, "rgba.png")))
    save("p.tif", p)
    save("l.pgm", Image.open(os.path.join(d, "l.png")))
    save("rgb.ppm", rgb)
    save("lossless.webp", Image.open(os.path.join(d, "rgba.png")), lossless=True)
    save("lossy.webp", rgb, quality=80)
    save("rgb.jpg", rgb, quality=90)
    save("l.jpg", Image.open(os.path.join(d, "l.png")), quality=90)
    save("cmyk.jpg", rgb.convert("CMYK"), quality=90)
    # EXIF orientation 6 (rotate 90 clockwise) on a lossless PNG and a JPEG
    ex = Image.Exif()
    ex[0x0112] = 6
    save("orient6.png", rgb, exif=ex.tobytes())
    ex[0x0112] = 8
    save("orient8.jpg", rgb, quality=90, exif=ex.tobytes())
    # 16-bit PNM / scaled maxval
    hdr = b"P6\n# comment\n%d %d\n1000\n" % (W, H)
    data = (noise(rng, W, H, 3).astype(np.uint16) * 3).astype(">u2").tobytes()
    with open(os.path.join(d, "rgb16.ppm"), "wb") as f:
        f.write(hdr + data)
    files.append("rgb16.ppm")
    # 16-bit BMP (5-5-5)
    row = ((W * 16 + 31) >> 3) & ~3
    px = rng.integers(0, 1 << 15, (H, W)).astype("<u2")
    body = b"".join(px[y].tobytes().ljust(row, b"\0") for y in range(H - 1, -1, -1))
    hdr = b"BM" + struct.pack("<IHHI", 14 + 40 + len(body), 0, 0, 54)
    hdr += struct.pack("<IiiHHIIiiII", 40, W, H, 1, 16, 0, len(body), 2835, 2835, 0, 0)
    with open(os.path.join(d, "rgb16.bmp"), "wb") as f:
        f.write(hdr + body)
    files.append("rgb16.bmp")

    lines = []
    for name in files:
        path = os.path.join(d, name)
        for n in (16, 40):
            im = Image.open(path)
            crop = ref_crop(im, n)
            lines.append("%s %s %d %d %d %08x 0" % (name, im.mode, im.size[0], im.size[1], n, fnv1a(crop)))
        im = Image.open(path)
        o = im.getexif().get(0x0112)
        if o and o != 1:
            t = ImageOps.exif_transpose(im)
            crop = ref_crop(t, 16)
            lines.append("%s %s %d %d %d %08x %d" % (name, t.mode, t.size[0], t.size[1], 16, fnv1a(crop), o))
    with open(os.path.join(d, "manifest.txt"), "w") as f:
        f.write("# generated by tools/ref_preprocess.py gen (Pillow %s)\n" % Image.__version__)
        f.write("# file mode width height size fnv1a32-of-crop exif-orientation(0: ignored)\n")
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "gen":
        gen(sys.argv[2] if len(sys.argv) > 2 else "tests/golden/image")
    elif len(sys.argv) == 4 and sys.argv[1] == "crop":
        im = Image.open(sys.argv[2])
        print(im.mode, im.size)
        print(ref_crop(im, int(sys.argv[3])).hex())
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
