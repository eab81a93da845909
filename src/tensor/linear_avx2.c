/*
 * linear_avx2.c - AVX2/FMA kernels (the only file with x86 intrinsics), built
 * with target attributes and chosen at run time by cdx_cpu_has_avx2_fma().
 * The micro-kernel computes a 3x4 block of dot products A_i . W_j with one
 * 8-lane accumulator per output; every output element, whichever block shape
 * computes it, sees the same arithmetic: lane-wise FMA over k in steps of 8,
 * a fixed-order horizontal sum, then a scalar FMA tail. That is what makes
 * results independent of batch size and threading.
 */
#include "tensor/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

int cdx_cpu_has_avx2_fma(void)
{
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }
    return cached;
}

#define TGT __attribute__((target("avx2,fma")))

TGT static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* out[i][j] = A_i (k,) . W_j (k,) for i < MR, j < NR (MR <= 3, NR <= 4). */
TGT static inline __attribute__((always_inline)) void
block_dot(const float *A, size_t lda, const float *W, size_t k, int MR, int NR, float out[3][4])
{
    __m256 acc[3][4];
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) acc[i][j] = _mm256_setzero_ps();
    size_t p = 0;
    for (; p + 8 <= k; p += 8) {
        __m256 a[3];
        for (int i = 0; i < MR; i++) a[i] = _mm256_loadu_ps(A + i * lda + p);
        for (int j = 0; j < NR; j++) {
            __m256 w = _mm256_loadu_ps(W + j * k + p);
            for (int i = 0; i < MR; i++) acc[i][j] = _mm256_fmadd_ps(a[i], w, acc[i][j]);
        }
    }
    for (int i = 0; i < MR; i++)
        for (int j = 0; j < NR; j++) {
            float s = hsum8(acc[i][j]);
            for (size_t q = p; q < k; q++) s = __builtin_fmaf(A[i * lda + q], W[j * k + q], s);
            out[i][j] = s;
        }
}

TGT static inline void store(float *C, size_t ldc, const float *bias, size_t i, size_t j, float s,
                             int act, unsigned flags)
{
    if (bias) s += bias[j];
    s = cdx_act_apply(act, s);
    float *c = C + i * ldc + j;
    *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
}

TGT void cdx_linear_tile_avx2(const float *A, size_t lda, const float *W, const float *bias,
                              float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1,
                              size_t k, int act, unsigned flags)
{
    float out[3][4];
    size_t i = m0;
    for (; i + 3 <= m1; i += 3) {
        size_t j = n0;
        for (; j + 4 <= n1; j += 4) {
            block_dot(A + i * lda, lda, W + j * k, k, 3, 4, out);
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 4; b++) store(C, ldc, bias, i + a, j + b, out[a][b], act, flags);
        }
        for (; j < n1; j++) {
            block_dot(A + i * lda, lda, W + j * k, k, 3, 1, out);
            for (int a = 0; a < 3; a++) store(C, ldc, bias, i + a, j, out[a][0], act, flags);
        }
    }
    for (; i < m1; i++) {
        size_t j = n0;
        for (; j + 4 <= n1; j += 4) {
            block_dot(A + i * lda, lda, W + j * k, k, 1, 4, out);
            for (int b = 0; b < 4; b++) store(C, ldc, bias, i, j + b, out[0][b], act, flags);
        }
        for (; j < n1; j++) {
            block_dot(A + i * lda, lda, W + j * k, k, 1, 1, out);
            store(C, ldc, bias, i, j, out[0][0], act, flags);
        }
    }
}

TGT float cdx_dot_avx2(const float *a, const float *b, size_t n)
{
    float out[3][4];
    block_dot(a, 0, b, n, 1, 1, out);
    return out[0][0];
}

#else /* not x86: the scalar reference is used everywhere */

int cdx_cpu_has_avx2_fma(void) { return 0; }
void cdx_linear_tile_avx2(const float *A, size_t lda, const float *W, const float *bias, float *C,
                          size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                          int act, unsigned flags)
{
    cdx_linear_ref(A + m0 * lda, lda, W + n0 * k, bias ? bias + n0 : NULL, C + m0 * ldc + n0, ldc,
                   m1 - m0, n1 - n0, k, act, flags);
}
float cdx_dot_avx2(const float *a, const float *b, size_t n)
{
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
#endif
