/*
 * linear_avx2.c - AVX2/FMA kernels (the only file with x86 intrinsics), built
 * with target attributes; dispatch.c puts them in the AVX2 table when the
 * CPU has AVX2, FMA and F16C (cpu.c). Compiled only on x86.
 *
 * The linear layer C (m,n) = A (m,k) @ W (n,k)^T is computed as a blocked
 * outer product: W is packed per task into panels of 16 outputs x KC inputs
 * (k-major, so one k step is two 8-float loads), and a 6x16 micro-kernel keeps
 * 12 ymm accumulators while broadcasting one A element per row per k step.
 * Invariant that makes results independent of batch size, tiling and thread
 * count: every output element is a sequential FMA chain over k = 0..K-1
 * starting from 0 (partial sums between k blocks are stored as float, which
 * is exact), then + bias, then the activation, then the optional accumulate.
 * Row/column remainders use the same chain (fewer rows; zero-padded panels).
 *
 * Panel-packed F32P weights (ops.h) are read in place (no pack step at
 * all); F16P panels are only widened to floats. With at most SMALL_M rows
 * (a text query, the pooled rows of a last block) the loop turns around: panel
 * by panel, each streamed from memory once with software prefetch in k chunks,
 * every row group (balanced, 1 to 6 rows, never padded) over the chunk while
 * it sits in L1. Measured single-thread on 128 MB of F32P (k 512): 6 rows
 * 18 GB/s, 7 rows 14 GB/s (the blocked path with a zero-padded second group:
 * 8 GB/s), equal to the blocked path from ~48 rows on, where compute bounds
 * both. The same chain per output, so the results are bitwise those of the
 * blocked path.
 * Reduced-precision weights (F16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) change only
 * the pack step: eight values of a row are expanded to floats (F16C for
 * halves; integer widen + convert + multiply by the block scale for the Q
 * types, the same exact arithmetic as cdx_dequant_row) and go through the
 * same transposes into the same fp32 panels, so the micro-kernel and the
 * per-element FMA chain are untouched: a quantized matrix gives bitwise the
 * result of its dequantized F32 copy, for any batch and thread count.
 */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define MR 6   /* rows per micro-kernel */
#define NR 16  /* outputs per panel */
#define KC 256 /* k block */
#ifndef SMALL_M
#define SMALL_M 48 /* at most this many rows: the streaming path */
#endif
#ifndef PFD1
#define PFD1 48
#endif
#ifndef PFDN
#define PFDN 1
#endif
#ifndef SKC
#define SKC 128 /* its k chunk when it has more than one row group */
#endif

_Static_assert(CDX_LINEAR_TILE_N % NR == 0, "tile width must be a multiple of the panel width");

/* Per-thread packed W panels, partial sums (MR spare rows so a short row
 * group can run the full kernel) and zero-padded A rows for short groups. */
static _Thread_local float pack_buf[KC * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));
static _Thread_local float acc_buf[(CDX_LINEAR_TILE_M + MR) * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));
static _Thread_local float apad_buf[MR * KC] __attribute__((aligned(64)));

/* The micro-kernel: acc (R, 16; stride ldacc) (+)= rows a[0..R) (each kc
 * long) @ P (kc, 16), R = 1 .. 6. P holds floats or, with `half`, binary16
 * (widened with F16C: the same floats). `pf` prefetches P ahead (the small-M
 * path, where P streams from memory). R, half and pf are constants in each
 * instantiation below, so the unused branches fold away; the twelve named
 * accumulators stay in registers. Every output is one sequential FMA chain
 * over k whatever the instantiation. */
#define ROW(r, body) if (R > r) { body; }
TGT static inline __attribute__((always_inline)) void micro_t(const float *const a[6], const void *Pv, size_t kc,
                                                             float *acc, size_t ldacc, int first, const int R,
                                                             const int half, const int pf, size_t pfd)
{
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = _mm256_setzero_ps();
    if (!first) {
        c00 = _mm256_load_ps(acc + 0 * ldacc), c01 = _mm256_load_ps(acc + 0 * ldacc + 8);
        ROW(1, (c10 = _mm256_load_ps(acc + 1 * ldacc), c11 = _mm256_load_ps(acc + 1 * ldacc + 8)))
        ROW(2, (c20 = _mm256_load_ps(acc + 2 * ldacc), c21 = _mm256_load_ps(acc + 2 * ldacc + 8)))
        ROW(3, (c30 = _mm256_load_ps(acc + 3 * ldacc), c31 = _mm256_load_ps(acc + 3 * ldacc + 8)))
        ROW(4, (c40 = _mm256_load_ps(acc + 4 * ldacc), c41 = _mm256_load_ps(acc + 4 * ldacc + 8)))
        ROW(5, (c50 = _mm256_load_ps(acc + 5 * ldacc), c51 = _mm256_load_ps(acc + 5 * ldacc + 8)))
    }
    /* rows past R are never read: their pointers repeat row 0 */
    const float *a0 = a[0], *a1 = a[R > 1 ? 1 : 0], *a2 = a[R > 2 ? 2 : 0], *a3 = a[R > 3 ? 3 : 0],
                *a4 = a[R > 4 ? 4 : 0], *a5 = a[R > 5 ? 5 : 0];
    const float *P = Pv;
    const uint16_t *H = Pv;
    for (size_t p = 0; p < kc; p++, P += NR, H += NR) {
        __m256 b0, b1, t;
        if (half) {
            if (pf) _mm_prefetch((const char *)(H + pfd), _MM_HINT_T0);
            b0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)H));
            b1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(H + 8)));
        } else {
            if (pf) _mm_prefetch((const char *)(P + pfd), _MM_HINT_T0);
            b0 = _mm256_load_ps(P), b1 = _mm256_load_ps(P + 8);
        }
        t = _mm256_broadcast_ss(a0 + p);
        c00 = _mm256_fmadd_ps(t, b0, c00), c01 = _mm256_fmadd_ps(t, b1, c01);
        ROW(1, (t = _mm256_broadcast_ss(a1 + p), c10 = _mm256_fmadd_ps(t, b0, c10), c11 = _mm256_fmadd_ps(t, b1, c11)))
        ROW(2, (t = _mm256_broadcast_ss(a2 + p), c20 = _mm256_fmadd_ps(t, b0, c20), c21 = _mm256_fmadd_ps(t, b1, c21)))
        ROW(3, (t = _mm256_broadcast_ss(a3 + p), c30 = _mm256_fmadd_ps(t, b0, c30), c31 = _mm256_fmadd_ps(t, b1, c31)))
        ROW(4, (t = _mm256_broadcast_ss(a4 + p), c40 = _mm256_fmadd_ps(t, b0, c40), c41 = _mm256_fmadd_ps(t, b1, c41)))
        ROW(5, (t = _mm256_broadcast_ss(a5 + p), c50 = _mm256_fmadd_ps(t, b0, c50), c51 = _mm256_fmadd_ps(t, b1, c51)))
    }
    _mm256_store_ps(acc + 0 * ldacc, c00), _mm256_store_ps(acc + 0 * ldacc + 8, c01);
    ROW(1, (_mm256_store_ps(acc + 1 * ldacc, c10), _mm256_store_ps(acc + 1 * ldacc + 8, c11)))
    ROW(2, (_mm256_store_ps(acc + 2 * ldacc, c20), _mm256_store_ps(acc + 2 * ldacc + 8, c21)))
    ROW(3, (_mm256_store_ps(acc + 3 * ldacc, c30), _mm256_store_ps(acc + 3 * ldacc + 8, c31)))
    ROW(4, (_mm256_store_ps(acc + 4 * ldacc, c40), _mm256_store_ps(acc + 4 * ldacc + 8, c41)))
    ROW(5, (_mm256_store_ps(acc + 5 * ldacc, c50), _mm256_store_ps(acc + 5 * ldacc + 8, c51)))
}
#undef ROW

/* acc (R, 16; stride ldacc) (+)= A (R, kc; stride lda) @ P (kc, 16): the blocked path. */
TGT static void micro6(const float *A, size_t lda, const float *P, size_t kc, float *acc, size_t ldacc, int first)
{
    const float *a[6] = {A, A + lda, A + 2 * lda, A + 3 * lda, A + 4 * lda, A + 5 * lda};
    micro_t(a, P, kc, acc, ldacc, first, 6, 0, 0, 0);
}

TGT static void micro5(const float *A, size_t lda, const float *P, size_t kc, float *acc, size_t ldacc, int first)
{
    const float *a[6] = {A, A + lda, A + 2 * lda, A + 3 * lda, A + 4 * lda, A};
    micro_t(a, P, kc, acc, ldacc, first, 5, 0, 0, 0);
}

/* The small-M path (at most SMALL_M rows, F32P / F16P panels): acc (R, 16;
 * stride ldacc) (+)= rows r[0..R) @ kc steps of one panel, prefetched: each
 * weight streams from memory once, row groups after the first find it in L1.
 * One instance per row count and weight type. */
typedef void (*stream_fn)(const float *const r[6], const void *P, size_t kc, float *acc, size_t ldacc, int first,
                          size_t pfd);
#define DEF_STREAM(R)                                                                                          \
    TGT static void stream_f##R(const float *const r[6], const void *P, size_t kc, float *acc, size_t ldacc,   \
                                int first, size_t pfd)                                                         \
    {                                                                                                          \
        micro_t(r, P, kc, acc, ldacc, first, R, 0, 1, pfd);                                                    \
    }                                                                                                          \
    TGT static void stream_h##R(const float *const r[6], const void *P, size_t kc, float *acc, size_t ldacc,   \
                                int first, size_t pfd)                                                         \
    {                                                                                                          \
        micro_t(r, P, kc, acc, ldacc, first, R, 1, 1, pfd);                                                    \
    }
DEF_STREAM(1)
DEF_STREAM(2)
DEF_STREAM(3)
DEF_STREAM(4)
DEF_STREAM(5)
DEF_STREAM(6)
static const stream_fn stream_f[7] = {0, stream_f1, stream_f2, stream_f3, stream_f4, stream_f5, stream_f6};
static const stream_fn stream_h[7] = {0, stream_h1, stream_h2, stream_h3, stream_h4, stream_h5, stream_h6};

/* 8x8 transpose: r[i] = row i in, r[i] = column i out. */
TGT static inline void transpose8(__m256 r[8])
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

static inline float ld_half_scalar(const uint8_t *p) { return cdx_half_to_float((uint16_t)(p[0] | p[1] << 8)); }

/* Eight consecutive values W[j, p .. p+7] of row `row` (p % 8 == 0) as floats,
 * exactly as cdx_dequant_row gives them. */
TGT static inline __attribute__((always_inline)) __m256 wload8(int type, const uint8_t *row, size_t p)
{
    switch (type) {
    case CDX_W_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(row + 2 * p)));
    case CDX_W_Q8_0: {
        const uint8_t *b = row + (p / 32) * 34;
        __m256i q = _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + 2 + p % 32)));
        return _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(ld_half_scalar(b)));
    }
    case CDX_W_Q4_0:
    case CDX_W_Q4_1: {
        int one = type == CDX_W_Q4_1;
        const uint8_t *b = row + (p / 32) * (one ? 20 : 18);
        size_t e = p % 32;
        __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(b + (one ? 4 : 2) + (e & 15))));
        q = e >= 16 ? _mm256_srli_epi32(q, 4) : _mm256_and_si256(q, _mm256_set1_epi32(15));
        if (!one) q = _mm256_sub_epi32(q, _mm256_set1_epi32(8));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(ld_half_scalar(b)));
        return one ? _mm256_add_ps(v, _mm256_set1_ps(ld_half_scalar(b + 2))) : v;
    }
    case CDX_W_Q5_0:
    case CDX_W_Q5_1: {
        int one = type == CDX_W_Q5_1;
        const uint8_t *b = row + (p / 32) * (one ? 24 : 22), *h = b + (one ? 4 : 2);
        size_t e = p % 32;
        uint32_t qh = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
        __m256i q = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(h + 4 + (e & 15))));
        q = e >= 16 ? _mm256_srli_epi32(q, 4) : _mm256_and_si256(q, _mm256_set1_epi32(15));
        /* fifth bits: bit e+i of qh for lane i */
        __m256i bits = _mm256_and_si256(_mm256_set1_epi32((int)((qh >> e) & 0xffu)),
                                        _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128));
        __m256i hi = _mm256_and_si256(_mm256_cmpeq_epi32(bits, _mm256_setzero_si256()), _mm256_set1_epi32(16));
        q = _mm256_or_si256(q, _mm256_xor_si256(hi, _mm256_set1_epi32(16)));
        if (!one) q = _mm256_sub_epi32(q, _mm256_set1_epi32(16));
        __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(q), _mm256_set1_ps(ld_half_scalar(b)));
        return one ? _mm256_add_ps(v, _mm256_set1_ps(ld_half_scalar(b + 2))) : v;
    }
    default: return _mm256_loadu_ps((const float *)(const void *)row + p);
    }
}

/* P (kc, 16) <- W rows j0 .. j0+15, columns k0 .. k0+kc; rows >= n1 are zero.
 * Full 8-row groups go through 8x8 register transposes; the rest (short row
 * groups, a k tail below 8) through the scalar cdx_dequant_row. `type` is a
 * constant in each inlined copy, so the switch in wload8 folds away. */
TGT static inline __attribute__((always_inline)) void pack_w_t(int type, const uint8_t *W, size_t rb,
                                                               size_t j0, size_t n1, size_t k0,
                                                               size_t kc, float *P)
{
    float tmp[KC];
    for (size_t h = 0; h < NR; h += 8) {
        size_t jb = j0 + h, p = 0;
        if (jb + 8 <= n1) {
            for (; p + 8 <= kc; p += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++) r[i] = wload8(type, W + (jb + (size_t)i) * rb, k0 + p);
                transpose8(r);
                for (int i = 0; i < 8; i++) _mm256_store_ps(P + (p + (size_t)i) * NR + h, r[i]);
            }
        }
        if (p == kc) continue;
        for (size_t jj = h; jj < h + 8; jj++) {
            size_t j = j0 + jj;
            if (j < n1) {
                if (type == CDX_W_F32) {
                    const float *src = (const float *)(const void *)(W + j * rb) + k0;
                    for (size_t q = p; q < kc; q++) P[q * NR + jj] = src[q];
                } else { /* p is 0 here for the Q types (kc is a multiple of 32) */
                    size_t b = p - p % cdx_wtype_block(type);
                    cdx_dequant_row(type, W + j * rb, k0 + b, kc - b, tmp);
                    for (size_t q = p; q < kc; q++) P[q * NR + jj] = tmp[q - b];
                }
            } else {
                for (size_t q = p; q < kc; q++) P[q * NR + jj] = 0.0f;
            }
        }
    }
}

TGT void cdx_linear_pack_avx2(const struct cdx_wmat *W, size_t k, size_t j0, size_t n1, size_t k0, size_t kc,
                              float *P)
{
    if (cdx_wtype_is_packed(W->type) || W->type == CDX_W_BF16) { /* Q8P/Q4P/BF16(P): exact scalar unpack */
        float tmp[KC];
        for (size_t jj = 0; jj < NR; jj++) {
            size_t j = j0 + jj;
            if (j < n1) cdx_wmat_dequant(W, k, j, k0, kc, tmp);
            for (size_t q = 0; q < kc; q++) P[q * NR + jj] = j < n1 ? tmp[q] : 0.0f;
        }
        return;
    }
    const uint8_t *w = W->data;
    size_t rb = cdx_wtype_row_bytes(W->type, k);
    switch (W->type) {
    case CDX_W_F16: pack_w_t(CDX_W_F16, w, rb, j0, n1, k0, kc, P); break;
    case CDX_W_Q8_0: pack_w_t(CDX_W_Q8_0, w, rb, j0, n1, k0, kc, P); break;
    case CDX_W_Q4_0: pack_w_t(CDX_W_Q4_0, w, rb, j0, n1, k0, kc, P); break;
    case CDX_W_Q4_1: pack_w_t(CDX_W_Q4_1, w, rb, j0, n1, k0, kc, P); break;
    case CDX_W_Q5_0: pack_w_t(CDX_W_Q5_0, w, rb, j0, n1, k0, kc, P); break;
    case CDX_W_Q5_1: pack_w_t(CDX_W_Q5_1, w, rb, j0, n1, k0, kc, P); break;
    default: pack_w_t(CDX_W_F32, w, rb, j0, n1, k0, kc, P); break;
    }
}

/* e^x for 8 floats: x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
 * (Cephes expf coefficients), 2^n through the exponent bits; about 1 ulp.
 * Inputs are clamped to [-87.3, 88.7]. */
TGT static inline __m256 exp8(__m256 x)
{
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.7f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 y = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

/* quick_gelu(x) = x * sigmoid(1.702 x) = x / (1 + e^(-1.702 x)) */
TGT static inline __m256 quick_gelu8(__m256 x)
{
    __m256 e = exp8(_mm256_mul_ps(x, _mm256_set1_ps(-1.702f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* The same arithmetic for one value (lane 0 of the vector version). */
TGT static inline float quick_gelu1(float x) { return _mm256_cvtss_f32(quick_gelu8(_mm256_set1_ps(x))); }

/* Epilogue: C rows [m0, m1) x cols [n0, n1) (+)= act(acc + bias), acc row i
 * at acc + (i - m0) * ldacc. The quick_gelu path is vectorized; a column's
 * arithmetic depends only on its index within the 64-column tile, never on
 * the row, so batches stay exact. */
TGT void cdx_linear_epilogue_avx2(const float *acc, size_t ldacc, const float *bias, float *C, size_t ldc,
                                  size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags)
{
    size_t nt = n1 - n0;
    for (size_t i = m0; i < m1; i++) {
        const float *a = acc + (i - m0) * ldacc;
        float *c = C + i * ldc + n0;
        size_t j = 0;
        if (act == CDX_ACT_QUICK_GELU || act == CDX_ACT_NONE) {
            for (; j + 8 <= nt; j += 8) {
                __m256 s = _mm256_loadu_ps(a + j);
                if (bias) s = _mm256_add_ps(s, _mm256_loadu_ps(bias + n0 + j));
                if (act == CDX_ACT_QUICK_GELU) s = quick_gelu8(s);
                if (flags & CDX_LIN_ACCUM) s = _mm256_add_ps(_mm256_loadu_ps(c + j), s);
                _mm256_storeu_ps(c + j, s);
            }
        }
        for (; j < nt; j++) {
            float s = a[j];
            if (bias) s += bias[n0 + j];
            s = act == CDX_ACT_QUICK_GELU ? quick_gelu1(s) : cdx_act_apply(act, s);
            c[j] = (flags & CDX_LIN_ACCUM) ? c[j] + s : s;
        }
    }
}

TGT void cdx_linear_tile_avx2(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                              float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1,
                              size_t k, int act, unsigned flags)
{
    size_t nt = n1 - n0, panels = (nt + NR - 1) / NR, ldacc = CDX_LINEAR_TILE_N;
    float *P = pack_buf, *acc = acc_buf;
    if ((W->type == CDX_W_F32P || W->type == CDX_W_F16P) && m1 - m0 <= SMALL_M && k > 0) {
        /* few rows (short texts, pooled rows): panel by panel, each streamed
         * once from memory in k chunks of SKC; the rows go in ng balanced
         * groups of at most 6 (7 rows: 4 + 3), none padded, every group over
         * the chunk while it is in L1 */
        size_t rows = m1 - m0, ng = (rows + MR - 1) / MR, ks = ng == 1 ? k : SKC;
        const stream_fn *fn = W->type == CDX_W_F32P ? stream_f : stream_h;
        size_t esz = W->type == CDX_W_F32P ? sizeof(float) : sizeof(uint16_t);
        size_t pfd = ng == 1 ? (size_t)PFD1 * 4 / esz * NR : (size_t)PFDN * ks * NR;
        for (size_t q = 0; q < panels; q++) {
            const uint8_t *Pq = (const uint8_t *)W->data + (n0 / NR + q) * k * NR * esz;
            for (size_t k0 = 0; k0 < k; k0 += ks) {
                size_t kc = k - k0 < ks ? k - k0 : ks;
                for (size_t gi = 0, i = m0; gi < ng; gi++) {
                    size_t R = rows / ng + (gi < rows % ng);
                    const float *r[MR];
                    for (size_t j = 0; j < MR; j++) r[j] = A + (i + (j < R ? j : 0)) * lda + k0;
                    fn[R](r, Pq + k0 * NR * esz, kc, acc + (i - m0) * ldacc + q * NR, ldacc, k0 == 0, pfd);
                    i += R;
                }
            }
        }
        cdx_linear_epilogue_avx2(acc, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
        return;
    }
    if (k == 0) {
        for (size_t i = m0; i < m1; i++)
            for (size_t j = 0; j < nt; j++) acc[(i - m0) * ldacc + j] = 0.0f;
    }
    for (size_t k0 = 0; k0 < k; k0 += KC) {
        size_t kc = k - k0 < KC ? k - k0 : KC, pstride = KC * NR;
        if (W->type == CDX_W_F32P) { /* the file's panels as they are */
            P = (float *)(uintptr_t)W->data + (n0 / NR * k + k0) * NR;
            pstride = k * NR;
        } else if (W->type == CDX_W_F16P) { /* halves to floats, no transposes */
            P = pack_buf;
            for (size_t q = 0; q < panels; q++) {
                const uint16_t *src = (const uint16_t *)W->data + ((n0 / NR + q) * k + k0) * NR;
                for (size_t e = 0; e < kc * NR; e += 8)
                    _mm256_store_ps(P + q * KC * NR + e,
                                    _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + e))));
            }
        } else {
            for (size_t q = 0; q < panels; q++) cdx_linear_pack_avx2(W, k, n0 + q * NR, n1, k0, kc, P + q * KC * NR);
        }
        /* row groups of 6 and 5 (50 rows = 5 x 6 + 4 x 5) so that no rows are
         * padded; only fewer than 5 leftover rows use a zero-padded group */
        size_t rows = m1 - m0, g = (rows + MR - 1) / MR, n6 = rows >= 5 * g ? rows - 5 * g : g;
        for (size_t i = m0, gi = 0; i < m1; gi++) {
            const float *a = A + i * lda + k0;
            size_t la = lda, mr = gi < n6 ? 6 : 5;
            if (m1 - i < mr) { /* short group: zero-padded copy of its rows */
                size_t have = m1 - i;
                mr = MR;
                for (size_t r = 0; r < MR; r++)
                    for (size_t p = 0; p < kc; p++) apad_buf[r * KC + p] = r < have ? a[r * lda + p] : 0.0f;
                a = apad_buf;
                la = KC;
            }
            for (size_t q = 0; q < panels; q++)
                (mr == 6 ? micro6 : micro5)(a, la, P + q * pstride, kc, acc + (i - m0) * ldacc + q * NR, ldacc,
                                            k0 == 0);
            i += mr;
        }
    }
    cdx_linear_epilogue_avx2(acc, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
}

/* y (n,) += a * x (n,) */
TGT void cdx_axpy_avx2(float a, const float *x, float *y, size_t n)
{
    __m256 va = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] = __builtin_fmaf(a, x[i], y[i]);
}

TGT static inline float hsum8(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

/* a (n,) . b (n,): 8-lane FMA, fixed-order horizontal sum, scalar FMA tail. */
TGT float cdx_dot_avx2(const float *a, const float *b, size_t n)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
    float s = hsum8(acc);
    for (; i < n; i++) s = __builtin_fmaf(a[i], b[i], s);
    return s;
}

/* y (n) = LayerNorm(x (n)) * w + b: mean and variance summed in double, four
 * lanes at a time (then the lanes in a fixed order), the normalization in
 * float. Deterministic: the same arithmetic for a row whatever the batch. */
TGT void cdx_layernorm_row_avx2(const float *x, float *y, size_t n, const float *w, const float *b, float eps)
{
    size_t n4 = n - n % 4, i;
    __m256d s = _mm256_setzero_pd();
    for (i = 0; i < n4; i += 4) s = _mm256_add_pd(s, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    double sd[4];
    _mm256_storeu_pd(sd, s);
    double sum = (sd[0] + sd[1]) + (sd[2] + sd[3]);
    for (; i < n; i++) sum += x[i];
    double mean = sum / (double)n;
    __m256d mv = _mm256_set1_pd(mean), v = _mm256_setzero_pd();
    for (i = 0; i < n4; i += 4) {
        __m256d dlt = _mm256_sub_pd(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), mv);
        v = _mm256_fmadd_pd(dlt, dlt, v);
    }
    _mm256_storeu_pd(sd, v);
    double var = (sd[0] + sd[1]) + (sd[2] + sd[3]);
    for (; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    float inv = (float)(1.0 / sqrt(var / (double)n + (double)eps)), fm = (float)mean;
    __m256 vm = _mm256_set1_ps(fm), vi = _mm256_set1_ps(inv);
    size_t n8 = n - n % 8;
    for (i = 0; i < n8; i += 8) {
        __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vi);
        _mm256_storeu_ps(y + i, _mm256_add_ps(_mm256_mul_ps(t, _mm256_loadu_ps(w + i)), _mm256_loadu_ps(b + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - fm) * inv * w[i] + b[i];
}

/* One attention row: p[c] = (q . K_c) * scale for c < lim, softmax over
 * them, o (d) = sum_c (p_c / sum) V_c. K_c = K + c * ld, V_c = V + c * ld.
 * Bitwise what cdx_dot_avx2 per key and cdx_axpy_avx2 per key (from o = 0)
 * give: the same FMAs in the same order, four keys' dot products
 * interleaved, and a 64-wide slice of o kept in registers across the keys. */
TGT void cdx_attn_row_avx2(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d,
                           float scale, float *p, float *o)
{
    size_t c = 0, d8 = d - d % 8;
    for (; c + 4 <= lim; c += 4) {
        const float *k0 = K + c * ld, *k1 = k0 + ld, *k2 = k1 + ld, *k3 = k2 + ld;
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < d8; i += 8) {
            __m256 qv = _mm256_loadu_ps(q + i);
            s0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + i), s0);
            s1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k1 + i), s1);
            s2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k2 + i), s2);
            s3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k3 + i), s3);
        }
        float t0 = hsum8(s0), t1 = hsum8(s1), t2 = hsum8(s2), t3 = hsum8(s3);
        for (size_t i = d8; i < d; i++) {
            t0 = __builtin_fmaf(q[i], k0[i], t0), t1 = __builtin_fmaf(q[i], k1[i], t1);
            t2 = __builtin_fmaf(q[i], k2[i], t2), t3 = __builtin_fmaf(q[i], k3[i], t3);
        }
        p[c] = t0 * scale, p[c + 1] = t1 * scale, p[c + 2] = t2 * scale, p[c + 3] = t3 * scale;
    }
    for (; c < lim; c++) p[c] = cdx_dot_avx2(q, K + c * ld, d) * scale;
    float mx = -INFINITY;
    for (c = 0; c < lim; c++)
        if (p[c] > mx) mx = p[c];
    float sum = 0.0f;
    for (c = 0; c < lim; c++) {
        p[c] = expf(p[c] - mx);
        sum += p[c];
    }
    float inv = 1.0f / sum;
    size_t e0 = 0;
    for (; e0 + 64 <= d8; e0 += 64) { /* 64 outputs in eight registers */
        __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0, o4 = o0, o5 = o0, o6 = o0, o7 = o0;
        for (c = 0; c < lim; c++) {
            const float *v = V + c * ld + e0;
            __m256 w = _mm256_set1_ps(p[c] * inv);
            o0 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v), o0), o1 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 8), o1);
            o2 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 16), o2), o3 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 24), o3);
            o4 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 32), o4), o5 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 40), o5);
            o6 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 48), o6), o7 = _mm256_fmadd_ps(w, _mm256_loadu_ps(v + 56), o7);
        }
        _mm256_storeu_ps(o + e0, o0), _mm256_storeu_ps(o + e0 + 8, o1), _mm256_storeu_ps(o + e0 + 16, o2);
        _mm256_storeu_ps(o + e0 + 24, o3), _mm256_storeu_ps(o + e0 + 32, o4), _mm256_storeu_ps(o + e0 + 40, o5);
        _mm256_storeu_ps(o + e0 + 48, o6), _mm256_storeu_ps(o + e0 + 56, o7);
    }
    if (e0 < d) { /* the rest (d not a multiple of 64): the axpy loop itself */
        memset(o + e0, 0, (d - e0) * sizeof *o);
        for (c = 0; c < lim; c++) cdx_axpy_avx2(p[c] * inv, V + c * ld + e0, o + e0, d - e0);
    }
}

#endif /* x86 */
