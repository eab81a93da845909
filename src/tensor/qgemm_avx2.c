/*
 * qgemm_avx2.c - AVX2 integer GEMM kernels (the only qgemm file with
 * intrinsics; per-function target attributes, no VNNI / AVX-512).
 *
 * Activation quantization: 4 ymm per block of 32; the same float ops as
 * cdx_act_q8_ref (max of |x| is exact in any order; one division for d, one
 * for 1/d, one multiply, round-half-even conversion), so bitwise equal.
 *
 * Product: a micro-kernel owns R rows x 16 columns (one packed panel) over a
 * run of 32-k blocks. Per block it sums int8 products exactly in int32 (Q8P)
 * or int16 (Q4P) registers, then does, per output, exactly one
 *   acc = fma((float)isum, da[i][b] * dw[j][b], acc)
 * in block order, which is the reference's chain, so results do not depend
 * on the tiling, the row group a row falls in or the batch size.
 *   Q8P: vpmaddubsw(w + 128, a) (w + 128 <= 255 unsigned, |a| <= 63:
 *        pair sums <= 32130 never saturate), vpmaddwd with ones -> int32,
 *        vpaddd; isum = sum - 128 * s.
 *   Q4P: vpmaddubsw(nibble, a) (pair sums <= 2*15*127 = 3810, 8 groups
 *        <= 30480 fit int16), one vpmaddwd per block, isum = sum - 8 * s.
 * The 4 activation bytes of a row at one group are broadcast (vpbroadcastd)
 * against a weight ymm holding 8 rows x 4 k. Float partial sums live in a
 * per-thread tile (exact: floats stored between k chunks), the epilogue is
 * cdx_linear_epilogue_avx2.
 *
 * Measured on Zen 3 (bench/qgemm_bench.c): 4 x 16 is the best shape; 3, 5
 * and 6 rows x 16 are within the noise (+-5%), 2 x 16 is slower, and the k
 * chunk (4 .. all blocks) hardly matters. The Q8P inner step (per row and
 * 4 k: broadcast, 2 vpmaddubsw, 2 vpmaddwd, 2 vpaddd) is bound by the two
 * vector-multiply pipes: ~2 cycles per 64 MACs. With 8-bit activations it
 * needed vpmaddubsw(|w|, sign(a, w)), 2 more vpsignb per step: 1.29x slower
 * (121 vs 157 GFLOP/s on 800 x 2304 x 768), for one bit of activation
 * precision that moved the b32 golden cosines by ~1e-4 (docs/accuracy.md).
 * int16 vpmaddwd on widened operands, a precomputed |w| and memory operands
 * were no faster. Q4P needs no per-group vpmaddwd, hence ~1.2x Q8P.
 */
#include <math.h>
#include <string.h>

#include "tensor/qgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <float.h>
#include <immintrin.h>
#include <string.h>

#define TGT __attribute__((target("avx2,fma,f16c")))
#define INL inline __attribute__((always_inline))
#define NR CDX_QP_NR
#ifndef QG_R8
#define QG_R8 4 /* rows per Q8P micro-kernel */
#endif
#ifndef QG_R4
#define QG_R4 4 /* rows per Q4P micro-kernel */
#endif
#ifndef QG_KB
#define QG_KB 8 /* 32-k blocks per k chunk (weights of a chunk stay in L1) */
#endif
#define RMAX 8
/* Loops over rows and groups are unrolled fully, so the per-row arrays of
 * accumulators become named registers. */
#ifdef __clang__
#define UNROLL _Pragma("clang loop unroll(full)")
#else
#define UNROLL _Pragma("GCC unroll 16")
#endif
/* Keeps an accumulator in a register in program order: without it GCC
 * re-associates the integer sums of a block into a tree and spills
 * (Q8P 1.2x, Q4P 1.5x slower). */
#define PIN(v) __asm__("" : "+x"(v))

_Static_assert(CDX_LINEAR_TILE_N % NR == 0, "tile width must be a multiple of the panel width");
_Static_assert(QG_R8 <= RMAX && QG_R4 <= RMAX, "micro-kernel too tall");

/* Per-thread float partial sums of one tile (rows x 64 columns). */
static _Thread_local float acc_buf[CDX_LINEAR_TILE_M * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));

TGT static INL __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

TGT void cdx_act_q8_avx2(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const float fmax_q = (float)qmax;
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (size_t b = 0; b < k / CDX_QK; b++, x += CDX_QK, q += CDX_QK) {
        __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
        __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
        const __m256 inf = _mm256_set1_ps(INFINITY);
        __m256 fin = _mm256_and_ps(_mm256_and_ps(_mm256_cmp_ps(_mm256_and_ps(v0, absmask), inf, _CMP_LT_OQ),
                                                 _mm256_cmp_ps(_mm256_and_ps(v1, absmask), inf, _CMP_LT_OQ)),
                                   _mm256_and_ps(_mm256_cmp_ps(_mm256_and_ps(v2, absmask), inf, _CMP_LT_OQ),
                                                 _mm256_cmp_ps(_mm256_and_ps(v3, absmask), inf, _CMP_LT_OQ)));
        if (_mm256_movemask_ps(fin) != 0xFF) { /* NaN or inf: as cdx_act_q8_ref */
            memset(q, 0, CDX_QK);
            d[b] = NAN;
            s[b] = 0;
            continue;
        }
        __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v0, absmask), _mm256_and_ps(v1, absmask)),
                                 _mm256_max_ps(_mm256_and_ps(v2, absmask), _mm256_and_ps(v3, absmask)));
        __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
        h = _mm_max_ps(h, _mm_movehl_ps(h, h));
        h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
        float amax = _mm_cvtss_f32(h);
        float db = amax / fmax_q, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
        __m256 vid = _mm256_set1_ps(id);
        __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, vid)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, vid));
        __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, vid)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, vid));
        /* packs work per 128-bit lane: the dwords come out as 0 2 4 6 1 3 5 7 / 8 */
        __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
        _mm256_storeu_si256((__m256i *)(void *)q, _mm256_permutevar8x32_epi32(p, perm));
        __m256i t = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
        __m128i u = _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4e));
        u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xb1));
        d[b] = id != 0.0f ? db : 0.0f;
        s[b] = _mm_cvtsi128_si32(u);
    }
}

/* f (R, 16; stride ldf) (+)= the Q8P (q8) or Q4P product of R activation
 * rows (a: row 0 at the chunk's first k, stride lda; da, sa: row 0's first
 * scale and block sum, stride ldd) with kb blocks of one panel starting at
 * blk. first: start from zero. R and q8 are constants in every instance.
 *   Q8P: per group vpmaddubsw(w + 128, a), vpmaddwd -> int32 sums; isum = sum - 128 s.
 *   Q4P: per group vpmaddubsw(nibble, a) summed in int16, one vpmaddwd per
 *        block; isum = sum - 8 s. */
TGT static INL void qp_micro(const int R, const int q8, const int8_t *a, size_t lda, const float *da,
                             const int32_t *sa, size_t ldd, const uint8_t *blk, size_t kb, float *f, size_t ldf,
                             int first)
{
    __m256 fa[2 * RMAX];
    UNROLL
    for (int r = 0; r < R; r++) {
        fa[2 * r] = first ? _mm256_setzero_ps() : _mm256_load_ps(f + r * ldf);
        fa[2 * r + 1] = first ? _mm256_setzero_ps() : _mm256_load_ps(f + r * ldf + 8);
    }
    const __m256i ones = _mm256_set1_epi16(1), x80 = _mm256_set1_epi8((char)0x80), m4 = _mm256_set1_epi8(15);
    const size_t bs = q8 ? CDX_QP_Q8_BLOCK : CDX_QP_Q4_BLOCK;
    const int32_t off = q8 ? 128 : 8;
    for (size_t b = 0; b < kb; b++, blk += bs, a += CDX_QK) {
        __m256i c[2 * RMAX];
        UNROLL
        for (int r = 0; r < 2 * R; r++) c[r] = _mm256_setzero_si256();
        UNROLL
        for (int g = 0; g < 8; g++) {
            __m256i u0, u1;
            if (q8) { /* w + 128: the unsigned operand */
                u0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 + 64 * g)), x80);
                u1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(blk + 96 + 64 * g)), x80);
            } else { /* low nibbles: rows 0-7, high: rows 8-15 */
                __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 + 32 * g));
                u0 = _mm256_and_si256(v, m4), u1 = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
            UNROLL
            for (int r = 0; r < R; r++) {
                __m256i x = bcast4(a + r * lda + 4 * g);
                __m256i p0 = _mm256_maddubs_epi16(u0, x), p1 = _mm256_maddubs_epi16(u1, x);
                if (q8) {
                    c[2 * r] = _mm256_add_epi32(c[2 * r], _mm256_madd_epi16(p0, ones));
                    c[2 * r + 1] = _mm256_add_epi32(c[2 * r + 1], _mm256_madd_epi16(p1, ones));
                } else {
                    c[2 * r] = _mm256_add_epi16(c[2 * r], p0);
                    c[2 * r + 1] = _mm256_add_epi16(c[2 * r + 1], p1);
                }
                PIN(c[2 * r]);
                PIN(c[2 * r + 1]);
            }
        }
        __m256 d0 = _mm256_loadu_ps((const float *)(const void *)blk);
        __m256 d1 = _mm256_loadu_ps((const float *)(const void *)blk + 8);
        UNROLL
        for (int r = 0; r < R; r++) {
            __m256i s0 = q8 ? c[2 * r] : _mm256_madd_epi16(c[2 * r], ones);
            __m256i s1 = q8 ? c[2 * r + 1] : _mm256_madd_epi16(c[2 * r + 1], ones);
            __m256i so = _mm256_set1_epi32(off * sa[r * ldd + b]);
            __m256i i0 = _mm256_sub_epi32(s0, so), i1 = _mm256_sub_epi32(s1, so);
            __m256 sc = _mm256_set1_ps(da[r * ldd + b]);
            fa[2 * r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i0), _mm256_mul_ps(sc, d0), fa[2 * r]);
            fa[2 * r + 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i1), _mm256_mul_ps(sc, d1), fa[2 * r + 1]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        _mm256_store_ps(f + r * ldf, fa[2 * r]);
        _mm256_store_ps(f + r * ldf + 8, fa[2 * r + 1]);
    }
}

/* One instance per row count, so R is a constant and the arrays above
 * become registers. */
#define DEF_MICRO(R)                                                                                     \
    TGT static void q8_micro_##R(const int8_t *a, size_t lda, const float *da, const int32_t *sa,       \
                                 size_t ldd, const uint8_t *blk, size_t kb, float *f, size_t ldf,       \
                                 int first)                                                             \
    {                                                                                                   \
        qp_micro(R, 1, a, lda, da, sa, ldd, blk, kb, f, ldf, first);                                       \
    }                                                                                                   \
    TGT static void q4_micro_##R(const int8_t *a, size_t lda, const float *da, const int32_t *sa,       \
                                 size_t ldd, const uint8_t *blk, size_t kb, float *f, size_t ldf,       \
                                 int first)                                                             \
    {                                                                                                   \
        qp_micro(R, 0, a, lda, da, sa, ldd, blk, kb, f, ldf, first);                                       \
    }
DEF_MICRO(1)
DEF_MICRO(2)
DEF_MICRO(3)
DEF_MICRO(4)
DEF_MICRO(5)
DEF_MICRO(6)

typedef void (*q4_fn)(const int8_t *, size_t, const float *, const int32_t *, size_t, const uint8_t *, size_t,
                      float *, size_t, int);
static q4_fn const q8_micros[7] = {0, q8_micro_1, q8_micro_2, q8_micro_3, q8_micro_4, q8_micro_5, q8_micro_6};
static q4_fn const q4_micros[7] = {0, q4_micro_1, q4_micro_2, q4_micro_3, q4_micro_4, q4_micro_5, q4_micro_6};

/* Tile: for each k chunk of QG_KB blocks, every row group (R rows; the last
 * one shorter, through the kernel instance for its row count) runs over the
 * tile's panels; the chunk's weights (<= 4 panels x QG_KB blocks) stay in
 * L1 across row groups. acc_buf holds the float chains between chunks. */
TGT void cdx_qgemm_tile_avx2(int wtype, const int8_t *qa, const float *da, const int32_t *sa, const void *Wp,
                             size_t k, const float *bias, float *C, size_t ldc, size_t m0, size_t m1, size_t n0,
                             size_t n1, int act, unsigned flags)
{
    const size_t ldacc = CDX_LINEAR_TILE_N, nb = k / CDX_QK, np = (n1 - n0 + NR - 1) / NR;
    const int q8 = wtype == CDX_QP_Q8;
    const size_t bs = q8 ? CDX_QP_Q8_BLOCK : CDX_QP_Q4_BLOCK, R = q8 ? QG_R8 : QG_R4;
    const uint8_t *W0 = (const uint8_t *)Wp + (n0 / NR) * nb * bs;
    float *acc = acc_buf;
    if (nb == 0)
        for (size_t i = 0; i < m1 - m0; i++)
            for (size_t j = 0; j < n1 - n0; j++) acc[i * ldacc + j] = 0.0f;
    for (size_t b0 = 0; b0 < nb; b0 += QG_KB) {
        size_t kb = nb - b0 < QG_KB ? nb - b0 : QG_KB;
        for (size_t i = m0; i < m1; i += R) {
            size_t r = m1 - i < R ? m1 - i : R;
            const int8_t *a = qa + i * k + b0 * CDX_QK;
            const float *d = da + i * nb + b0;
            for (size_t p = 0; p < np; p++) {
                const uint8_t *blk = W0 + (p * nb + b0) * bs;
                float *f = acc + (i - m0) * ldacc + p * NR;
                if (q8)
                    q8_micros[r](a, k, d, sa + i * nb + b0, nb, blk, kb, f, ldacc, b0 == 0);
                else
                    q4_micros[r](a, k, d, sa + i * nb + b0, nb, blk, kb, f, ldacc, b0 == 0);
            }
        }
    }
    cdx_linear_epilogue_avx2(acc, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
}

/* Activation rows for I8P (cdx_act_i8_ref's contract, bitwise): the max of
 * |x| over the row (exact in any order), then the reference's division,
 * reciprocal, multiply and round-half-even conversion. k % 8 == 0. */
TGT void cdx_act_i8_avx2(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)), inf = _mm256_set1_ps(INFINITY);
    __m256 mx = _mm256_setzero_ps(), fin = _mm256_castsi256_ps(_mm256_set1_epi32(-1));
    for (size_t p = 0; p < k; p += 8) {
        __m256 a = _mm256_and_ps(_mm256_loadu_ps(x + p), absmask);
        fin = _mm256_and_ps(fin, _mm256_cmp_ps(a, inf, _CMP_LT_OQ));
        mx = _mm256_max_ps(mx, a);
    }
    if (_mm256_movemask_ps(fin) != 0xFF) {
        memset(q, 0, k);
        *d = NAN;
        *s = 0;
        return;
    }
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_shuffle_ps(h, h, 1));
    float db = _mm_cvtss_f32(h) / (float)qmax, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
    __m256 vid = _mm256_set1_ps(id);
    __m256i sum = _mm256_setzero_si256();
    for (size_t p = 0; p < k; p += 8) {
        __m256i v = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + p), vid));
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        _mm_storel_epi64((__m128i *)(void *)(q + p), _mm_packs_epi16(w, w));
        sum = _mm256_add_epi32(sum, v);
    }
    __m128i u = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0x4e));
    u = _mm_add_epi32(u, _mm_shuffle_epi32(u, 0xb1));
    *d = id != 0.0f ? db : 0.0f;
    *s = _mm_cvtsi128_si32(u);
}

/* The I8P tile (i8gemm.inc) with AVX2: 4 rows x one panel (8 int32
 * accumulators), 8-bit activations. The weights are loaded signed
 * (w + 128 ^ 0x80, so the sums start at 0) and a group step per row is
 * vpmaddubsw(|w|, sign(a, w)) (|w|, |a| <= 127: pairs <= 32258, no
 * saturation), vpmaddwd with ones, vpaddd: exact. With 7-bit activations
 * and the biased weights (one vpsignb less per step) the b32 golden
 * cosine fell to 0.99881, below the 0.999 bound. */
TGT static INL __m256i dpbusd_avx2(__m256i acc, __m256i w, __m256i a)
{
    __m256i p = _mm256_maddubs_epi16(_mm256_abs_epi8(w), _mm256_sign_epi8(a, w));
    return _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(1)));
}
#define I8_WLOAD(p) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(p)), _mm256_set1_epi8((char)0x80))
#define I8_OFF 0
#define EPILOGUE cdx_linear_epilogue_avx2
#define PFX avx2
#define VW 8
#define QV_R 4
#define VI_LOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define QI_P 1
#define VI __m256i
#define VF __m256
#define VI_SET1(x) _mm256_set1_epi32(x)
#define VI_LOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define VI_STORE(p, v) _mm256_store_si256((__m256i *)(void *)(p), v)
#define VF_SET1(x) _mm256_set1_ps(x)
#define VF_LOADU(p) _mm256_loadu_ps(p)
#define VF_STORE(p, v) _mm256_store_ps(p, v)
#define VF_MUL(a, b) _mm256_mul_ps(a, b)
#define VI_TO_VF(v) _mm256_cvtepi32_ps(v)
#define DPBUSD(acc, u, s) dpbusd_avx2(acc, u, s)
#define BCAST4(p) bcast4((const int8_t *)(p))
#include "tensor/i8gemm.inc"

#endif /* x86 */
