/*
 * qgemm.c - scalar side of the integer GEMM (formats in qgemm.h): sizes and
 * packing of Q8P / Q4P panels from ggml Q8_0 / Q4_0 rows (values and scales
 * copied exactly, padding rows zero), per-row int8 quantization of
 * activations and the reference product. No intrinsics: this is the
 * definition the AVX2 kernels in qgemm_avx2.c must match bit for bit, so
 * every float operation here is spelled out (one multiply for da * dw, one
 * fmaf per block, then the epilogue of cdx_linear_ref).
 */
#include "tensor/qgemm.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NR CDX_QP_NR

static size_t packed_bytes(size_t n, size_t k, size_t block)
{
    size_t np = n / NR + (n % NR != 0), r;
    if (k % CDX_QK || cdx_mul(np, k / CDX_QK, &r) || cdx_mul(r, block, &r)) return 0;
    return r;
}

size_t cdx_q8p_bytes(size_t n, size_t k) { return packed_bytes(n, k, CDX_QP_Q8_BLOCK); }
size_t cdx_q4p_bytes(size_t n, size_t k) { return packed_bytes(n, k, CDX_QP_Q4_BLOCK); }

static inline float ld_half(const uint8_t *p) { return cdx_half_to_float((uint16_t)(p[0] | p[1] << 8)); }

static inline void st_f32(uint8_t *p, float f) { memcpy(p, &f, 4); } /* x86/arm64: little-endian */

/* Q8P: row j of panel q, block b -> d[r] and v[g][r][e]. */
void cdx_q8p_pack(const void *q8_0_rows, size_t n, size_t k, void *out)
{
    const uint8_t *src = q8_0_rows;
    uint8_t *dst = out;
    size_t nb = k / CDX_QK, np = (n + NR - 1) / NR, rb = nb * 34;
    memset(dst, 0, cdx_q8p_bytes(n, k));
    for (size_t q = 0; q < np; q++)
        for (size_t b = 0; b < nb; b++) {
            uint8_t *blk = dst + (q * nb + b) * CDX_QP_Q8_BLOCK;
            for (size_t r = 0; r < NR && q * NR + r < n; r++) {
                const uint8_t *s = src + (q * NR + r) * rb + b * 34;
                st_f32(blk + 4 * r, ld_half(s));
                for (size_t g = 0; g < 8; g++)
                    for (size_t e = 0; e < 4; e++) blk[64 + g * 64 + r * 4 + e] = s[2 + 4 * g + e];
            }
        }
}

/* Q4P: the nibble of row r at element 4g+e goes to byte g*32 + (r%8)*4 + e,
 * low half for r < 8, high half for r >= 8. */
void cdx_q4p_pack(const void *q4_0_rows, size_t n, size_t k, void *out)
{
    const uint8_t *src = q4_0_rows;
    uint8_t *dst = out;
    size_t nb = k / CDX_QK, np = (n + NR - 1) / NR, rb = nb * 18;
    memset(dst, 0, cdx_q4p_bytes(n, k));
    for (size_t q = 0; q < np; q++)
        for (size_t b = 0; b < nb; b++) {
            uint8_t *blk = dst + (q * nb + b) * CDX_QP_Q4_BLOCK;
            for (size_t r = 0; r < NR; r++) {
                const uint8_t *s = q * NR + r < n ? src + (q * NR + r) * rb + b * 18 : NULL;
                if (s) st_f32(blk + 4 * r, ld_half(s));
                for (size_t x = 0; x < 32; x++) {
                    unsigned nib = s ? (x < 16 ? s[2 + x] & 15u : s[2 + x - 16] >> 4) : 8u;
                    uint8_t *byte = blk + 64 + (x / 4) * 32 + (r % 8) * 4 + x % 4;
                    *byte = (uint8_t)(*byte | (r < 8 ? nib : nib << 4));
                }
            }
        }
}

void cdx_qp_unpack_block(int wtype, const void *Wp, size_t k, size_t j, size_t b, int8_t w[32], float *d)
{
    size_t nb = k / CDX_QK, q = j / NR, r = j % NR;
    size_t bs = wtype == CDX_QP_Q8 ? CDX_QP_Q8_BLOCK : CDX_QP_Q4_BLOCK;
    const uint8_t *blk = (const uint8_t *)Wp + (q * nb + b) * bs;
    memcpy(d, blk + 4 * r, 4);
    for (size_t x = 0; x < 32; x++) {
        if (wtype == CDX_QP_Q8) {
            w[x] = (int8_t)blk[64 + (x / 4) * 64 + r * 4 + x % 4];
        } else {
            unsigned byte = blk[64 + (x / 4) * 32 + (r % 8) * 4 + x % 4];
            w[x] = (int8_t)((int)(r < 8 ? byte & 15u : byte >> 4) - 8);
        }
    }
}

void cdx_act_q8_ref(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const float fmax_q = (float)qmax;
    for (size_t b = 0; b < k / CDX_QK; b++, x += CDX_QK, q += CDX_QK) {
        int finite = 1;
        for (int e = 0; e < CDX_QK; e++) finite &= isfinite(x[e]) != 0;
        if (!finite) { /* NaN or inf (broken weights): the block's products become NaN */
            memset(q, 0, CDX_QK);
            d[b] = NAN;
            s[b] = 0;
            continue;
        }
        float amax = 0.0f;
        for (int e = 0; e < CDX_QK; e++) amax = fmaxf(amax, fabsf(x[e]));
        float db = amax / fmax_q, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
        int32_t sum = 0;
        for (int e = 0; e < CDX_QK; e++) {
            int v = (int)nearbyintf(x[e] * id);
            q[e] = (int8_t)v;
            sum += v;
        }
        d[b] = id != 0.0f ? db : 0.0f;
        s[b] = sum;
    }
}

/* The definition in qgemm.h. Column by column, rows in chunks of 64 so a
 * weight block is unpacked once per chunk; each output is still its own
 * chain over b = 0 .. k/32-1. */
void cdx_qgemm_ref(int wtype, const int8_t *qa, const float *da, const int32_t *sa, size_t m,
                   const void *Wp, size_t n, size_t k, const float *bias, float *C, size_t ldc, int act,
                   unsigned flags)
{
    (void)sa; /* the reference sums (nibble - 8) * q directly */
    size_t nb = k / CDX_QK;
    for (size_t j = 0; j < n; j++)
        for (size_t i0 = 0; i0 < m; i0 += 64) {
            size_t mc = m - i0 < 64 ? m - i0 : 64;
            float acc[64] = {0};
            for (size_t b = 0; b < nb; b++) {
                int8_t w[32];
                float dw;
                cdx_qp_unpack_block(wtype, Wp, k, j, b, w, &dw);
                for (size_t i = 0; i < mc; i++) {
                    const int8_t *a = qa + (i0 + i) * k + 32 * b;
                    int32_t isum = 0;
                    for (int e = 0; e < 32; e++) isum += (int32_t)a[e] * w[e];
                    float scale = da[(i0 + i) * nb + b] * dw;
                    acc[i] = fmaf((float)isum, scale, acc[i]);
                }
            }
            for (size_t i = 0; i < mc; i++) {
                float s = acc[i];
                if (bias) s += bias[j];
                s = cdx_act_apply(act, s);
                float *c = C + (i0 + i) * ldc + j;
                *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
            }
        }
}

/* ---- I8P: per-row int8 weights, per-row int8 activations (qgemm.h) ---- */

size_t cdx_i8p_bytes(size_t n, size_t k)
{
    size_t np = n / NR + (n % NR != 0), pb, r;
    if (k % CDX_QK || k > CDX_I8_KMAX || cdx_mul(k, 16, &pb) || cdx_mul(np, pb + 64, &r)) return 0;
    return r;
}

int cdx_i8p_quant(const struct cdx_wmat *src, size_t n, size_t k, void *out)
{
    uint8_t *dst = out;
    size_t np = (n + NR - 1) / NR, pb = 64 + 16 * k;
    float *row = malloc((k ? k : 1) * sizeof *row);
    int8_t *q = malloc(k ? k : 1);
    if (!row || !q) {
        free(row);
        free(q);
        return -1;
    }
    for (size_t j = 0; j < np * NR; j++) { /* padding rows: d = 0, q = 0 (byte 128) */
        uint8_t *pan = dst + j / NR * pb;
        size_t r = j % NR;
        float d = 0.0f;
        if (j < n) {
            cdx_wmat_dequant(src, k, j, 0, k, row);
            int32_t sum;
            cdx_act_i8_ref(row, k, 127, q, &d, &sum); /* the same rule as the activations' */
        }
        st_f32(pan + 4 * r, d);
        for (size_t p = 0; p < k; p++)
            pan[64 + (p / 4) * 64 + r * 4 + p % 4] = (uint8_t)(128 + (j < n ? q[p] : 0));
    }
    free(row);
    free(q);
    return 0;
}

void cdx_i8p_unpack_row(const void *Wp, size_t k, size_t j, int8_t *w, float *d)
{
    const uint8_t *pan = (const uint8_t *)Wp + j / NR * (64 + 16 * k);
    size_t r = j % NR;
    memcpy(d, pan + 4 * r, 4);
    for (size_t p = 0; p < k; p++) w[p] = (int8_t)((int)pan[64 + (p / 4) * 64 + r * 4 + p % 4] - 128);
}

void cdx_act_i8_ref(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    int finite = 1;
    float amax = 0.0f;
    for (size_t p = 0; p < k; p++) {
        finite &= isfinite(x[p]) != 0;
        amax = fmaxf(amax, fabsf(x[p]));
    }
    if (!finite) {
        memset(q, 0, k);
        *d = NAN;
        *s = 0;
        return;
    }
    float db = amax / (float)qmax, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
    int32_t sum = 0;
    for (size_t p = 0; p < k; p++) {
        int v = (int)nearbyintf(x[p] * id);
        q[p] = (int8_t)v;
        sum += v;
    }
    *d = id != 0.0f ? db : 0.0f;
    *s = sum;
}

/* The definition in qgemm.h, one output at a time. */
void cdx_i8gemm_ref(const int8_t *qa, const float *da, const int32_t *sa, size_t m, const void *Wp, size_t n,
                    size_t k, const float *bias, float *C, size_t ldc, int act, unsigned flags)
{
    (void)sa;
    int8_t w[CDX_I8_KMAX];
    for (size_t j = 0; j < n; j++) {
        float dw;
        cdx_i8p_unpack_row(Wp, k, j, w, &dw);
        for (size_t i = 0; i < m; i++) {
            const int8_t *a = qa + i * k;
            int32_t isum = 0;
            for (size_t p = 0; p < k; p++) isum += (int32_t)a[p] * w[p];
            float s = (float)isum * (da[i] * dw);
            if (bias) s += bias[j];
            s = cdx_act_apply(act, s);
            float *c = C + i * ldc + j;
            *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
        }
    }
}
