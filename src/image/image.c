/*
 * image.c - the public image API: format sniffing, decode limits, EXIF
 * orientation, accessors, and the reference preprocessing
 * (resize shorter side -> center crop -> RGB -> /255 -> normalize).
 *
 * Invariants: a returned clipdex_image is immutable and fully initialised
 * (width, height >= 1, pixels of width*height*channels bytes); every size
 * read from a file is checked against the limits before any pixel buffer is
 * allocated; decoders never see a NULL or empty buffer.
 */
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

#define CDX_MAX_IMAGE_FILE ((size_t)1 << 30) /* 1 GiB: refuse larger files in clipdex_image_load */

clipdex_image_params clipdex_image_params_default(void)
{
    clipdex_image_params p;
    memset(&p, 0, sizeof p);
    p.max_width = CLIPDEX_MAX_IMAGE_SIDE;
    p.max_height = CLIPDEX_MAX_IMAGE_SIDE;
    p.max_pixels = CLIPDEX_MAX_IMAGE_PIXELS;
    return p;
}

int cdx_image_check_size(clipdex_ctx *ctx, const struct cdx_decode_opts *o, const char *fmt,
                         uint64_t w, uint64_t h)
{
    if (w == 0 || h == 0)
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "%s image has an empty size %llux%llu", fmt,
                         (unsigned long long)w, (unsigned long long)h);
    if (w > o->max_width || h > o->max_height)
        return cdx_error(ctx, CLIPDEX_E_LIMIT,
                         "%s image %llux%llu exceeds the limit of %ux%u pixels per side", fmt,
                         (unsigned long long)w, (unsigned long long)h, o->max_width, o->max_height);
    /* w, h <= UINT32_MAX here, so the product cannot overflow 64 bits */
    if (w * h > o->max_pixels)
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "%s image %llux%llu exceeds the limit of %llu pixels",
                         fmt, (unsigned long long)w, (unsigned long long)h,
                         (unsigned long long)o->max_pixels);
    return CLIPDEX_OK;
}

static int mode_channels(int mode)
{
    switch (mode) {
    case CLIPDEX_MODE_1:
    case CLIPDEX_MODE_L:
    case CLIPDEX_MODE_P: return 1;
    case CLIPDEX_MODE_LA: return 2;
    case CLIPDEX_MODE_RGB: return 3;
    case CLIPDEX_MODE_RGBA:
    case CDX_MODE_CMYK: return 4;
    default: return 0;
    }
}

int cdx_image_alloc(clipdex_ctx *ctx, clipdex_image *img, uint32_t w, uint32_t h, int mode,
                    const char *fmt)
{
    size_t n;
    int ch = mode_channels(mode);
    if (ch == 0) return cdx_error(ctx, CLIPDEX_E_INTERNAL, "bad image mode %d", mode);
    if (cdx_mul(w, h, &n) || cdx_mul(n, (size_t)ch, &n))
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "%s image %ux%u is too large", fmt, w, h);
    img->pixels = malloc(n ? n : 1);
    if (!img->pixels)
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for a %ux%u %s image", w, h, fmt);
    img->width = w;
    img->height = h;
    img->mode = mode;
    img->channels = ch;
    img->format = fmt;
    for (int i = 0; i < 256; i++) img->palette[3 * i] = img->palette[3 * i + 1] = img->palette[3 * i + 2] = (uint8_t)i;
    return CLIPDEX_OK;
}

typedef int (*decode_fn)(clipdex_ctx *, const uint8_t *, size_t, const struct cdx_decode_opts *,
                         clipdex_image *, struct cdx_decode_out *);

static int is_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

static decode_fn sniff(const uint8_t *d, size_t n)
{
    if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return cdx_decode_jpeg;
    if (n >= 8 && memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return cdx_decode_png;
    if (n >= 12 && memcmp(d, "RIFF", 4) == 0 && memcmp(d + 8, "WEBP", 4) == 0) return cdx_decode_webp;
    if (n >= 6 && (memcmp(d, "GIF87a", 6) == 0 || memcmp(d, "GIF89a", 6) == 0)) return cdx_decode_gif;
    if (n >= 2 && d[0] == 'B' && d[1] == 'M') return cdx_decode_bmp;
    if (n >= 4 && (memcmp(d, "II*\0", 4) == 0 || memcmp(d, "MM\0*", 4) == 0)) return cdx_decode_tiff;
    if (n >= 3 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6' && is_space(d[2])) return cdx_decode_pnm;
    return NULL;
}

int clipdex_image_decode(clipdex_ctx *ctx, const void *data, size_t len,
                         const clipdex_image_params *params, clipdex_image **out)
{
    cdx_clear_error(ctx);
    if (!out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_decode: out is NULL");
    *out = NULL;
    if (!data && len) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_decode: data is NULL");
    if (len == 0) return cdx_error(ctx, CLIPDEX_E_IMAGE, "empty image data (0 bytes)");
    clipdex_image_params p = params ? *params : clipdex_image_params_default();
    struct cdx_decode_opts o;
    o.max_width = p.max_width ? p.max_width : CLIPDEX_MAX_IMAGE_SIDE;
    o.max_height = p.max_height ? p.max_height : CLIPDEX_MAX_IMAGE_SIDE;
    o.max_pixels = p.max_pixels ? p.max_pixels : CLIPDEX_MAX_IMAGE_PIXELS;
    o.jpeg_scale_target = p.jpeg_scale_target;

    const uint8_t *d = data;
    decode_fn fn = sniff(d, len);
    if (!fn)
        return cdx_error(ctx, CLIPDEX_E_IMAGE,
                         "unrecognized image format (not JPEG, PNG, WebP, GIF, BMP, TIFF or PNM)");
    clipdex_image *img = calloc(1, sizeof *img);
    if (!img) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    struct cdx_decode_out dout;
    memset(&dout, 0, sizeof dout);
    int st = fn(ctx, d, len, &o, img, &dout);
    if (st == CLIPDEX_OK && !p.ignore_exif_orientation) {
        int orient = dout.exif ? cdx_exif_orientation(dout.exif, dout.exif_len) : 0;
        if (orient >= 2 && orient <= 8) st = cdx_image_orient(ctx, img, orient);
    }
    free(dout.exif_own);
    if (st != CLIPDEX_OK) {
        clipdex_image_free(img);
        return st;
    }
    *out = img;
    return CLIPDEX_OK;
}

int clipdex_image_load(clipdex_ctx *ctx, const char *path, const clipdex_image_params *params,
                       clipdex_image **out)
{
    cdx_clear_error(ctx);
    if (!out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_load: out is NULL");
    *out = NULL;
    if (!path) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_load: path is NULL");
    char *buf;
    size_t len;
    int st = cdx_read_file(ctx, path, CDX_MAX_IMAGE_FILE, &buf, &len);
    if (st) return st;
    st = clipdex_image_decode(ctx, buf, len, params, out);
    free(buf);
    if (st && ctx) {
        char msg[CDX_ERRMSG_MAX];
        snprintf(msg, sizeof msg, "%s", ctx->errmsg);
        cdx_error(ctx, st, "cannot decode '%s': %s", path, msg);
    }
    return st;
}

int clipdex_image_from_pixels(clipdex_ctx *ctx, const uint8_t *pixels, uint32_t width,
                              uint32_t height, size_t stride, int mode,
                              const clipdex_image_params *params, clipdex_image **out)
{
    cdx_clear_error(ctx);
    if (!out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_from_pixels: out is NULL");
    *out = NULL;
    if (mode != CLIPDEX_MODE_L && mode != CLIPDEX_MODE_RGB && mode != CLIPDEX_MODE_RGBA)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_from_pixels: mode %d is not L, RGB or RGBA", mode);
    if (!pixels || width == 0 || height == 0)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_from_pixels: no pixels (%ux%u)", width, height);
    size_t row = (size_t)width * (size_t)mode_channels(mode);
    if (stride < row)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_from_pixels: stride %zu < row of %zu bytes", stride, row);
    clipdex_image_params p = params ? *params : clipdex_image_params_default();
    struct cdx_decode_opts o;
    memset(&o, 0, sizeof o);
    o.max_width = p.max_width ? p.max_width : CLIPDEX_MAX_IMAGE_SIDE;
    o.max_height = p.max_height ? p.max_height : CLIPDEX_MAX_IMAGE_SIDE;
    o.max_pixels = p.max_pixels ? p.max_pixels : CLIPDEX_MAX_IMAGE_PIXELS;
    int st = cdx_image_check_size(ctx, &o, "raw", width, height);
    if (st) return st;
    clipdex_image *img = calloc(1, sizeof *img);
    if (!img) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    st = cdx_image_alloc(ctx, img, width, height, mode, "raw");
    if (st) {
        free(img);
        return st;
    }
    for (uint32_t y = 0; y < height; y++) memcpy(img->pixels + y * row, pixels + y * stride, row);
    *out = img;
    return CLIPDEX_OK;
}

int clipdex_image_rgb(clipdex_ctx *ctx, const clipdex_image *img, uint8_t *out, size_t out_len)
{
    cdx_clear_error(ctx);
    if (!img || !out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_rgb: NULL argument");
    size_t n = (size_t)img->width * img->height;
    if (out_len < n * 3)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_rgb: %zu bytes for a %ux%u image (needs %zu)", out_len,
                         img->width, img->height, n * 3);
    cdx_image_to_rgb(img, img->pixels, out, n);
    return CLIPDEX_OK;
}

int clipdex_image_crop_box(clipdex_ctx *ctx, const clipdex_image *img, float x0, float y0, float x1, float y1,
                           int square, clipdex_image **out)
{
    cdx_clear_error(ctx);
    if (!img || !out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_box: NULL argument");
    *out = NULL;
    if (!(x1 > x0) || !(y1 > y0) || !isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_box: empty box");
    /* whole pixels covering the box, inside the image */
    double l = fmax(floor(x0), 0), t = fmax(floor(y0), 0);
    double r = fmin(ceil(x1), img->width), b = fmin(ceil(y1), img->height);
    if (!(r > l) || !(b > t)) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_box: box outside the image");
    int64_t w = (int64_t)(r - l), h = (int64_t)(b - t), side_w = w, side_h = h, ox = 0, oy = 0;
    if (square) { /* centred on black */
        side_w = side_h = w > h ? w : h;
        ox = (side_w - w) / 2;
        oy = (side_h - h) / 2;
    }
    clipdex_image *c = calloc(1, sizeof *c);
    if (!c) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    int st = cdx_image_alloc(ctx, c, (uint32_t)side_w, (uint32_t)side_h, CLIPDEX_MODE_RGB, "raw");
    if (st) {
        free(c);
        return st;
    }
    memset(c->pixels, 0, (size_t)side_w * (size_t)side_h * 3);
    size_t ch = (size_t)img->channels;
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *src = img->pixels + (((size_t)t + (size_t)y) * img->width + (size_t)l) * ch;
        cdx_image_to_rgb(img, src, c->pixels + ((size_t)(y + oy) * (size_t)side_w + (size_t)ox) * 3, (size_t)w);
    }
    *out = c;
    return CLIPDEX_OK;
}

void clipdex_image_free(clipdex_image *img)
{
    if (!img) return;
    free(img->pixels);
    free(img);
}

uint32_t clipdex_image_width(const clipdex_image *img) { return img ? img->width : 0; }
uint32_t clipdex_image_height(const clipdex_image *img) { return img ? img->height : 0; }

int clipdex_image_mode(const clipdex_image *img)
{
    if (!img) return 0;
    return img->mode == CDX_MODE_CMYK ? CLIPDEX_MODE_RGB : img->mode;
}

const char *clipdex_image_format(const clipdex_image *img) { return img ? img->format : ""; }

/* ------------------------------------------------------------------------ */
/* EXIF orientation                                                          */
/* ------------------------------------------------------------------------ */

static uint32_t rd16(const uint8_t *p, int be) { return be ? (uint32_t)p[0] << 8 | p[1] : (uint32_t)p[1] << 8 | p[0]; }
static uint32_t rd32(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

int cdx_exif_orientation(const uint8_t *e, size_t len)
{
    if (!e || len < 8) return 0;
    if (len >= 6 && memcmp(e, "Exif\0\0", 6) == 0) {
        e += 6;
        len -= 6;
        if (len < 8) return 0;
    }
    int be;
    if (e[0] == 'I' && e[1] == 'I') be = 0;
    else if (e[0] == 'M' && e[1] == 'M') be = 1;
    else return 0;
    if (rd16(e + 2, be) != 42) return 0;
    uint32_t ifd = rd32(e + 4, be);
    if (ifd > len || len - ifd < 2) return 0;
    uint32_t n = rd16(e + ifd, be);
    if ((size_t)n * 12 > len - ifd - 2) return 0;
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *t = e + ifd + 2 + 12 * (size_t)i;
        if (rd16(t, be) != 274) continue;
        uint32_t type = rd16(t + 2, be), count = rd32(t + 4, be);
        if (count < 1) return 0;
        uint32_t v;
        if (type == 3) v = rd16(t + 8, be);      /* SHORT */
        else if (type == 4) v = rd32(t + 8, be); /* LONG */
        else if (type == 1 || type == 7) v = t[8];
        else return 0;
        return v >= 1 && v <= 8 ? (int)v : 0;
    }
    return 0;
}

int cdx_image_orient(clipdex_ctx *ctx, clipdex_image *img, int orientation)
{
    const uint32_t w = img->width, h = img->height;
    const int ch = img->channels;
    const int swap = orientation >= 5;
    const uint32_t ow = swap ? h : w, oh = swap ? w : h;
    size_t n = (size_t)w * h * ch;
    uint8_t *dst = malloc(n ? n : 1);
    if (!dst) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory applying EXIF orientation");
    /* dst (ow, oh) pixel (x, y) <- src (w, h) pixel (sx, sy), as Pillow's
     * exif_transpose: 2 mirror, 3 rotate 180, 4 flip, 5 transpose,
     * 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise. */
    for (uint32_t y = 0; y < oh; y++) {
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t sx, sy;
            switch (orientation) {
            case 2: sx = w - 1 - x; sy = y; break;
            case 3: sx = w - 1 - x; sy = h - 1 - y; break;
            case 4: sx = x; sy = h - 1 - y; break;
            case 5: sx = y; sy = x; break;
            case 6: sx = y; sy = h - 1 - x; break;
            case 7: sx = w - 1 - y; sy = h - 1 - x; break;
            default: sx = w - 1 - y; sy = x; break; /* 8 */
            }
            memcpy(dst + ((size_t)y * ow + x) * ch, img->pixels + ((size_t)sy * w + sx) * ch, (size_t)ch);
        }
    }
    free(img->pixels);
    img->pixels = dst;
    img->width = ow;
    img->height = oh;
    return CLIPDEX_OK;
}

/* ------------------------------------------------------------------------ */
/* Preprocessing                                                             */
/* ------------------------------------------------------------------------ */

/* torchvision's Resize(size) for an int: shorter side -> size, longer side
 * int(size * long / short); CenterCrop: int(round((L - size) / 2)) with
 * round-half-to-even. */
static void plan(const clipdex_image *img, uint32_t size, uint32_t *ow, uint32_t *oh,
                 uint32_t *left, uint32_t *top)
{
    uint32_t w = img->width, h = img->height;
    uint32_t s = w <= h ? w : h, l = w <= h ? h : w;
    uint32_t nl = (uint32_t)((double)((uint64_t)size * l) / (double)s);
    if (nl < size) nl = size; /* cannot happen (l >= s); keeps the crop inside */
    *ow = w <= h ? size : nl;
    *oh = w <= h ? nl : size;
    uint32_t dx = *ow - size, dy = *oh - size;
    uint32_t qx = dx / 2, qy = dy / 2;
    if ((dx & 1) && (qx & 1)) qx++;
    if ((dy & 1) && (qy & 1)) qy++;
    *left = qx;
    *top = qy;
}

int clipdex_image_crop_rgb(clipdex_ctx *ctx, const clipdex_image *img, int size, uint8_t *out,
                           size_t out_len)
{
    cdx_clear_error(ctx);
    if (!img || !out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_rgb: NULL argument");
    if (size <= 0 || size > 65536)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_rgb: bad size %d", size);
    size_t need = (size_t)size * (size_t)size * 3;
    if (out_len < need)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_crop_rgb: output holds %zu bytes, need %zu",
                         out_len, need);
    /* The resized longer side must stay a sane size (a 1 x 30000 image at
     * size 224 would be 6.7M pixels wide). */
    uint32_t s = img->width < img->height ? img->width : img->height;
    uint32_t l = img->width < img->height ? img->height : img->width;
    if ((double)size * l / s > 1e7)
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "image %ux%u is too elongated to resize to %d",
                         img->width, img->height, size);
    uint32_t ow, oh, left, top;
    plan(img, (uint32_t)size, &ow, &oh, &left, &top);
    return cdx_resize_crop_rgb(ctx, img, ow, oh, left, top, (uint32_t)size, out);
}

int clipdex_image_preprocess(clipdex_ctx *ctx, const clipdex_image *img, int size,
                             const float mean[3], const float std[3], float *out, size_t out_len)
{
    cdx_clear_error(ctx);
    if (!img || !out || !mean || !std)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_preprocess: NULL argument");
    if (size <= 0 || size > 65536)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_preprocess: bad size %d", size);
    for (int c = 0; c < 3; c++)
        if (!(std[c] != 0.0f) || std[c] != std[c] || mean[c] != mean[c])
            return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_preprocess: bad mean/std");
    size_t plane = (size_t)size * (size_t)size;
    if (out_len < 3 * plane)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_preprocess: output holds %zu floats, need %zu",
                         out_len, 3 * plane);
    uint8_t *rgb = malloc(3 * plane);
    if (!rgb) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory preprocessing the image");
    int st = clipdex_image_crop_rgb(ctx, img, size, rgb, 3 * plane);
    if (st == CLIPDEX_OK) {
        /* ToTensor: float32(x) / 255 (HWC -> CHW); Normalize: (x - mean) / std,
         * each step rounded to float32 like torch's. */
        for (int c = 0; c < 3; c++) {
            float *o = out + (size_t)c * plane;
            const float m = mean[c], sd = std[c];
            for (size_t i = 0; i < plane; i++) {
                float x = (float)rgb[3 * i + c] / 255.0f;
                o[i] = (x - m) / sd;
            }
        }
    }
    free(rgb);
    return st;
}
