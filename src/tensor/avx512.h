/*
 * avx512.h - what the AVX-512 kernel files share: the target attribute every
 * AVX-512 function carries (the binary still runs on AVX2-only CPUs: only
 * dispatch.c decides who calls these), tail masks and e^x for 16 floats.
 * Include only from the AVX-512 files of src/tensor, and only on x86.
 */
#ifndef CDX_AVX512_H
#define CDX_AVX512_H

#include <immintrin.h>
#include <stddef.h>

#define TGT512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma,f16c")))

/* The mask of the first min(n, 16) lanes. */
static inline __mmask16 cdx_mask16(size_t n) { return n >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << n) - 1); }

/* e^x for 16 floats, lane by lane exactly linear_avx2.c's exp8 (so the two
 * paths agree bitwise): x = n ln2 + r, |r| <= ln2/2, degree-6 polynomial
 * (Cephes expf coefficients), 2^n through the exponent bits; about 1 ulp.
 * Inputs are clamped to [-87.3, 88.7]. */
TGT512 static inline __m512 cdx_exp16(__m512 x)
{
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.7f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    __m512 y = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(y, _mm512_castsi512_ps(e));
}

/* The sum of the 16 lanes in a fixed order (halves, then quarters ...). */
TGT512 static inline float cdx_hsum16(__m512 v)
{
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
}

#endif
