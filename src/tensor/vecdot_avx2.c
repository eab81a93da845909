/*
 * vecdot_avx2.c - AVX2/FMA kernels of the vector search (contracts in
 * vecdot.h), per-function target attributes; dispatch.c puts them in the
 * AVX2 (and higher) tables when the CPU has them.
 *   float32: per row 4 independent 8-lane FMA accumulators over 32
 *            dimensions, then 8, a fixed horizontal sum, a scalar tail. The
 *            order depends on dim only, never on `rows`.
 *   int8:    maddubs(|c|, sign(p, c)) gives pair sums <= 2 x 127 x 127 (no
 *            saturation), madd with ones widens them to int32: exact. Four
 *            rows share each query load when dim % 32 == 0.
 *   4-bit:   per 64 dimensions one 32-byte load per row, low and high
 *            nibbles times the two query halves with maddubs (pair sums
 *            <= 2 x 15 x 127); int16 lanes add up to four blocks (<= 30480)
 *            before widening with madd: exact. Four rows at a time, the
 *            last rows by the reference.
 */
#include "tensor/vecdot.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* the sum of the 8 int32 lanes of each of a0..a3 -> out[0..3] */
__attribute__((target("avx2"))) static void hsum4_epi32(__m256i a0, __m256i a1, __m256i a2, __m256i a3,
                                                       int32_t *out)
{
    __m256i h = _mm256_hadd_epi32(_mm256_hadd_epi32(a0, a1), _mm256_hadd_epi32(a2, a3));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)out, s);
}

__attribute__((target("avx2,fma"))) void cdx_vec_dot_avx2(const float *m, size_t rows, size_t dim,
                                                            const float *q, float *out)
{
    size_t d32 = dim & ~(size_t)31, d8 = dim & ~(size_t)7;
    for (size_t r = 0; r < rows; r++) {
        const float *x = m + r * dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t i = 0;
        for (; i < d32; i += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(q + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(q + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(q + i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(q + i + 24), a3);
        }
        for (; i < d8; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(q + i), a0);
        __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; i < dim; i++) s += x[i] * q[i];
        out[r] = s;
    }
}

/* sum over 32 lanes of a x b (int8), widened into acc (int32 lanes) */
__attribute__((target("avx2"))) static __m256i dot8_step(__m256i acc, __m256i x, __m256i y)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}

/* one int8 row of any length */
__attribute__((target("avx2"))) static int32_t dot8_row(const int8_t *a, const int8_t *b, size_t dim)
{
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0, d32 = dim & ~(size_t)31;
    for (; i < d32; i += 32)
        acc = dot8_step(acc, _mm256_loadu_si256((const __m256i *)(a + i)),
                        _mm256_loadu_si256((const __m256i *)(b + i)));
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    for (; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}

/* four consecutive int8 rows, dim % 32 == 0: the query loaded once per step */
__attribute__((target("avx2"))) static void dot8_rows4(const int8_t *c, size_t dim, const int8_t *p,
                                                       int32_t *out)
{
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i < dim; i += 32) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(p + i));
        a0 = dot8_step(a0, _mm256_loadu_si256((const __m256i *)(c + i)), y);
        a1 = dot8_step(a1, _mm256_loadu_si256((const __m256i *)(c + dim + i)), y);
        a2 = dot8_step(a2, _mm256_loadu_si256((const __m256i *)(c + 2 * dim + i)), y);
        a3 = dot8_step(a3, _mm256_loadu_si256((const __m256i *)(c + 3 * dim + i)), y);
    }
    hsum4_epi32(a0, a1, a2, a3, out);
}

__attribute__((target("avx2"))) void cdx_vec_dot8_avx2(const int8_t *c, size_t rows, size_t dim,
                                                         const int8_t *p, int32_t *out)
{
    size_t r = 0;
    if (dim % 32 == 0)
        for (; r + 4 <= rows; r += 4) dot8_rows4(c + r * dim, dim, p, out + r);
    for (; r < rows; r++) out[r] = dot8_row(c + r * dim, p, dim);
}

/* one 64-dimension block of a 4-bit row v against the query halves y0, y1,
 * added to the int16 lanes of acc */
__attribute__((target("avx2"))) static __m256i dot4_step(__m256i acc, __m256i v, __m256i y0, __m256i y1)
{
    const __m256i m15 = _mm256_set1_epi8(15);
    __m256i lo = _mm256_and_si256(v, m15), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15);
    return _mm256_add_epi16(acc, _mm256_add_epi16(_mm256_maddubs_epi16(lo, y0), _mm256_maddubs_epi16(hi, y1)));
}

/* four consecutive 4-bit rows (rb bytes apart), dp = 2 rb dimensions */
__attribute__((target("avx2"))) static void dot4_rows4(const uint8_t *c, size_t rb, const int8_t *p,
                                                       int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    size_t dp = 2 * rb;
    for (size_t b0 = 0; b0 < dp; b0 += 256) {
        size_t e = b0 + 256 < dp ? b0 + 256 : dp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t b = b0; b < e; b += 64) {
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(p + b));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(p + b + 32));
            s0 = dot4_step(s0, _mm256_loadu_si256((const __m256i *)(c + b / 2)), y0, y1);
            s1 = dot4_step(s1, _mm256_loadu_si256((const __m256i *)(c + rb + b / 2)), y0, y1);
            s2 = dot4_step(s2, _mm256_loadu_si256((const __m256i *)(c + 2 * rb + b / 2)), y0, y1);
            s3 = dot4_step(s3, _mm256_loadu_si256((const __m256i *)(c + 3 * rb + b / 2)), y0, y1);
        }
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones));
    }
    hsum4_epi32(a0, a1, a2, a3, out);
}

__attribute__((target("avx2"))) void cdx_vec_dot4_avx2(const uint8_t *c, size_t rows, size_t rb,
                                                         const int8_t *p, int32_t *out)
{
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) dot4_rows4(c + r * rb, rb, p, out + r);
    if (r < rows) cdx_vec_dot4_ref(c + r * rb, rows - r, rb, p, out + r);
}
#endif
