/*
 * decode_tiff.c - the first page of a TIFF through libtiff (reading from
 * memory, errors and warnings captured per handle, never printed).
 * Modes as Pillow opens the common layouts (8-bit samples, contiguous):
 *   gray 1-bit -> 1; gray 8-bit -> L (min-is-white inverted); gray+alpha ->
 *   LA; palette 1/2/4/8-bit -> P (16-bit colormap >> 8, as Pillow);
 *   RGB -> RGB; RGB + unassociated alpha -> RGBA; RGB + associated alpha ->
 *   RGBA un-premultiplied (Pillow's RGBa rawmode); RGB + unspecified extra
 *   sample -> RGB (Pillow's RGBX); CMYK -> CMYK (kept, like Pillow, so the
 *   resize runs in CMYK; reported as RGB).
 * Everything else (YCbCr/JPEG, CMYK, 16-bit, separate planes, ...) goes
 * through TIFFReadRGBAImageOriented and becomes RGB/RGBA (L for gray); such
 * files may differ from Pillow by rounding.
 * The Orientation tag is part of the TIFF's own structure and Pillow 9.4
 * applies it whenever it loads a TIFF (so OpenAI's reference sees TIFFs
 * upright); we apply it here too, whatever ignore_exif_orientation says.
 * Invariant: the size is checked before any pixel allocation; libtiff's own
 * allocations are capped by TIFFOpenOptionsSetMaxSingleMemAlloc.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tiffio.h>

#include "image/image.h"

struct tiff_src {
    const uint8_t *data;
    size_t len;
    toff_t pos;
    char msg[256];
};

static tsize_t t_read(thandle_t h, tdata_t buf, tsize_t n)
{
    struct tiff_src *s = (struct tiff_src *)h;
    if (n <= 0 || s->pos >= s->len) return 0;
    size_t k = (size_t)n;
    if (k > s->len - s->pos) k = s->len - (size_t)s->pos;
    memcpy(buf, s->data + s->pos, k);
    s->pos += k;
    return (tsize_t)k;
}
static tsize_t t_write(thandle_t h, tdata_t buf, tsize_t n) { (void)h; (void)buf; (void)n; return -1; }
static toff_t t_seek(thandle_t h, toff_t off, int whence)
{
    struct tiff_src *s = (struct tiff_src *)h;
    uint64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? s->pos : s->len;
    uint64_t np = base + off; /* off is unsigned; wraps like libtiff expects */
    if (np > ((uint64_t)1 << 62)) return (toff_t)-1;
    s->pos = np;
    return np;
}
static int t_close(thandle_t h) { (void)h; return 0; }
static toff_t t_size(thandle_t h) { return ((struct tiff_src *)h)->len; }
static int t_map(thandle_t h, tdata_t *p, toff_t *n) { (void)h; (void)p; (void)n; return 0; }
static void t_unmap(thandle_t h, tdata_t p, toff_t n) { (void)h; (void)p; (void)n; }

static int t_error(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif; (void)module;
    struct tiff_src *s = user;
    if (s && !s->msg[0]) vsnprintf(s->msg, sizeof s->msg, fmt, ap);
    return 1;
}
static int t_warning(TIFF *tif, void *user, const char *module, const char *fmt, va_list ap)
{
    (void)tif; (void)user; (void)module; (void)fmt; (void)ap;
    return 1;
}

static int fail(clipdex_ctx *ctx, TIFF *tif, clipdex_image *img, uint8_t *raw, struct tiff_src *s,
                const char *what)
{
    int st = cdx_error(ctx, CLIPDEX_E_IMAGE, "%s TIFF%s%s", what, s->msg[0] ? ": " : "", s->msg);
    free(raw);
    free(img->pixels);
    img->pixels = NULL;
    TIFFClose(tif);
    return st;
}

/* Reads the whole first directory as packed rows of `rowbytes`
 * (contiguous samples), from strips or tiles. */
static int read_packed(TIFF *tif, uint32_t w, uint32_t h, size_t rowbytes, size_t bpp, uint8_t *raw)
{
    if (!TIFFIsTiled(tif)) {
        for (uint32_t y = 0; y < h; y++)
            if (TIFFReadScanline(tif, raw + (size_t)y * rowbytes, y, 0) < 0) return -1;
        return 0;
    }
    uint32_t tw = 0, th = 0;
    TIFFGetField(tif, TIFFTAG_TILEWIDTH, &tw);
    TIFFGetField(tif, TIFFTAG_TILELENGTH, &th);
    tmsize_t ts = TIFFTileSize(tif);
    if (tw == 0 || th == 0 || ts <= 0 || bpp == 0 || (uint64_t)tw * th * bpp > (uint64_t)ts) return -1;
    uint8_t *tile = malloc((size_t)ts);
    if (!tile) return -1;
    for (uint32_t ty = 0; ty < h; ty += th) {
        for (uint32_t tx = 0; tx < w; tx += tw) {
            if (TIFFReadTile(tif, tile, tx, ty, 0, 0) < 0) {
                free(tile);
                return -1;
            }
            uint32_t cw = w - tx < tw ? w - tx : tw, chh = h - ty < th ? h - ty : th;
            for (uint32_t r = 0; r < chh; r++)
                memcpy(raw + (size_t)(ty + r) * rowbytes + (size_t)tx * bpp, tile + (size_t)r * tw * bpp,
                       (size_t)cw * bpp);
        }
    }
    free(tile);
    return 0;
}

int cdx_decode_tiff(clipdex_ctx *ctx, const uint8_t *data, size_t len,
                    const struct cdx_decode_opts *o, clipdex_image *img, struct cdx_decode_out *out)
{
    (void)out;
    struct tiff_src src;
    memset(&src, 0, sizeof src);
    src.data = data;
    src.len = len;
    TIFFOpenOptions *opts = TIFFOpenOptionsAlloc();
    if (!opts) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    TIFFOpenOptionsSetErrorHandlerExtR(opts, t_error, &src);
    TIFFOpenOptionsSetWarningHandlerExtR(opts, t_warning, &src);
    TIFFOpenOptionsSetMaxSingleMemAlloc(opts, (tmsize_t)(o->max_pixels * 8 + (1 << 20)));
    TIFF *tif = TIFFClientOpenExt("tiff", "rm", (thandle_t)&src, t_read, t_write, t_seek, t_close,
                                  t_size, t_map, t_unmap, opts);
    TIFFOpenOptionsFree(opts);
    if (!tif)
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated TIFF%s%s", src.msg[0] ? ": " : "", src.msg);
    uint32_t w = 0, h = 0;
    uint16_t spp = 1, bps = 1, photo = 0, planar = PLANARCONFIG_CONTIG, orient = 1;
    uint16_t nextra = 0, *extra = NULL;
    if (!TIFFGetField(tif, TIFFTAG_IMAGEWIDTH, &w) || !TIFFGetField(tif, TIFFTAG_IMAGELENGTH, &h)) {
        TIFFClose(tif);
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt TIFF: no image size");
    }
    int st = cdx_image_check_size(ctx, o, "TIFF", w, h);
    if (st) {
        TIFFClose(tif);
        return st;
    }
    TIFFGetFieldDefaulted(tif, TIFFTAG_SAMPLESPERPIXEL, &spp);
    TIFFGetFieldDefaulted(tif, TIFFTAG_BITSPERSAMPLE, &bps);
    TIFFGetFieldDefaulted(tif, TIFFTAG_PLANARCONFIG, &planar);
    TIFFGetFieldDefaulted(tif, TIFFTAG_EXTRASAMPLES, &nextra, &extra);
    if (!TIFFGetField(tif, TIFFTAG_PHOTOMETRIC, &photo)) photo = spp >= 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK;
    if (!TIFFGetField(tif, TIFFTAG_ORIENTATION, &orient) || orient < 1 || orient > 8) orient = 1;
    uint16_t ex0 = nextra > 0 && extra ? extra[0] : 0;

    int mode = 0, invert = 0, unassoc = 0;
    int gray = photo == PHOTOMETRIC_MINISBLACK || photo == PHOTOMETRIC_MINISWHITE;
    if (planar == PLANARCONFIG_CONTIG) {
        if (gray && spp == 1 && bps == 1) mode = CLIPDEX_MODE_1;
        else if (gray && spp == 1 && bps == 8) mode = CLIPDEX_MODE_L;
        else if (gray && spp == 2 && bps == 8) mode = CLIPDEX_MODE_LA;
        else if (photo == PHOTOMETRIC_PALETTE && spp == 1 && (bps == 1 || bps == 2 || bps == 4 || bps == 8)) mode = CLIPDEX_MODE_P;
        else if (photo == PHOTOMETRIC_RGB && spp == 3 && bps == 8) mode = CLIPDEX_MODE_RGB;
        else if (photo == PHOTOMETRIC_RGB && spp == 4 && bps == 8) mode = ex0 == EXTRASAMPLE_UNSPECIFIED ? CLIPDEX_MODE_RGB : CLIPDEX_MODE_RGBA;
        else if (photo == PHOTOMETRIC_SEPARATED && spp == 4 && bps == 8 && nextra == 0) mode = CDX_MODE_CMYK;
        invert = photo == PHOTOMETRIC_MINISWHITE;
        unassoc = mode == CLIPDEX_MODE_RGBA && ex0 == EXTRASAMPLE_ASSOCALPHA;
    }
    if (mode && TIFFIsTiled(tif) && bps != 8) mode = 0; /* sub-byte tiles: use the generic path */

    if (!mode) { /* generic path through libtiff's RGBA conversion */
        int has_alpha = nextra > 0 && (ex0 == EXTRASAMPLE_ASSOCALPHA || ex0 == EXTRASAMPLE_UNASSALPHA);
        mode = gray && !has_alpha ? CLIPDEX_MODE_L : has_alpha ? CLIPDEX_MODE_RGBA : CLIPDEX_MODE_RGB;
        char emsg[1024];
        if (!TIFFRGBAImageOK(tif, emsg)) {
            TIFFClose(tif);
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "unsupported TIFF: %s", emsg);
        }
        size_t n = (size_t)w * h;
        uint32_t *raster = malloc(n * sizeof(uint32_t));
        if (!raster) {
            TIFFClose(tif);
            return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for a %ux%u TIFF", w, h);
        }
        /* Ask for the stored row order (libtiff flips only orientations
         * 1..4, and 5..8 like their 1..4 counterparts); the orientation
         * step rotates afterwards. */
        int req = (orient - 1) % 4 + 1;
        if (!TIFFReadRGBAImageOriented(tif, w, h, raster, req, 0)) {
            free(raster);
            return fail(ctx, tif, img, NULL, &src, "corrupt or truncated");
        }
        if ((st = cdx_image_alloc(ctx, img, w, h, mode, "tiff"))) {
            free(raster);
            TIFFClose(tif);
            return st;
        }
        for (size_t i = 0; i < n; i++) {
            uint32_t p = raster[i];
            uint8_t r = (uint8_t)TIFFGetR(p), g = (uint8_t)TIFFGetG(p), b = (uint8_t)TIFFGetB(p), a = (uint8_t)TIFFGetA(p);
            if (mode == CLIPDEX_MODE_L) img->pixels[i] = r;
            else if (mode == CLIPDEX_MODE_RGB) { img->pixels[3 * i] = r; img->pixels[3 * i + 1] = g; img->pixels[3 * i + 2] = b; }
            else { img->pixels[4 * i] = r; img->pixels[4 * i + 1] = g; img->pixels[4 * i + 2] = b; img->pixels[4 * i + 3] = a; }
        }
        free(raster);
        TIFFClose(tif);
        return orient > 1 ? cdx_image_orient(ctx, img, orient) : CLIPDEX_OK;
    }

    tmsize_t sl = TIFFScanlineSize(tif);
    size_t rowbytes = ((size_t)w * spp * bps + 7) / 8;
    if (sl <= 0 || (size_t)sl < rowbytes) {
        TIFFClose(tif);
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt TIFF: bad scanline size");
    }
    rowbytes = (size_t)sl;
    size_t total;
    if (cdx_mul(rowbytes, h, &total)) {
        TIFFClose(tif);
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "TIFF image too large");
    }
    uint8_t *raw = malloc(total ? total : 1);
    if (!raw) {
        TIFFClose(tif);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for a %ux%u TIFF", w, h);
    }
    if ((st = cdx_image_alloc(ctx, img, w, h, mode, "tiff"))) {
        free(raw);
        TIFFClose(tif);
        return st;
    }
    if (read_packed(tif, w, h, rowbytes, bps == 8 ? spp : 0, raw))
        return fail(ctx, tif, img, raw, &src, "corrupt or truncated");
    if (mode == CLIPDEX_MODE_P) {
        uint16_t *r = NULL, *g = NULL, *b = NULL;
        if (TIFFGetField(tif, TIFFTAG_COLORMAP, &r, &g, &b) && r && g && b) {
            int nc = 1 << bps;
            for (int i = 0; i < nc && i < 256; i++) {
                img->palette[3 * i] = (uint8_t)(r[i] >> 8);
                img->palette[3 * i + 1] = (uint8_t)(g[i] >> 8);
                img->palette[3 * i + 2] = (uint8_t)(b[i] >> 8);
            }
        }
    }
    size_t ch = (size_t)img->channels;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *s = raw + (size_t)y * rowbytes;
        uint8_t *d = img->pixels + (size_t)y * w * ch;
        if (bps == 8) {
            if (mode == CLIPDEX_MODE_RGB && spp == 4) /* RGBX */
                for (uint32_t x = 0; x < w; x++) memcpy(d + 3 * x, s + 4 * x, 3);
            else
                memcpy(d, s, (size_t)w * ch);
        } else {
            for (uint32_t x = 0; x < w; x++) {
                size_t bit = (size_t)x * bps;
                uint32_t v = (s[bit / 8] >> (8 - bps - bit % 8)) & ((1u << bps) - 1);
                d[x] = mode == CLIPDEX_MODE_1 ? (v ? 255 : 0) : (uint8_t)v;
            }
        }
        if (invert) /* min-is-white: gray (and 1-bit) samples are inverted */
            for (uint32_t x = 0; x < w; x++) d[x * ch] = (uint8_t)(255 - d[x * ch]);
        if (unassoc) /* associated alpha -> Pillow's RGBa unpacker un-premultiplies */
            for (uint32_t x = 0; x < w; x++) {
                unsigned a = d[4 * x + 3];
                if (a == 255) continue;
                if (a == 0) { /* Pillow's RGBa unpacker: alpha 0 -> 0,0,0,0 */
                    memset(d + 4 * x, 0, 3);
                    continue;
                }
                for (int c = 0; c < 3; c++) {
                    unsigned v = 255u * d[4 * x + c] / a;
                    d[4 * x + c] = (uint8_t)(v > 255 ? 255 : v);
                }
            }
    }
    free(raw);
    TIFFClose(tif);
    return orient > 1 ? cdx_image_orient(ctx, img, orient) : CLIPDEX_OK;
}
