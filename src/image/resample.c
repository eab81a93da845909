/*
 * resample.c - Pillow-exact resize + center crop + convert("RGB").
 *
 * Reproduces what OpenAI's preprocessing does through torchvision on Pillow
 * 9.4, bit for bit:
 *   - L, RGB, CMYK: Pillow's BICUBIC (a = -0.5), separable and antialiased:
 *     the support grows with the reduction factor; weights are computed in
 *     double, normalized to sum 1, then rounded to fixed point with
 *     PRECISION_BITS = 22 fractional bits; each pass adds 2^21, shifts and
 *     clips to uint8. Horizontal pass first; a pass whose size does not
 *     change is skipped (Pillow copies).
 *   - LA, RGBA: premultiplied first (Pillow's RGBA->RGBa: MULDIV255), resized
 *     as above, un-premultiplied after (RGBa->RGBA: 255*c/a, truncated) --
 *     unless the size does not change at all, when Pillow returns a copy.
 *   - P, 1: nearest neighbour through Pillow's affine scaler, whose source
 *     coordinates are accumulated in double (xo += scale) and truncated.
 * Invariant: only the pixels inside the crop are computed, but each one is
 * computed from exactly the inputs and coefficients Pillow uses, so results
 * equal Pillow's resize followed by the crop. All integer sums stay within
 * int32 (|sum of weights| < 1.3 in 2^22 units, times 255).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

/* Coefficients must be computed exactly like Pillow's (no fused multiply-add). */
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#define PRECISION_BITS (32 - 8 - 2)
#define MULDIV255(a, b) ((((a) * (b) + 128) + (((a) * (b) + 128) >> 8)) >> 8)

/* Keys' cubic with a = -0.5; support 2. */
static double bicubic(double x)
{
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* One pass's filter bank for the outputs first .. first+n-1 of a resize to
 * out_size: output first+i reads taps bounds[2i] .. bounds[2i]+bounds[2i+1]-1
 * with weights k[i*ksize ..] in 2^22 fixed point. Only the outputs inside
 * the crop are computed; each is independent of the others. */
struct bank {
    int ksize;
    uint32_t first;
    int *bounds;  /* (n, 2) */
    int32_t *k;   /* (n, ksize) */
};

static void bank_free(struct bank *b)
{
    free(b->bounds);
    free(b->k);
    b->bounds = NULL;
    b->k = NULL;
}

/* Pillow's precompute_coeffs() followed by normalize_coeffs_8bpc(). */
static int bank_init(struct bank *b, uint32_t in_size, uint32_t out_size, uint32_t first, uint32_t n)
{
    double scale = (double)in_size / (double)out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double ss = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    b->ksize = ksize;
    b->first = first;
    b->bounds = malloc((size_t)n * 2 * sizeof(int));
    b->k = calloc((size_t)n * (size_t)ksize, sizeof(int32_t));
    double *w = malloc((size_t)ksize * sizeof(double));
    if (!b->bounds || !b->k || !w) {
        free(w);
        bank_free(b);
        return CLIPDEX_E_NOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        uint32_t xx = first + i;
        double center = (xx + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > (int)in_size) xmax = (int)in_size;
        xmax -= xmin;
        if (xmax > ksize) xmax = ksize; /* cannot happen; keeps indexing safe */
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        int32_t *k = b->k + (size_t)i * ksize;
        for (int x = 0; x < xmax; x++) {
            double v = ww != 0.0 ? w[x] / ww : w[x];
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS))
                         : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        b->bounds[2 * i] = xmin;
        b->bounds[2 * i + 1] = xmax;
    }
    free(w);
    return CLIPDEX_OK;
}

static inline uint8_t clip8(int32_t s)
{
    if (s <= 0) return 0;
    s >>= PRECISION_BITS;
    return s > 255 ? 255 : (uint8_t)s;
}

/* Horizontal pass over one row: in (w, ch) -> out (n, ch) for the bank's
 * n outputs. Inlined per channel count so the tap loop is
 * unrolled over channels. */
static inline __attribute__((always_inline)) void hpass_row_ch(const uint8_t *in, uint8_t *out, const int ch,
                                                               const struct bank *b, uint32_t n)
{
    const int32_t half = 1 << (PRECISION_BITS - 1);
    for (uint32_t i = 0; i < n; i++) {
        int xmin = b->bounds[2 * i], cnt = b->bounds[2 * i + 1];
        const int32_t *k = b->k + (size_t)i * b->ksize;
        const uint8_t *p = in + (size_t)xmin * ch;
        int32_t s0 = half, s1 = half, s2 = half, s3 = half;
        for (int x = 0; x < cnt; x++) {
            int32_t kx = k[x];
            s0 += p[x * ch] * kx;
            if (ch > 1) s1 += p[x * ch + 1] * kx;
            if (ch > 2) s2 += p[x * ch + 2] * kx;
            if (ch > 3) s3 += p[x * ch + 3] * kx;
        }
        out[i * ch] = clip8(s0);
        if (ch > 1) out[i * ch + 1] = clip8(s1);
        if (ch > 2) out[i * ch + 2] = clip8(s2);
        if (ch > 3) out[i * ch + 3] = clip8(s3);
    }
}

static void hpass_row(const uint8_t *in, uint8_t *out, int ch, const struct bank *b, uint32_t n)
{
    switch (ch) {
    case 1: hpass_row_ch(in, out, 1, b, n); break;
    case 2: hpass_row_ch(in, out, 2, b, n); break;
    case 3: hpass_row_ch(in, out, 3, b, n); break;
    default: hpass_row_ch(in, out, 4, b, n); break;
    }
}

/* Pillow's RGBA->RGBa / LA->La on one row of n pixels (alpha is the last channel). */
static void premultiply_row(const uint8_t *in, uint8_t *out, int ch, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        unsigned a = in[i * ch + ch - 1];
        for (int c = 0; c < ch - 1; c++) out[i * ch + c] = (uint8_t)MULDIV255(in[i * ch + c], a);
        out[i * ch + ch - 1] = (uint8_t)a;
    }
}

/* Pillow's RGBa->RGBA / La->LA in place. */
static void unpremultiply(uint8_t *p, int ch, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned a = p[i * ch + ch - 1];
        if (a == 255 || a == 0) continue;
        for (int c = 0; c < ch - 1; c++) {
            unsigned v = 255u * p[i * ch + c] / a;
            p[i * ch + c] = (uint8_t)(v > 255 ? 255 : v);
        }
    }
}

/* Converts n pixels of the working mode to RGB (Pillow's convert("RGB"):
 * gray replicated, palette expanded, alpha dropped without compositing,
 * CMYK through cmyk2rgb). */
void cdx_image_to_rgb(const clipdex_image *img, const uint8_t *in, uint8_t *out, size_t n)
{
    switch (img->mode) {
    case CLIPDEX_MODE_1:
    case CLIPDEX_MODE_L:
        for (size_t i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[i];
        break;
    case CLIPDEX_MODE_LA:
        for (size_t i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = in[2 * i];
        break;
    case CLIPDEX_MODE_P:
        for (size_t i = 0; i < n; i++) memcpy(out + 3 * i, img->palette + 3 * in[i], 3);
        break;
    case CLIPDEX_MODE_RGB:
        memcpy(out, in, n * 3);
        break;
    case CLIPDEX_MODE_RGBA:
        for (size_t i = 0; i < n; i++) memcpy(out + 3 * i, in + 4 * i, 3);
        break;
    case CDX_MODE_CMYK:
        for (size_t i = 0; i < n; i++) {
            int nk = 255 - in[4 * i + 3];
            for (int c = 0; c < 3; c++) {
                int v = nk - (int)MULDIV255((unsigned)in[4 * i + c], (unsigned)nk);
                out[3 * i + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
        break;
    }
}

/* Nearest neighbour as Pillow's ImagingScaleAffine: source index of output
 * i is (int)(scale/2 + i*scale) accumulated in double; -1 when outside. */
static void nearest_table(uint32_t in_size, uint32_t out_size, uint32_t first, uint32_t n,
                          int32_t *tab)
{
    double a = (double)in_size / (double)out_size;
    double xo = a * 0.5;
    for (uint32_t x = 0; x < first + n; x++) {
        if (x >= first) {
            int xin = xo < 0.0 ? -1 : (int)xo;
            tab[x - first] = (xin >= 0 && (uint32_t)xin < in_size) ? xin : -1;
        }
        xo += a;
    }
}

static int resize_nearest(const clipdex_image *img, uint32_t out_w, uint32_t out_h, uint32_t left,
                          uint32_t top, uint32_t size, uint8_t *work)
{
    int32_t *xt = malloc((size_t)size * sizeof(int32_t));
    int32_t *yt = malloc((size_t)size * sizeof(int32_t));
    if (!xt || !yt) {
        free(xt);
        free(yt);
        return CLIPDEX_E_NOMEM;
    }
    int same = out_w == img->width && out_h == img->height;
    for (uint32_t i = 0; i < size; i++) {
        xt[i] = (int32_t)(left + i);
        yt[i] = (int32_t)(top + i);
    }
    if (!same) {
        nearest_table(img->width, out_w, left, size, xt);
        nearest_table(img->height, out_h, top, size, yt);
    }
    for (uint32_t y = 0; y < size; y++) {
        uint8_t *o = work + (size_t)y * size;
        if (yt[y] < 0) {
            memset(o, 0, size);
            continue;
        }
        const uint8_t *row = img->pixels + (size_t)yt[y] * img->width;
        for (uint32_t x = 0; x < size; x++) o[x] = xt[x] < 0 ? 0 : row[xt[x]];
    }
    free(xt);
    free(yt);
    return CLIPDEX_OK;
}

/* Bicubic resize of the crop window into work (size, size, ch). */
static int resize_bicubic(const clipdex_image *img, uint32_t out_w, uint32_t out_h, uint32_t left,
                          uint32_t top, uint32_t size, uint8_t *work)
{
    const int ch = img->channels;
    const int alpha = img->mode == CLIPDEX_MODE_LA || img->mode == CLIPDEX_MODE_RGBA;
    const int need_h = out_w != img->width, need_v = out_h != img->height;
    const size_t in_stride = (size_t)img->width * ch, row_n = (size_t)size * ch;
    int st = CLIPDEX_OK;
    struct bank bh = {0, 0, NULL, NULL}, bv = {0, 0, NULL, NULL};
    uint8_t *rowbuf = NULL, *tmp = NULL;
    int32_t *acc = NULL;

    if (!need_h && !need_v) { /* Pillow returns a copy: no premultiply round trip */
        for (uint32_t y = 0; y < size; y++)
            memcpy(work + y * row_n, img->pixels + (top + y) * in_stride + (size_t)left * ch, row_n);
        return CLIPDEX_OK;
    }
    if ((need_h && (st = bank_init(&bh, img->width, out_w, left, size))) ||
        (need_v && (st = bank_init(&bv, img->height, out_h, top, size))))
        goto done;

    /* Source rows the crop's output rows read: [y0, y1). */
    uint32_t y0 = top, y1 = top + size;
    if (need_v) {
        y0 = (uint32_t)bv.bounds[0];
        y1 = (uint32_t)(bv.bounds[2 * (size - 1)] + bv.bounds[2 * (size - 1) + 1]);
    }
    /* Stage 1: horizontal pass (or column selection) of rows y0..y1 into tmp
     * (y1-y0, size, ch), premultiplied for LA/RGBA. */
    tmp = malloc((size_t)(y1 - y0) * row_n);
    if (alpha) rowbuf = malloc(in_stride);
    if (!tmp || (alpha && !rowbuf)) {
        st = CLIPDEX_E_NOMEM;
        goto done;
    }
    for (uint32_t y = y0; y < y1; y++) {
        const uint8_t *src = img->pixels + (size_t)y * in_stride;
        uint8_t *dst = tmp + (size_t)(y - y0) * row_n;
        if (need_h) {
            if (alpha) {
                premultiply_row(src, rowbuf, ch, img->width);
                src = rowbuf;
            }
            hpass_row(src, dst, ch, &bh, size);
        } else if (alpha) {
            premultiply_row(src + (size_t)left * ch, dst, ch, size);
        } else {
            memcpy(dst, src + (size_t)left * ch, row_n);
        }
    }
    /* Stage 2: vertical pass tmp -> work (size, size, ch). */
    if (need_v) {
        acc = malloc(row_n * sizeof(int32_t));
        if (!acc) {
            st = CLIPDEX_E_NOMEM;
            goto done;
        }
        for (uint32_t i = 0; i < size; i++) {
            int ymin = bv.bounds[2 * i] - (int)y0, cnt = bv.bounds[2 * i + 1];
            const int32_t *k = bv.k + (size_t)i * bv.ksize;
            for (size_t j = 0; j < row_n; j++) acc[j] = 1 << (PRECISION_BITS - 1);
            for (int t = 0; t < cnt; t++) {
                const uint8_t *r = tmp + (size_t)(ymin + t) * row_n;
                int32_t kt = k[t];
                for (size_t j = 0; j < row_n; j++) acc[j] += r[j] * kt;
            }
            uint8_t *o = work + (size_t)i * row_n;
            for (size_t j = 0; j < row_n; j++) o[j] = clip8(acc[j]);
        }
    } else {
        memcpy(work, tmp, (size_t)size * row_n);
    }
    if (alpha) unpremultiply(work, ch, (size_t)size * size);
done:
    bank_free(&bh);
    bank_free(&bv);
    free(rowbuf);
    free(tmp);
    free(acc);
    return st;
}

int cdx_resize_crop_rgb(clipdex_ctx *ctx, const clipdex_image *img, uint32_t out_w,
                        uint32_t out_h, uint32_t left, uint32_t top, uint32_t size, uint8_t *out)
{
    if (left + size > out_w || top + size > out_h || size == 0)
        return cdx_error(ctx, CLIPDEX_E_INTERNAL, "crop %ux%u+%u+%u outside %ux%u", size, size,
                         left, top, out_w, out_h);
    size_t n = (size_t)size * size;
    uint8_t *work = malloc(n * (size_t)img->channels);
    if (!work) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory resizing the image");
    int st;
    if (img->mode == CLIPDEX_MODE_P || img->mode == CLIPDEX_MODE_1)
        st = resize_nearest(img, out_w, out_h, left, top, size, work);
    else
        st = resize_bicubic(img, out_w, out_h, left, top, size, work);
    if (st == CLIPDEX_OK) cdx_image_to_rgb(img, work, out, n);
    free(work);
    if (st) return cdx_error(ctx, st, "out of memory resizing the image");
    return CLIPDEX_OK;
}
