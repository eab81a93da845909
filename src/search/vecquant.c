/*
 * vecquant.c - the compact copies of stored embeddings that staged searches
 * scan first (clipdex.h, "Vector search"): int8 codes with one scale per
 * row, and 4-bit codes with a per-row scale, norm and residual that bound
 * the error. The 4-bit layout is fixed here and read by the 4-bit kernels
 * (tensor/vecdot.h): per 64 dimensions 32 bytes, dimension 64b + j in the
 * low nibble of byte 32b + j and 64b + 32 + j in its high nibble, code + 8;
 * padding dimensions hold code 0.
 */
#include <math.h>
#include <string.h>

#include "clipdex.h"
#include "search/vecquant.h"

void clipdex_vec_q8_row(const float *x, size_t dim, int8_t *c, float *scale)
{
    float mx = 0;
    for (size_t i = 0; i < dim; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > mx) mx = a;
    }
    *scale = mx / 127.0f;
    for (size_t i = 0; i < dim; i++) {
        float v = mx > 0 ? x[i] / *scale : 0;
        long r = lrintf(v);
        c[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
}

size_t clipdex_vec_q4_row_bytes(size_t dim) { return (dim + 63) / 64 * 32; }

size_t cdx_q4_byte(size_t i) { return i / 64 * 32 + i % 32; }
unsigned cdx_q4_shift(size_t i) { return i % 64 >= 32 ? 4u : 0u; }

static int q4_code(float x, float s)
{
    long r = lrintf(x / s);
    return (int)(r > 7 ? 7 : r < -8 ? -8 : r);
}

/* the scale among max|x| / 7 x {1, 0.85, 0.7, 0.6, 0.5} with the smallest
 * squared residual (clipping the largest coordinates when that pays) */
static float q4_best_scale(const float *x, size_t dim)
{
    static const float frac[] = {1.0f, 0.85f, 0.7f, 0.6f, 0.5f};
    float mx = 0, best_s = 0;
    for (size_t i = 0; i < dim; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > mx) mx = a;
    }
    if (!(mx > 0)) return 0;
    double best = INFINITY;
    for (size_t f = 0; f < sizeof frac / sizeof frac[0]; f++) {
        float s = mx * frac[f] / 7.0f;
        if (!(s > 0)) continue;
        double e2 = 0;
        for (size_t i = 0; i < dim; i++) {
            double e = (double)x[i] - (double)s * q4_code(x[i], s);
            e2 += e * e;
        }
        if (e2 < best) {
            best = e2;
            best_s = s;
        }
    }
    return best_s;
}

void clipdex_vec_q4_row(const float *x, size_t dim, uint8_t *c, clipdex_vec_q4_info *info)
{
    float s = q4_best_scale(x, dim);
    memset(c, 0x88, clipdex_vec_q4_row_bytes(dim));
    double n2 = 0, r2 = 0;
    for (size_t i = 0; i < dim; i++) {
        int code = s > 0 ? q4_code(x[i], s) : 0;
        size_t b = cdx_q4_byte(i);
        unsigned sh = cdx_q4_shift(i);
        c[b] = (uint8_t)((c[b] & ~(0xFu << sh)) | ((unsigned)(code + 8) << sh));
        double v = (double)s * code, e = (double)x[i] - v; /* both exact in double */
        n2 += v * v;
        r2 += e * e;
    }
    info->scale = s;
    /* rounded up: the sums carry relative errors far below 1e-6 */
    info->norm = (float)(sqrt(n2) * (1 + 1e-6));
    info->resid = (float)(sqrt(r2) * (1 + 1e-6));
}
