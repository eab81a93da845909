/*
 * qgemm_avx512.c - the int8 tile with AVX512_VNNI: one zmm holds a packed
 * panel's 16 outputs, so a 4-k group of 16 rows is one 64-byte load and one
 * vpdpbusd per activation row. The body is qgemm_vnni.inc (shared with the
 * 256-bit AVX-VNNI file); this file supplies the 512-bit vector macros.
 * Dispatch (dispatch.c) uses it only when the CPU has AVX-512 and
 * AVX512_VNNI; it then quantizes Q8P activations to 8 bits (|q| <= 127).
 *
 * Q4P: a 32-byte group holds rows 0-7 in the low nibbles and rows 8-15 in
 * the high ones; the two halves are joined into one zmm in Q8P's byte order.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "tensor/qgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#define EPILOGUE cdx_linear_epilogue_avx512
#define PFX avx512
#define VW 16
#define QV_R 6
#define QV_P 2
#define VI __m512i
#define VF __m512
#define VI_SET1(x) _mm512_set1_epi32(x)
#define VF_ZERO _mm512_setzero_ps()
#define VF_LOAD(p) _mm512_load_ps(p)
#define VF_STORE(p, v) _mm512_store_ps(p, v)
#define VF_LOADU(p) _mm512_loadu_ps(p)
#define VF_SET1(x) _mm512_set1_ps(x)
#define VF_MUL(a, b) _mm512_mul_ps(a, b)
#define VF_FMA(a, b, c) _mm512_fmadd_ps(a, b, c)
#define VI_TO_VF(v) _mm512_cvtepi32_ps(v)
#define DPBUSD(acc, u, s) _mm512_dpbusd_epi32(acc, u, s)
#define LOAD_Q8(p) _mm512_xor_si512(_mm512_loadu_si512((const void *)(p)), _mm512_set1_epi8((char)0x80))
#define LOAD_Q4(p, h) q4_join((const uint8_t *)(p))
#define BCAST4(p) bcast4((const int8_t *)(p))

TGT static inline __attribute__((always_inline)) __m512i q4_join(const uint8_t *p)
{
    const __m256i m4 = _mm256_set1_epi8(15);
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    __m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
    return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

TGT static inline __attribute__((always_inline)) __m512i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm512_set1_epi32(v);
}

#define VI_LOAD(p) _mm512_load_si512((const void *)(p))
#define VI_STORE(p, v) _mm512_store_si512((void *)(p), v)
#define VI_LOADU(p) _mm512_loadu_si512((const void *)(p))
#define QI_P 4
#include "tensor/qgemm_vnni.inc"
#include "tensor/i8gemm.inc"

/* Activation quantization (cdx_act_q8_ref's contract and float operations:
 * max |x| is exact in any order, then one division for d, one for 1/d, one
 * multiply and a round-half-even conversion per value), a block of 32 in two
 * zmm; bitwise the reference. */
TGT void cdx_act_q8_avx512(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const float fmax_q = (float)qmax;
    for (size_t b = 0; b < k / CDX_QK; b++, x += CDX_QK, q += CDX_QK) {
        __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
        __m512 a0 = _mm512_abs_ps(v0), a1 = _mm512_abs_ps(v1);
        const __m512 inf = _mm512_set1_ps(INFINITY);
        if (_mm512_cmp_ps_mask(a0, inf, _CMP_LT_OQ) != 0xFFFF || _mm512_cmp_ps_mask(a1, inf, _CMP_LT_OQ) != 0xFFFF) {
            memset(q, 0, CDX_QK); /* NaN or inf: as the reference */
            d[b] = NAN;
            s[b] = 0;
            continue;
        }
        float amax = _mm512_reduce_max_ps(_mm512_max_ps(a0, a1));
        float db = amax / fmax_q, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
        __m512 vid = _mm512_set1_ps(id);
        __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, vid)), i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, vid));
        _mm_storeu_si128((__m128i *)(void *)q, _mm512_cvtsepi32_epi8(i0));
        _mm_storeu_si128((__m128i *)(void *)(q + 16), _mm512_cvtsepi32_epi8(i1));
        d[b] = id != 0.0f ? db : 0.0f;
        s[b] = _mm512_reduce_add_epi32(_mm512_add_epi32(i0, i1));
    }
}

/* cdx_act_i8_ref's contract, bitwise (the max is exact in any order; the
 * same division, reciprocal, multiply and round-half-even conversion per
 * value; integer sums are exact). k % 16 == 0. */
TGT void cdx_act_i8_avx512(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const __m512 inf = _mm512_set1_ps(INFINITY);
    __m512 mx = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (size_t p = 0; p < k; p += 16) {
        __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + p));
        bad |= (__mmask16)~_mm512_cmp_ps_mask(a, inf, _CMP_LT_OQ);
        mx = _mm512_max_ps(mx, a);
    }
    if (bad) {
        memset(q, 0, k);
        *d = NAN;
        *s = 0;
        return;
    }
    float amax = _mm512_reduce_max_ps(mx), db = amax / (float)qmax, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
    __m512 vid = _mm512_set1_ps(id);
    __m512i sum = _mm512_setzero_si512();
    for (size_t p = 0; p < k; p += 16) {
        __m512i v = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + p), vid));
        _mm_storeu_si128((__m128i *)(void *)(q + p), _mm512_cvtsepi32_epi8(v));
        sum = _mm512_add_epi32(sum, v);
    }
    *d = id != 0.0f ? db : 0.0f;
    *s = _mm512_reduce_add_epi32(sum);
}

#endif /* x86 */
