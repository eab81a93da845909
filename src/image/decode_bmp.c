/*
 * decode_bmp.c - a small, bounds-checked BMP reader following Pillow 9.4's
 * BmpImagePlugin, written here rather than taken from stb_image because
 * stb_image expands palettes to RGB, and the reference resizes palette
 * images with nearest-neighbour in mode P: the mode matters.
 *   1/4/8-bit: P with the file's palette; a 2-colour black/white palette
 *              gives mode 1 and a 256-level gray ramp gives L (Pillow drops
 *              such palettes); RLE8/RLE4 decoded like Pillow's decoder.
 *   16-bit:    RGB, 5-5-5 (or 5-6-5 with those bitfields), c * 255 / 31.
 *   24-bit:    RGB.  32-bit: RGB (X ignored) or RGBA for bitfields with an
 *              alpha mask (Pillow's supported mask sets only).
 * Headers: OS/2 core (12 bytes) and Windows 40/64/108/124. Bottom-up unless
 * the height is negative.
 * Invariant: every byte read is inside the buffer; the size is checked
 * before allocating; short pixel data is "truncated BMP".
 */
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

static uint32_t le16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t le32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

static int bmp_fail(clipdex_ctx *ctx, clipdex_image *img, int st, const char *msg)
{
    free(img->pixels);
    img->pixels = NULL;
    return cdx_error(ctx, st, "%s", msg);
}

static int mask_shift(uint32_t m)
{
    if (m == 0) return -1;
    int s = 0;
    while (!(m & 1)) { m >>= 1; s++; }
    return m == 0xFF ? s : -1;
}

/* Pillow's BmpRleDecoder: fills indices row after row (file order). */
static void rle_decode(const uint8_t *d, size_t n, size_t pos, int rle4, uint8_t *buf, size_t w, size_t total)
{
    size_t len = 0, x = 0;
    while (len < total) {
        if (pos > n || n - pos < 2) break;
        uint32_t num = d[pos], byte = d[pos + 1];
        pos += 2;
        if (num) {
            if (x + num > w) num = x < w ? (uint32_t)(w - x) : 0;
            for (uint32_t i = 0; i < num && len < total; i++)
                buf[len++] = rle4 ? (uint8_t)(i % 2 == 0 ? byte >> 4 : byte & 15) : (uint8_t)byte;
            x += num;
        } else if (byte == 0) { /* end of line */
            while (len % w != 0 && len < total) buf[len++] = 0;
            x = 0;
        } else if (byte == 1) { /* end of bitmap */
            break;
        } else if (byte == 2) { /* delta: Pillow reads two bytes, then two more */
            if (n - pos < 2) break;
            pos += 2;
            if (n - pos < 2) break;
            size_t right = d[pos], up = d[pos + 1];
            pos += 2;
            size_t skip = right + up * w;
            for (size_t i = 0; i < skip && len < total; i++) buf[len++] = 0;
            x = len % w;
        } else { /* absolute run */
            size_t cnt = rle4 ? byte / 2 : byte;
            size_t avail = n - pos < cnt ? n - pos : cnt;
            for (size_t i = 0; i < avail; i++) {
                uint8_t b = d[pos + i];
                if (rle4) {
                    if (len < total) buf[len++] = b >> 4;
                    if (len < total) buf[len++] = b & 15;
                } else if (len < total) {
                    buf[len++] = b;
                }
            }
            pos += avail;
            if (avail < cnt) break;
            x += byte;
            if (pos % 2 != 0 && pos < n) pos++; /* word alignment, never past the end */
        }
    }
    if (len < total) memset(buf + len, 0, total - len);
}

int cdx_decode_bmp(clipdex_ctx *ctx, const uint8_t *d, size_t n, const struct cdx_decode_opts *o,
                   clipdex_image *img, struct cdx_decode_out *out)
{
    (void)out;
    if (n < 18) return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated BMP header");
    uint32_t offset = le32(d + 10), hsize = le32(d + 14);
    if (hsize != 12 && hsize != 40 && hsize != 64 && hsize != 108 && hsize != 124)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP header size %u", hsize);
    if (n - 14 < hsize) return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated BMP header");
    const uint8_t *h = d + 18;
    uint64_t w, ht;
    uint32_t bits, comp = 0, colors = 0, ppad;
    int topdown = 0;
    size_t pos = 14 + hsize;
    uint32_t rm = 0, gm = 0, bm = 0, am = 0;
    if (hsize == 12) {
        w = le16(h);
        ht = le16(h + 2);
        bits = le16(h + 6);
        ppad = 3;
    } else {
        w = le32(h);
        uint32_t hr = le32(h + 4);
        topdown = h[7] == 0xFF;
        ht = topdown ? (uint64_t)(0x100000000ull - hr) : hr;
        bits = le16(h + 10);
        comp = le32(h + 12);
        colors = le32(h + 28);
        ppad = 4;
        if (comp == 3) {
            if (hsize >= 56) {
                rm = le32(h + 36); gm = le32(h + 40); bm = le32(h + 44); am = le32(h + 48);
            } else {
                if (n - pos < 12) return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated BMP header");
                rm = le32(d + pos); gm = le32(d + pos + 4); bm = le32(d + pos + 8);
                pos += 12;
            }
        }
    }
    if (bits != 1 && bits != 4 && bits != 8 && bits != 16 && bits != 24 && bits != 32)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP pixel depth %u", bits);
    if (colors == 0) colors = bits <= 8 ? 1u << bits : 0;
    if (offset == 14 + hsize && bits <= 8) offset += 4 * colors;
    int st = cdx_image_check_size(ctx, o, "BMP", w, ht);
    if (st) return st;

    /* pixel layout: 0 palette, 1 BGR;15, 2 BGR;16, 3 BGR, 4 bytes by 8-bit masks */
    int layout, mode;
    int rs = 16, gs = 8, bs = 0, as = -1;
    if (bits <= 8) {
        if (comp != 0 && comp != 1 && comp != 2)
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP compression %u", comp);
        if ((comp == 1 && bits != 8) || (comp == 2 && bits != 4))
            return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt BMP: RLE with %u bits", bits);
        layout = 0;
        mode = CLIPDEX_MODE_P;
    } else if (comp == 0) {
        layout = bits == 16 ? 1 : bits == 24 ? 3 : 4;
        mode = CLIPDEX_MODE_RGB;
    } else if (comp == 3) {
        mode = CLIPDEX_MODE_RGB;
        if (bits == 32) {
            if (rm == 0 && gm == 0 && bm == 0 && am == 0) { rm = 0xFF0000; gm = 0xFF00; bm = 0xFF; am = 0xFF000000u; }
            rs = mask_shift(rm); gs = mask_shift(gm); bs = mask_shift(bm); as = am ? mask_shift(am) : -1;
            int ok = (rm == 0xFF0000 && gm == 0xFF00 && bm == 0xFF && (am == 0 || am == 0xFF000000u)) ||
                     (rm == 0xFF000000u && gm == 0xFF0000 && bm == 0xFF00 && (am == 0 || am == 0xFF)) ||
                     (rm == 0xFF && gm == 0xFF00 && bm == 0xFF0000 && am == 0xFF000000u);
            if (!ok) return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP bitfields layout");
            layout = 4;
            if (am) mode = CLIPDEX_MODE_RGBA;
        } else if (bits == 24 && rm == 0xFF0000 && gm == 0xFF00 && bm == 0xFF) {
            layout = 3;
        } else if (bits == 16 && rm == 0xF800 && gm == 0x7E0 && bm == 0x1F) {
            layout = 2;
        } else if (bits == 16 && rm == 0x7C00 && gm == 0x3E0 && bm == 0x1F) {
            layout = 1;
        } else {
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP bitfields layout");
        }
    } else {
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported BMP compression %u", comp);
    }

    uint8_t pal[768];
    for (int i = 0; i < 256; i++) pal[3 * i] = pal[3 * i + 1] = pal[3 * i + 2] = (uint8_t)i;
    if (layout == 0) {
        if (colors == 0 || colors > 65536) return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt BMP: %u palette colors", colors);
        if ((n - pos) / ppad < colors) return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated BMP palette");
        int gray = 1;
        for (uint32_t i = 0; i < colors; i++) {
            const uint8_t *p = d + pos + (size_t)i * ppad;
            uint32_t want = colors == 2 ? (i ? 255 : 0) : i;
            if (p[0] != want || p[1] != want || p[2] != want) gray = 0;
            if (i < 256) { pal[3 * i] = p[2]; pal[3 * i + 1] = p[1]; pal[3 * i + 2] = p[0]; }
        }
        /* Pillow: a gray palette is dropped and the indices read as gray
         * levels; we do so where that gives the same pixels (1-bit
         * black/white -> 1, 8-bit ramps -> L) and keep P otherwise. */
        if (gray && colors == 2 && bits == 1) mode = CLIPDEX_MODE_1;
        else if (gray && bits == 8) mode = CLIPDEX_MODE_L;
    }
    if ((st = cdx_image_alloc(ctx, img, (uint32_t)w, (uint32_t)ht, mode, "bmp"))) return st;
    if (mode == CLIPDEX_MODE_P) memcpy(img->palette, pal, sizeof pal);
    if (offset > n) return bmp_fail(ctx, img, CLIPDEX_E_IMAGE, "truncated BMP (no pixel data)");
    const size_t W = (size_t)w, H = (size_t)ht;
    uint8_t *px = img->pixels;

    if (layout == 0 && comp != 0) {
        rle_decode(d, n, offset, comp == 2, px, W, W * H);
        /* rows are stored bottom-up unless top-down */
        if (!topdown) {
            uint8_t *tmp = malloc(W);
            if (!tmp) return bmp_fail(ctx, img, CLIPDEX_E_NOMEM, "out of memory");
            for (size_t y = 0; y < H / 2; y++) {
                memcpy(tmp, px + y * W, W);
                memcpy(px + y * W, px + (H - 1 - y) * W, W);
                memcpy(px + (H - 1 - y) * W, tmp, W);
            }
            free(tmp);
        }
    } else {
        size_t stride = ((W * bits + 31) >> 3) & ~(size_t)3;
        if (H > (n - offset) / stride) return bmp_fail(ctx, img, CLIPDEX_E_IMAGE, "truncated BMP (pixel data ends early)");
        for (size_t y = 0; y < H; y++) {
            const uint8_t *row = d + offset + (topdown ? y : H - 1 - y) * stride;
            uint8_t *dst = px + y * W * img->channels;
            for (size_t x = 0; x < W; x++) {
                switch (layout) {
                case 0: {
                    uint32_t v = bits == 8 ? row[x] : bits == 4 ? (row[x / 2] >> (x % 2 ? 0 : 4)) & 15
                                                                : (row[x / 8] >> (7 - x % 8)) & 1;
                    dst[x] = mode == CLIPDEX_MODE_1 ? (v ? 255 : 0) : (uint8_t)v;
                    break;
                }
                case 1:
                case 2: {
                    uint32_t p = le16(row + 2 * x);
                    uint32_t b = p & 31, g, r;
                    if (layout == 1) { g = (p >> 5) & 31; r = (p >> 10) & 31; g = g * 255 / 31; }
                    else { g = (p >> 5) & 63; r = (p >> 11) & 31; g = g * 255 / 63; }
                    dst[3 * x] = (uint8_t)(r * 255 / 31);
                    dst[3 * x + 1] = (uint8_t)g;
                    dst[3 * x + 2] = (uint8_t)(b * 255 / 31);
                    break;
                }
                case 3:
                    dst[3 * x] = row[3 * x + 2];
                    dst[3 * x + 1] = row[3 * x + 1];
                    dst[3 * x + 2] = row[3 * x];
                    break;
                default: {
                    uint32_t p = le32(row + 4 * x);
                    int c = img->channels;
                    dst[c * x] = (uint8_t)(p >> rs);
                    dst[c * x + 1] = (uint8_t)(p >> gs);
                    dst[c * x + 2] = (uint8_t)(p >> bs);
                    if (c == 4) dst[c * x + 3] = (uint8_t)(p >> as);
                    break;
                }
                }
            }
        }
    }
    return CLIPDEX_OK;
}
