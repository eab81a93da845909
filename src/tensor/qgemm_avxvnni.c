/*
 * qgemm_avxvnni.c - the int8 tile with AVX-VNNI (the VEX-encoded 256-bit
 * vpdpbusd of Alder Lake and later, and of Zen 4/5): two ymm per packed
 * panel (rows 0-7, rows 8-15), one vpdpbusd per activation row and half.
 * The body is qgemm_vnni.inc (shared with the 512-bit file); this file
 * supplies the 256-bit vector macros. Dispatch (dispatch.c) uses it for the
 * avx-vnni path; it then quantizes Q8P activations to 8 bits.
 */
#include <string.h>

#include "tensor/qgemm.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TGT __attribute__((target("avxvnni,avx2,fma,f16c")))
#define EPILOGUE cdx_linear_epilogue_avx2
#define PFX avxvnni
#define VW 8
#define QV_R 6
#define QV_P 1
#define VI __m256i
#define VF __m256
#define VI_SET1(x) _mm256_set1_epi32(x)
#define VF_ZERO _mm256_setzero_ps()
#define VF_LOAD(p) _mm256_load_ps(p)
#define VF_STORE(p, v) _mm256_store_ps(p, v)
#define VF_LOADU(p) _mm256_loadu_ps(p)
#define VF_SET1(x) _mm256_set1_ps(x)
#define VF_MUL(a, b) _mm256_mul_ps(a, b)
#define VF_FMA(a, b, c) _mm256_fmadd_ps(a, b, c)
#define VI_TO_VF(v) _mm256_cvtepi32_ps(v)
#define DPBUSD(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
#define LOAD_Q8(p) \
    _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(p)), _mm256_set1_epi8((char)0x80))
#define LOAD_Q4(p, h) q4_half((const uint8_t *)(p), h)
#define BCAST4(p) bcast4((const int8_t *)(p))

TGT static inline __attribute__((always_inline)) __m256i q4_half(const uint8_t *p, int h)
{
    __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)p);
    return _mm256_and_si256(h ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(15));
}

TGT static inline __attribute__((always_inline)) __m256i bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return _mm256_set1_epi32(v);
}

#define VI_LOAD(p) _mm256_load_si256((const __m256i *)(const void *)(p))
#define VI_STORE(p, v) _mm256_store_si256((__m256i *)(void *)(p), v)
#define VI_LOADU(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define QI_P 1
#include "tensor/qgemm_vnni.inc"
#include "tensor/i8gemm.inc"

#endif /* x86 */
