/*
 * rows_avx512.c - the AVX-512 row kernels: one LayerNorm row and one
 * attention query row (dispatch.h's layernorm_row and attn_row for the
 * avx512 path). Each row's arithmetic depends only on that row's inputs, in a
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

/* p[c..c+4) = (q . K_c') * scale for four keys K_c' = K + c' ld (d each):
 * 16-lane FMA chains, one fixed-order horizontal sum per key. */
TGT512 static void scores4(const float *q, const float *K, size_t ld, size_t c, size_t nk, size_t d, float scale,
                           float *p)
{
    const float *k0 = K + c * ld, *k1 = nk > 1 ? k0 + ld : k0, *k2 = nk > 2 ? k0 + 2 * ld : k0;
    const float *k3 = nk > 3 ? k0 + 3 * ld : k0;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t i = 0; i < d; i += 16) {
        __mmask16 mk = cdx_mask16(d - i);
        __m512 qv = _mm512_maskz_loadu_ps(mk, q + i);
        s0 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k0 + i), s0);
        s1 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k1 + i), s1);
        s2 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k2 + i), s2);
        s3 = _mm512_fmadd_ps(qv, _mm512_maskz_loadu_ps(mk, k3 + i), s3);
    }
    float t[4] = {cdx_hsum16(s0) * scale, cdx_hsum16(s1) * scale, cdx_hsum16(s2) * scale, cdx_hsum16(s3) * scale};
    memcpy(p + c, t, nk * sizeof *t);
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
 * time in four registers, keys in order. */
TGT512 void cdx_attn_row_avx512(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d,
                                float scale, float *p, float *o)
{
    for (size_t c = 0; c < lim; c += 4) scores4(q, K, ld, c, lim - c < 4 ? lim - c : 4, d, scale, p);
    softmax(p, lim);
    for (size_t e0 = 0; e0 < d; e0 += 64) {
        __mmask16 m0 = cdx_mask16(d - e0), m1 = cdx_mask16(d - e0 > 16 ? d - e0 - 16 : 0);
        __mmask16 m2 = cdx_mask16(d - e0 > 32 ? d - e0 - 32 : 0), m3 = cdx_mask16(d - e0 > 48 ? d - e0 - 48 : 0);
        __m512 o0 = _mm512_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
        for (size_t c = 0; c < lim; c++) {
            const float *v = V + c * ld + e0;
            __m512 w = _mm512_set1_ps(p[c]);
            o0 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m0, v), o0);
            o1 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m1, v + 16), o1);
            o2 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m2, v + 32), o2);
            o3 = _mm512_fmadd_ps(w, _mm512_maskz_loadu_ps(m3, v + 48), o3);
        }
        _mm512_mask_storeu_ps(o + e0, m0, o0), _mm512_mask_storeu_ps(o + e0 + 16, m1, o1);
        _mm512_mask_storeu_ps(o + e0 + 32, m2, o2), _mm512_mask_storeu_ps(o + e0 + 48, m3, o3);
    }
}

#endif /* x86 */
