/*
 * rows_avx512.c - the AVX-512 row kernels: one LayerNorm row, one
 * attention query row and up to six query rows at once (dispatch.h's
 * layernorm_row, attn_row and attn_rows for the avx512 path). Each row's arithmetic depends only on that row's inputs, in a
 * fixed order, so results are bitwise the same whatever the batch or thread
 * count; they differ from the AVX2 path in the last bits (16-lane sums, and
 * the softmax's e^x is avx512.h's vector exp, about 1 ulp, instead of libm's).
 * Widths that are not multiples of 16 use masked loads (zero lanes add
 * nothing). Compiled only on x86.
 */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include "tensor/avx512.h"

/* The sum of 8 double lanes in a fixed order. */
TGT512 static inline double hsum8d(__m512d v)
{
    __m256d h = _mm256_add_pd(_mm512_castpd512_pd256(v), _mm512_extractf64x4_pd(v, 1));
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(h), _mm256_extractf128_pd(h, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

/* y (n) = LayerNorm(x (n)) * w + b: mean and variance summed in double,
 * eight lanes (masked tail), the normalization in float, 16 lanes. x and y
 * may alias. */
TGT512 void cdx_layernorm_row_avx512(const float *x, float *y, size_t n, const float *w, const float *b, float eps)
{
    __m512d s = _mm512_setzero_pd();
    for (size_t i = 0; i < n; i += 8)
        s = _mm512_add_pd(s, _mm512_cvtps_pd(_mm256_maskz_loadu_ps((__mmask8)cdx_mask16(n - i), x + i)));
    double mean = hsum8d(s) / (double)n;
    __m512d mv = _mm512_set1_pd(mean), v = _mm512_setzero_pd();
    for (size_t i = 0; i < n; i += 8) {
        __mmask8 mk = (__mmask8)cdx_mask16(n - i);
        __m512d dlt = _mm512_maskz_sub_pd(mk, _mm512_cvtps_pd(_mm256_maskz_loadu_ps(mk, x + i)), mv);
        v = _mm512_fmadd_pd(dlt, dlt, v);
    }
    float inv = (float)(1.0 / sqrt(hsum8d(v) / (double)n + (double)eps));
    __m512 vm = _mm512_set1_ps((float)mean), vi = _mm512_set1_ps(inv);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 mk = cdx_mask16(n - i);
        __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, x + i), vm), vi);
        t = _mm512_add_ps(_mm512_mul_ps(t, _mm512_maskz_loadu_ps(mk, w + i)), _mm512_maskz_loadu_ps(mk, b + i));
        _mm512_mask_storeu_ps(y + i, mk, t);
    }
}

/* Lane j of the result = the sum of s[j]'s 16 lanes, for j < 16, in one
 * fixed tree order (halves of pairs, then quarters, pairs of lanes, lanes;
 * the last permute puts key j in lane j). Each sum depends only on s[j]. */
TGT512 static inline __attribute__((always_inline)) __m512 sum16x16(const __m512 *s)
{
    __m512 t[8], u[4], v[2];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++)
        t[j] = _mm512_add_ps(_mm512_shuffle_f32x4(s[j], s[j + 8], 0x44), _mm512_shuffle_f32x4(s[j], s[j + 8], 0xEE));
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)
        u[j] = _mm512_add_ps(_mm512_shuffle_f32x4(t[j], t[j + 4], 0x88), _mm512_shuffle_f32x4(t[j], t[j + 4], 0xDD));
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++)
        v[j] = _mm512_add_ps(_mm512_unpacklo_ps(u[j], u[j + 2]), _mm512_unpackhi_ps(u[j], u[j + 2]));
    __m512d v0 = _mm512_castps_pd(v[0]), v1 = _mm512_castps_pd(v[1]);
    __m512 w = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(v0, v1)), _mm512_castpd_ps(_mm512_unpackhi_pd(v0, v1)));
    /* w's lane 4q + i holds key base(q) + {0, 2, 1, 3}[i], base = 0, 8, 4, 12 */
    return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15), w);
}

/* p[c..c+nk) = (q . K_c') * scale for nk <= 16 keys K_c' = K + c' ld (d
 * each): one 16-lane FMA chain per key over d, the 16 chains summed across
 * their lanes together (sum16x16) rather than one horizontal sum per key,
 * which was a long dependent chain per score. Keys nk..15 are read (the
 * caller pads K to 16 rows, dispatch.h) but not stored. Instantiated with
 * d = ld = 64 as constants (every CLIP head; the loads then take constant
 * offsets from one pointer) and for any d and ld. */
TGT512 static inline __attribute__((always_inline)) void scores16_t(const float *q, const float *K, size_t ld,
                                                                   size_t c, size_t nk, size_t d, float scale,
                                                                   float *p)
{
    const float *k0 = K + c * ld;
    __m512 s[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) s[j] = _mm512_setzero_ps();
    for (size_t i = 0; i < d; i += 16) {
        __mmask16 mk = cdx_mask16(d - i);
        __m512 qv = _mm512_maskz_loadu_ps(mk, q + i);
#pragma GCC unroll 16
        for (int j = 0; j < 16; j++)
            s[j] = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k0 + (size_t)j * ld + i), s[j]);
    }
    _mm512_mask_storeu_ps(p + c, cdx_mask16(nk), _mm512_mul_ps(sum16x16(s), _mm512_set1_ps(scale)));
}

TGT512 static void scores16_64(const float *q, const float *K, size_t c, size_t nk, float scale, float *p)
{
    scores16_t(q, K, 64, c, nk, 64, scale, p);
}

TGT512 static void scores16(const float *q, const float *K, size_t ld, size_t c, size_t nk, size_t d, float scale,
                            float *p)
{
    scores16_t(q, K, ld, c, nk, d, scale, p);
}

/* p[0..lim) = e^(p - max) / sum, the sum over 16 lanes then across them. */
TGT512 static void softmax(float *p, size_t lim)
{
    __m512 mx = _mm512_set1_ps(-INFINITY);
    for (size_t c = 0; c < lim; c += 16)
        mx = _mm512_mask_max_ps(mx, cdx_mask16(lim - c), mx, _mm512_maskz_loadu_ps(cdx_mask16(lim - c), p + c));
    __m512 vm = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
    for (size_t c = 0; c < lim; c += 16) {
        __mmask16 mk = cdx_mask16(lim - c);
        __m512 e = _mm512_maskz_mov_ps(mk, cdx_exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mk, p + c), vm)));
        sum = _mm512_add_ps(sum, e);
        _mm512_mask_storeu_ps(p + c, mk, e);
    }
    __m512 inv = _mm512_set1_ps(1.0f / cdx_hsum16(sum));
    for (size_t c = 0; c < lim; c += 16) {
        __mmask16 mk = cdx_mask16(lim - c);
        _mm512_mask_storeu_ps(p + c, mk, _mm512_mul_ps(_mm512_maskz_loadu_ps(mk, p + c), inv));
    }
}

/* One attention row: p[c] = (q . K_c) * scale for c < lim, softmax, o (d) =
 * sum_c p_c V_c (K_c = K + c ld, V_c = V + c ld); o is built 64 columns at a
 * time in two sets of four registers, even keys in one and odd keys in the
 * other (two independent FMA chains, keys in order within each), added at
 * the end. */
TGT512 void cdx_attn_row_avx512(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d,
                                float scale, float *p, float *o)
{
    for (size_t c = 0; c < lim; c += 16) {
        size_t nk = lim - c < 16 ? lim - c : 16;
        if (d == 64 && ld == 64) scores16_64(q, K, c, nk, scale, p);
        else scores16(q, K, ld, c, nk, d, scale, p);
    }
    softmax(p, lim);
    for (size_t e0 = 0; e0 < d; e0 += 64) {
        __mmask16 mk[4];
        for (int u = 0; u < 4; u++) mk[u] = cdx_mask16(d - e0 > 16 * (size_t)u ? d - e0 - 16 * (size_t)u : 0);
        __m512 a[4], b[4]; /* even keys, odd keys */
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) a[u] = b[u] = _mm512_setzero_ps();
        size_t c = 0;
        for (; c + 1 < lim; c += 2) {
            const float *v = V + c * ld + e0;
            __m512 wa = _mm512_set1_ps(p[c]), wb = _mm512_set1_ps(p[c + 1]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) {
                a[u] = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(mk[u], v + 16 * u), a[u]);
                b[u] = _mm512_fmadd_ps(wb, _mm512_maskz_loadu_ps(mk[u], v + ld + 16 * u), b[u]);
            }
        }
        if (c < lim) {
            const float *v = V + c * ld + e0;
            __m512 wa = _mm512_set1_ps(p[c]);
#pragma GCC unroll 4
            for (int u = 0; u < 4; u++) a[u] = _mm512_fmadd_ps(wa, _mm512_maskz_loadu_ps(mk[u], v + 16 * u), a[u]);
        }
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(o + e0 + 16 * u, mk[u], _mm512_add_ps(a[u], b[u]));
    }
}

/* Scores of R <= 6 query rows against 64 keys: p[r][c0 + j] = (q_r . K_j)
 * * scale for j < 64, with Kt the keys transposed (d rows of ldk floats,
 * key c at column c): one 16-key vector of Kt per e serves every row, R x 4
 * accumulators, each score one FMA chain over e in order. */
TGT512 static inline __attribute__((always_inline)) void rows_scores64(const int R, const float *q, size_t ldq,
                                                                      const float *Kt, size_t ldk, size_t c0,
                                                                      size_t d, float scale, float *p, size_t ldp)
{
    __m512 s[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) s[r][u] = _mm512_setzero_ps();
    for (size_t e = 0; e < d; e++) {
        const float *kt = Kt + e * ldk + c0;
        __m512 k0 = _mm512_loadu_ps(kt), k1 = _mm512_loadu_ps(kt + 16), k2 = _mm512_loadu_ps(kt + 32),
               k3 = _mm512_loadu_ps(kt + 48);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m512 x = _mm512_set1_ps(q[r * ldq + e]);
            s[r][0] = _mm512_fmadd_ps(x, k0, s[r][0]);
            s[r][1] = _mm512_fmadd_ps(x, k1, s[r][1]);
            s[r][2] = _mm512_fmadd_ps(x, k2, s[r][2]);
            s[r][3] = _mm512_fmadd_ps(x, k3, s[r][3]);
        }
    }
    __m512 sc = _mm512_set1_ps(scale);
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) _mm512_storeu_ps(p + r * ldp + c0 + 16 * u, _mm512_mul_ps(s[r][u], sc));
}

/* o_r (64 columns from e0) = sum_c p[r][c] V_c for R <= 6 rows: one load of
 * V_c's 64 columns serves every row; each output one FMA chain over the
 * keys in order. */
TGT512 static inline __attribute__((always_inline)) void rows_pv64(const int R, const float *p, size_t ldp,
                                                                  const float *V, size_t lim, size_t d, size_t e0,
                                                                  float *o, size_t ldo)
{
    __mmask16 mk[4];
    for (int u = 0; u < 4; u++) mk[u] = cdx_mask16(d - e0 > 16 * (size_t)u ? d - e0 - 16 * (size_t)u : 0);
    __m512 a[6][4];
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) a[r][u] = _mm512_setzero_ps();
    for (size_t c = 0; c < lim; c++) {
        const float *v = V + c * d + e0;
        __m512 v0 = _mm512_maskz_loadu_ps(mk[0], v), v1 = _mm512_maskz_loadu_ps(mk[1], v + 16),
               v2 = _mm512_maskz_loadu_ps(mk[2], v + 32), v3 = _mm512_maskz_loadu_ps(mk[3], v + 48);
#pragma GCC unroll 6
        for (int r = 0; r < R; r++) {
            __m512 w = _mm512_set1_ps(p[r * ldp + c]);
            a[r][0] = _mm512_fmadd_ps(w, v0, a[r][0]);
            a[r][1] = _mm512_fmadd_ps(w, v1, a[r][1]);
            a[r][2] = _mm512_fmadd_ps(w, v2, a[r][2]);
            a[r][3] = _mm512_fmadd_ps(w, v3, a[r][3]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < R; r++)
#pragma GCC unroll 4
        for (int u = 0; u < 4; u++) _mm512_mask_storeu_ps(o + r * ldo + e0 + 16 * u, mk[u], a[r][u]);
}

/* R rows of dispatch.h's attn_rows contract. */
TGT512 static inline __attribute__((always_inline)) void attn_rows_t(const int R, const float *q, size_t ldq,
                                                                    const float *Kt, const float *V, size_t lim,
                                                                    size_t d, float scale, float *p, float *o,
                                                                    size_t ldo)
{
    size_t ldk = (lim + 63) / 64 * 64;
    for (size_t c0 = 0; c0 < lim; c0 += 64) rows_scores64(R, q, ldq, Kt, ldk, c0, d, scale, p, ldk);
    for (int r = 0; r < R; r++) softmax(p + r * ldk, lim);
    for (size_t e0 = 0; e0 < d; e0 += 64) rows_pv64(R, p, ldk, V, lim, d, e0, o, ldo);
}

#define ATTN_ROWS(R)                                                                                             \
    TGT512 static void attn_rows_##R(const float *q, size_t ldq, const float *Kt, const float *V, size_t lim,   \
                                     size_t d, float scale, float *p, float *o, size_t ldo)                     \
    {                                                                                                            \
        attn_rows_t(R, q, ldq, Kt, V, lim, d, scale, p, o, ldo);                                                 \
    }
ATTN_ROWS(1)
ATTN_ROWS(2)
ATTN_ROWS(3)
ATTN_ROWS(4)
ATTN_ROWS(5)
ATTN_ROWS(6)

/* dispatch.h's attn_rows: rows <= CDX_ATTN_ROWS query rows at once. Each
 * row's arithmetic is the same whatever the number of rows beside it, so
 * the grouping of rows never changes a bit. */
TGT512 void cdx_attn_rows_avx512(const float *q, size_t ldq, size_t rows, const float *Kt, const float *V,
                                 size_t lim, size_t d, float scale, float *p, float *o, size_t ldo)
{
    typedef void (*fn)(const float *, size_t, const float *, const float *, size_t, size_t, float, float *,
                       float *, size_t);
    static const fn tab[7] = {0, attn_rows_1, attn_rows_2, attn_rows_3, attn_rows_4, attn_rows_5, attn_rows_6};
    tab[rows](q, ldq, Kt, V, lim, d, scale, p, o, ldo);
}

#endif /* x86 */
