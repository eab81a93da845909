/*
 * linear_bf16_avx512.c - the linear layer for BF16P weights with AVX512_BF16:
 * C (m, n) (+)= act(A (m, k) @ W (n, k)^T + bias), A in fp32, W in BF16P
 * panels (ops.h: per k pair, the 16 rows' two bfloat16 values = one zmm).
 *
 * Activations are rounded to bfloat16 (vcvtne2ps2bf16, round to nearest
 * even), two k at a time into one dword, and multiplied with vdpbf16ps,
 * which adds both pair products of each of the 16 outputs into an fp32
 * accumulator. Per output the order is fixed: one vdpbf16ps per k pair, in
 * k order, from 0; partial sums are stored as floats between k chunks
 * (exact), so the result does not depend on the tiling, the row group a row
 * falls in, the batch size or the thread count. Then the epilogue of the
 * AVX2 path (bias, activation, accumulate). An odd k pads the last pair with
 * a zero activation (the panel holds a zero weight there).
 *
 * Structure: for each k chunk of KCP pairs and each group of up to R rows,
 * the rows' chunk is converted once into a small buffer (L1), then every
 * 4-panel run of the tile (64 outputs) is multiplied by the R x 4 register
 * tile micro-kernel while its weights (4 x KCP x 64 B) stay in L1.
 * Compiled only on x86; dispatch.c uses it when the CPU has AVX512_BF16.
 */
#include <string.h>

#include "tensor/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma,avx2,f16c")))
#define INL inline __attribute__((always_inline))
#define NR CDX_PANEL /* outputs per panel */
#define RMAX 6       /* rows per micro-kernel */
#define PMAX 4       /* panels per micro-kernel (the tile width, 64) */
#define KCP 128      /* k pairs per chunk */
#ifdef __clang__
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif

_Static_assert(CDX_LINEAR_TILE_N == NR * PMAX, "a micro-kernel spans the tile's width");

/* Per-thread float partial sums of one tile, and the bf16 pairs of one row
 * group's chunk. */
static _Thread_local float acc_buf[CDX_LINEAR_TILE_M * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));
static _Thread_local uint32_t a_buf[RMAX * KCP] __attribute__((aligned(64)));

/* dst (np pairs) = x[2p], x[2p+1] rounded to bfloat16, low half first;
 * x has kc values (an odd kc pads the last pair with 0). */
TGT static void to_pairs(const float *x, size_t kc, uint32_t *dst)
{
    size_t p = 0, np = kc / 2;
    for (; p + 16 <= np; p += 16) {
        __m512 lo = _mm512_loadu_ps(x + 2 * p), hi = _mm512_loadu_ps(x + 2 * p + 16);
        _mm512_storeu_si512((void *)(dst + p), (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
    }
    if (p < (kc + 1) / 2) { /* the rest, through a zero-padded copy */
        float t[32] = {0};
        memcpy(t, x + 2 * p, (kc - 2 * p) * sizeof *t);
        __m512i v = (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(t + 16), _mm512_loadu_ps(t));
        uint32_t u[16];
        _mm512_storeu_si512((void *)u, v);
        memcpy(dst + p, u, ((kc + 1) / 2 - p) * sizeof *u);
    }
}

/* f (R rows, P panels x 16; stride ldf) (+)= the R rows of pairs a (stride
 * KCP) @ np pairs of P panels (panel p's chunk at W + p * pstride).
 * first: start from zero. R and P are constants in every instance. */
TGT static INL void micro(const int R, const int P, const uint32_t *a, const uint8_t *W, size_t pstride,
                          size_t np, float *f, size_t ldf, int first)
{
    __m512 c[RMAX * PMAX];
    UNROLL
    for (int r = 0; r < R; r++) {
        UNROLL
        for (int q = 0; q < P; q++) c[r * P + q] = first ? _mm512_setzero_ps() : _mm512_load_ps(f + r * ldf + q * NR);
    }
    for (size_t p = 0; p < np; p++) {
        __m512bh w[PMAX];
        UNROLL
        for (int q = 0; q < P; q++) w[q] = (__m512bh)_mm512_loadu_si512((const void *)(W + q * pstride + p * 64));
        UNROLL
        for (int r = 0; r < R; r++) {
            __m512bh x = (__m512bh)_mm512_set1_epi32((int)a[r * KCP + p]);
            UNROLL
            for (int q = 0; q < P; q++) c[r * P + q] = _mm512_dpbf16_ps(c[r * P + q], x, w[q]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        UNROLL
        for (int q = 0; q < P; q++) _mm512_store_ps(f + r * ldf + q * NR, c[r * P + q]);
    }
}

typedef void (*micro_fn)(const uint32_t *, const uint8_t *, size_t, size_t, float *, size_t, int);
#define DEF_MICRO(R, P)                                                                                    \
    TGT static void micro_##R##_##P(const uint32_t *a, const uint8_t *W, size_t ps, size_t np, float *f,  \
                                    size_t ldf, int first)                                                 \
    {                                                                                                      \
        micro(R, P, a, W, ps, np, f, ldf, first);                                                          \
    }
#define DEF_ROWS(P) DEF_MICRO(1, P) DEF_MICRO(2, P) DEF_MICRO(3, P) DEF_MICRO(4, P) DEF_MICRO(5, P) DEF_MICRO(6, P)
DEF_ROWS(1)
DEF_ROWS(2)
DEF_ROWS(3)
DEF_ROWS(4)
#define ROWS(P) {micro_1_##P, micro_2_##P, micro_3_##P, micro_4_##P, micro_5_##P, micro_6_##P}
static const micro_fn micros[PMAX][RMAX] = {ROWS(1), ROWS(2), ROWS(3), ROWS(4)};

/* The dispatch table's linear_tile_bf16 (dispatch.h contract) for BF16P. */
TGT void cdx_linear_tile_bf16_avx512(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                     float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                     int act, unsigned flags)
{
    const size_t ldacc = CDX_LINEAR_TILE_N, npair = (k + 1) / 2, pstride = npair * 64;
    const size_t npan = (n1 - n0 + NR - 1) / NR;
    const uint8_t *W0 = (const uint8_t *)W->data + (n0 / NR) * pstride;
    float *acc = acc_buf;
    if (npair == 0)
        for (size_t i = 0; i < m1 - m0; i++) memset(acc + i * ldacc, 0, (n1 - n0) * sizeof *acc);
    for (size_t p0 = 0; p0 < npair; p0 += KCP) {
        size_t np = npair - p0 < KCP ? npair - p0 : KCP, kc = k - 2 * p0 < 2 * KCP ? k - 2 * p0 : 2 * KCP;
        for (size_t i = m0; i < m1; i += RMAX) {
            size_t r = m1 - i < RMAX ? m1 - i : RMAX;
            for (size_t rr = 0; rr < r; rr++) to_pairs(A + (i + rr) * lda + 2 * p0, kc, a_buf + rr * KCP);
            micros[npan - 1][r - 1](a_buf, W0 + p0 * 64, pstride, np, acc + (i - m0) * ldacc, ldacc, p0 == 0);
        }
    }
    cdx_linear_epilogue_avx2(acc, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
}

#endif /* x86 */
