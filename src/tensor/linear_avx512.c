/*
 * linear_avx512.c - the AVX-512 linear layer: dispatch.h's linear_tile for
 * the avx512 path, the contract of cdx_linear_tile_avx2 (linear_avx2.c),
 * built with target attributes (avx512.h) so that only dispatch.c decides
 * who runs it. Compiled only on x86.
 *
 * C (m,n) = A (m,k) @ W (n,k)^T as a blocked outer product over weight
 * panels of 16 outputs (one zmm per k step, k-major): the micro-kernel takes
 * R <= 14 rows against two panels at once, 28 zmm accumulators, one
 * broadcast A element per row and k step (folded into the FMA). Row groups
 * are balanced (50 rows = 13 + 13 + 12 + 12), never zero-padded.
 * Invariant (the AVX2 path's): every output element is one sequential FMA
 * chain over k = 0..K-1 starting from 0 (partial sums between k blocks are
 * stored as float, which is exact), then + bias, then the activation, then
 * the optional accumulate. The per-element chain and the epilogue's
 * arithmetic are exactly the AVX2 path's (GELU aside: a vector erfc here,
 * libm's erff there), so without GELU the two paths agree bitwise, and each
 * path is bitwise the same for any thread count, batch size and tiling.
 *
 * F32P panels are read in place, F16P panels widened in the kernel
 * (_mm512_cvtph_ps) and BF16P panels too (a k pair per 64 bytes: the even k
 * is the low half of each dword, so a shift and a mask give both as exact
 * floats, then the two FMA steps in k order: the same chain as F32P);
 * row types (F32, F16, Q*) and Q8P/Q4P on the fp32 path are packed into
 * fp32 panels by linear_avx2.c's exact pack step. With at
 * most SMALL_M rows and in-place panels (short texts) the loop turns
 * around: panel pair by panel pair, each streamed from memory once with
 * software prefetch, every row group over a k chunk while it sits in L1.
 */
#include <stdint.h>

#include "tensor/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include "tensor/avx512.h"

#define NR 16 /* outputs per panel (one zmm) */
#ifndef MR
#define MR 14 /* rows per micro-kernel at most (2 x MR accumulators) */
#endif
#ifndef KC
#define KC 256 /* k block of the blocked path */
#endif
#ifndef SMALL_M
#define SMALL_M 48 /* at most this many rows: the streaming path */
#endif
#ifndef SKC
#define SKC 128 /* the streaming path's k chunk when it has several row groups */
#endif
#ifndef PFD
#define PFD 2048 /* its prefetch distance in bytes per panel stream */
#endif
#define PACK_KC 256 /* cdx_linear_pack_avx2 packs at most this many k at once */

_Static_assert(CDX_LINEAR_TILE_N % (2 * NR) == 0, "tile width must be a multiple of two panels");
_Static_assert(MR <= 14, "the micro-kernel holds at most 28 accumulators");
_Static_assert(KC % 2 == 0 && SKC % 2 == 0, "BF16P chunks must start at an even k");

/* Per-thread fp32 panels of row types and the float partial sums of a tile. */
static _Thread_local float pack_buf[KC * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));
static _Thread_local float acc_buf[CDX_LINEAR_TILE_M * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));

enum { FMT_F32, FMT_F16, FMT_BF16, N_FMT }; /* the in-place panel formats */

/* One k step of a panel: 16 floats, or 16 binary16 widened (the same floats). */
TGT512 static inline __attribute__((always_inline)) __m512 load_b(const char *B, const int half)
{
    if (half) return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(const void *)B));
    return _mm512_loadu_ps((const float *)(const void *)B);
}

/* One k pair of a BF16P panel (64 bytes: dword j = output j's bf16 of k
 * even in the low half, k odd in the high half) as two exact float vectors. */
TGT512 static inline __attribute__((always_inline)) void load_bf16_pair(const char *B, __m512 *even, __m512 *odd)
{
    __m512i w = _mm512_loadu_si512((const void *)B);
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(w, _mm512_set1_epi32((int)0xffff0000u)));
}

/* c[r][h] += a[r][p] * b[h] for the R rows and NP panels. */
#define FMA_STEP(p, b0, b1)                                                       \
    do {                                                                          \
        _Pragma("GCC unroll 14") for (int r = 0; r < R; r++) {                    \
            __m512 t = _mm512_set1_ps(a[r][p]);                                   \
            c[r][0] = _mm512_fmadd_ps(t, b0, c[r][0]);                            \
            if (NP == 2) c[r][1] = _mm512_fmadd_ps(t, b1, c[r][1]);               \
        }                                                                         \
    } while (0)

/* The micro-kernel: acc (R, 16 NP; stride ldacc) (+)= rows a[0..R) (kc each)
 * @ [P0 | P1] (kc, 16 NP), R = 1..14, NP = 1 or 2 panels; P floats, binary16
 * or bfloat16 pairs (fmt; BF16P chunks start at an even k). pfb > 0
 * prefetches each panel stream pfb bytes ahead. R, NP and fmt are constants
 * in each instantiation, so the loops unroll into named registers. Each
 * output: one sequential FMA chain over k. */
TGT512 static inline __attribute__((always_inline)) void micro_t(const float *const *a, const void *P0,
                                                                const void *P1, size_t kc, float *acc,
                                                                size_t ldacc, int first, size_t pfb, const int R,
                                                                const int NP, const int fmt)
{
    __m512 c[14][2];
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NP; h++)
            c[r][h] = first ? _mm512_setzero_ps() : _mm512_load_ps(acc + (size_t)r * ldacc + (size_t)h * NR);
    const char *B0 = P0, *B1 = P1;
    if (fmt == FMT_BF16) {
        size_t p = 0;
        for (; p + 2 <= kc; p += 2, B0 += NR * 4, B1 += NR * 4) {
            if (pfb) {
                _mm_prefetch(B0 + pfb, _MM_HINT_T0);
                if (NP == 2) _mm_prefetch(B1 + pfb, _MM_HINT_T0);
            }
            __m512 e0, o0, e1 = _mm512_setzero_ps(), o1 = e1;
            load_bf16_pair(B0, &e0, &o0);
            if (NP == 2) load_bf16_pair(B1, &e1, &o1);
            FMA_STEP(p, e0, e1);
            FMA_STEP(p + 1, o0, o1);
        }
        if (p < kc) { /* an odd chunk's last k: the even half of its pair */
            __m512 e0, o0, e1 = _mm512_setzero_ps(), o1 = e1;
            load_bf16_pair(B0, &e0, &o0);
            if (NP == 2) load_bf16_pair(B1, &e1, &o1);
            FMA_STEP(p, e0, e1);
        }
    } else {
        const size_t step = fmt == FMT_F16 ? NR * 2 : NR * 4;
        for (size_t p = 0; p < kc; p++, B0 += step, B1 += step) {
            if (pfb) {
                _mm_prefetch(B0 + pfb, _MM_HINT_T0);
                if (NP == 2) _mm_prefetch(B1 + pfb, _MM_HINT_T0);
            }
            __m512 b0 = load_b(B0, fmt == FMT_F16), b1 = NP == 2 ? load_b(B1, fmt == FMT_F16) : b0;
            FMA_STEP(p, b0, b1);
        }
    }
#pragma GCC unroll 14
    for (int r = 0; r < R; r++)
#pragma GCC unroll 2
        for (int h = 0; h < NP; h++) _mm512_store_ps(acc + (size_t)r * ldacc + (size_t)h * NR, c[r][h]);
}

/* One instantiation per (fmt, NP, R): kern[fmt][NP - 1][R]. */
typedef void (*kern_fn)(const float *const *a, const void *P0, const void *P1, size_t kc, float *acc, size_t ldacc,
                        int first, size_t pfb);
#define DEF_KERN(H, NP, R)                                                                                          \
    TGT512 static void kern_##H##NP##_##R(const float *const *a, const void *P0, const void *P1, size_t kc,        \
                                          float *acc, size_t ldacc, int first, size_t pfb)                        \
    {                                                                                                               \
        micro_t(a, P0, P1, kc, acc, ldacc, first, pfb, R, NP, H);                                                   \
    }
#define DEF_KERNS(R) \
    DEF_KERN(0, 1, R) DEF_KERN(0, 2, R) DEF_KERN(1, 1, R) DEF_KERN(1, 2, R) DEF_KERN(2, 1, R) DEF_KERN(2, 2, R)
DEF_KERNS(1) DEF_KERNS(2) DEF_KERNS(3) DEF_KERNS(4) DEF_KERNS(5) DEF_KERNS(6) DEF_KERNS(7)
DEF_KERNS(8) DEF_KERNS(9) DEF_KERNS(10) DEF_KERNS(11) DEF_KERNS(12) DEF_KERNS(13) DEF_KERNS(14)
#define KERN_ROWS(H, NP)                                                                                             \
    {0, kern_##H##NP##_1, kern_##H##NP##_2, kern_##H##NP##_3, kern_##H##NP##_4, kern_##H##NP##_5, kern_##H##NP##_6,  \
     kern_##H##NP##_7, kern_##H##NP##_8, kern_##H##NP##_9, kern_##H##NP##_10, kern_##H##NP##_11, kern_##H##NP##_12, \
     kern_##H##NP##_13, kern_##H##NP##_14}
static const kern_fn kern[N_FMT][2][15] = {
    {KERN_ROWS(0, 1), KERN_ROWS(0, 2)}, {KERN_ROWS(1, 1), KERN_ROWS(1, 2)}, {KERN_ROWS(2, 1), KERN_ROWS(2, 2)}};

/* Where a tile's panels are for one k chunk: panel q at P + q * pstride
 * bytes, in format fmt. */
struct panels {
    const char *P;
    size_t pstride, np; /* np: panels in the tile */
    int fmt;
};

/* acc rows [0, rows) (+)= A rows [0, rows) (stride lda, from column k0) @
 * panels q, q+1 (fewer at the tile's end) over k [k0, k0+kc): balanced row
 * groups of at most MR rows, each through one kernel. */
TGT512 static void run_groups(const float *A, size_t lda, size_t rows, size_t k0, size_t kc, const struct panels *pn,
                              size_t q, float *acc, size_t ldacc, size_t pfb)
{
    size_t ng = (rows + MR - 1) / MR, np = pn->np - q < 2 ? 1 : 2;
    const char *P0 = pn->P + q * pn->pstride;
    kern_fn const *fn = kern[pn->fmt][np - 1];
    for (size_t g = 0, i = 0; g < ng; g++) {
        size_t R = rows / ng + (g < rows % ng);
        const float *a[MR];
        for (size_t r = 0; r < R; r++) a[r] = A + (i + r) * lda + k0;
        fn[R](a, P0, P0 + pn->pstride, kc, acc + i * ldacc + q * NR, ldacc, k0 == 0, pfb);
        i += R;
    }
}

/* P (kc, 16) panels of the tile's columns for row types: linear_avx2.c's
 * exact pack, at most PACK_KC k at a time. */
TGT512 static void pack_tile(const struct cdx_wmat *W, size_t k, size_t n0, size_t n1, size_t k0, size_t kc,
                             size_t np, float *P)
{
    for (size_t q = 0; q < np; q++)
        for (size_t o = 0; o < kc; o += PACK_KC)
            cdx_linear_pack_avx2(W, k, n0 + q * NR, n1, k0 + o, kc - o < PACK_KC ? kc - o : PACK_KC,
                                 P + q * KC * NR + o * NR);
}

/* quick_gelu(x) = x / (1 + e^(-1.702 x)), as linear_avx2.c's quick_gelu8. */
TGT512 static inline __m512 quick_gelu16(__m512 x)
{
    __m512 e = cdx_exp16(_mm512_mul_ps(x, _mm512_set1_ps(-1.702f)));
    return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
}

/* GELU(x) = x (1 + erf(x / sqrt 2)) / 2 through erfc(z), z = |x| / sqrt 2:
 * erfc(z) = t e^(-z^2 + P(t)), t = 1 / (1 + z/2), P of degree 9 (Numerical
 * Recipes' erfcc, relative error below 1.2e-7 for every z), so that the
 * small negative side keeps its relative accuracy: GELU = x erfc(z) / 2 for
 * x < 0, x - x erfc(z) / 2 otherwise. A few ulp from the exact value
 * (test_kernels measures it); 0.7 ns per output where libm's erff per lane
 * (the AVX2 epilogue) takes 11, more than the MLP's first product itself. */
TGT512 static inline __m512 gelu16(__m512 x)
{
    static const float c[10] = {0.17087277f, -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                                -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    __m512 t = _mm512_div_ps(_mm512_set1_ps(1.0f), _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f)));
    __m512 p = _mm512_set1_ps(c[0]);
    for (int i = 1; i < 10; i++) p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(c[i]));
    __m512 e = _mm512_mul_ps(t, cdx_exp16(_mm512_fnmadd_ps(z, z, p)));
    __m512 h = _mm512_mul_ps(_mm512_mul_ps(x, _mm512_set1_ps(0.5f)), e); /* x erfc(z) / 2 */
    return _mm512_mask_sub_ps(h, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GE_OQ), x, h);
}

/* C rows [m0, m1) x cols [n0, n1) (+)= act(acc + bias), acc row i at
 * acc + (i - m0) * ldacc; 16 columns at a time, the last ones masked. The
 * arithmetic per element is cdx_linear_epilogue_avx2's but for GELU. Also
 * the epilogue of the AVX512_VNNI int8 tile (qgemm_avx512.c). */
TGT512 void cdx_linear_epilogue_avx512(const float *acc, size_t ldacc, const float *bias, float *C, size_t ldc, size_t m0,
                            size_t m1, size_t n0, size_t n1, int act, unsigned flags)
{
    size_t nt = n1 - n0;
    for (size_t i = m0; i < m1; i++) {
        const float *a = acc + (i - m0) * ldacc;
        float *c = C + i * ldc + n0;
        for (size_t j = 0; j < nt; j += 16) {
            __mmask16 mk = cdx_mask16(nt - j);
            __m512 s = _mm512_maskz_loadu_ps(mk, a + j);
            if (bias) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mk, bias + n0 + j));
            if (act == CDX_ACT_QUICK_GELU) s = quick_gelu16(s);
            else if (act == CDX_ACT_GELU) s = gelu16(s);
            if (flags & CDX_LIN_ACCUM) s = _mm512_add_ps(_mm512_maskz_loadu_ps(mk, c + j), s);
            _mm512_mask_storeu_ps(c + j, mk, s);
        }
    }
}

static int in_place(int type)
{
    return type == CDX_W_F32P || type == CDX_W_F16P || type == CDX_W_BF16P;
}

/* The in-place panels of columns [n0, ...) from k0 (even for BF16P, whose
 * panel holds (k + 1) / 2 pairs of 64 bytes). */
static struct panels panels_at(const struct cdx_wmat *W, size_t k, size_t n0, size_t k0, size_t np)
{
    int fmt = W->type == CDX_W_F16P ? FMT_F16 : W->type == CDX_W_BF16P ? FMT_BF16 : FMT_F32;
    size_t pstride = fmt == FMT_BF16 ? (k + 1) / 2 * NR * 4 : k * NR * (fmt == FMT_F16 ? 2 : 4);
    size_t off = fmt == FMT_F32 ? k0 * NR * 4 : k0 * NR * 2; /* a BF16 pair: 2 k in 64 bytes */
    return (struct panels){(const char *)W->data + (n0 / NR) * pstride + off, pstride, np, fmt};
}

/* Few rows, in-place panels: panel pair by panel pair, each streamed once
 * from memory in k chunks (all of k for one row group, SKC for more), every
 * group over the chunk while it is in L1. */
TGT512 static void tile_stream(const float *A, size_t lda, const struct cdx_wmat *W, size_t rows, size_t n0,
                               size_t np, size_t k, float *acc, size_t ldacc)
{
    size_t ks = rows <= MR ? k : SKC;
    for (size_t q = 0; q < np; q += 2)
        for (size_t k0 = 0; k0 < k; k0 += ks) {
            size_t kc = k - k0 < ks ? k - k0 : ks;
            struct panels pn = panels_at(W, k, n0, k0, np);
            run_groups(A, lda, rows, k0, kc, &pn, q, acc, ldacc, PFD);
        }
}

/* The blocked path: k blocks of KC; per block the tile's panels (in place
 * or packed), then every panel pair against every row group. */
TGT512 static void tile_blocked(const float *A, size_t lda, const struct cdx_wmat *W, size_t rows, size_t n0,
                                size_t n1, size_t k, float *acc, size_t ldacc)
{
    size_t np = (n1 - n0 + NR - 1) / NR;
    for (size_t k0 = 0; k0 < k; k0 += KC) {
        size_t kc = k - k0 < KC ? k - k0 : KC;
        struct panels pn = {(const char *)pack_buf, KC * NR * sizeof(float), np, FMT_F32};
        if (in_place(W->type))
            pn = panels_at(W, k, n0, k0, np);
        else
            pack_tile(W, k, n0, n1, k0, kc, np, pack_buf);
        for (size_t q = 0; q < np; q += 2) run_groups(A, lda, rows, k0, kc, &pn, q, acc, ldacc, 0);
    }
}

TGT512 void cdx_linear_tile_avx512(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                   float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                   int act, unsigned flags)
{
    size_t rows = m1 - m0, ldacc = CDX_LINEAR_TILE_N, np = (n1 - n0 + NR - 1) / NR;
    const float *Am = A + m0 * lda;
    if (k == 0) {
        for (size_t i = 0; i < rows * ldacc; i++) acc_buf[i] = 0.0f;
    } else if (in_place(W->type) && rows <= SMALL_M) {
        tile_stream(Am, lda, W, rows, n0, np, k, acc_buf, ldacc);
    } else {
        tile_blocked(Am, lda, W, rows, n0, n1, k, acc_buf, ldacc);
    }
    cdx_linear_epilogue_avx512(acc_buf, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
}

#endif /* x86 */
