/*
 * vecdot_neondot.c - the int8 and 4-bit kernels of the vector search
 * (contracts in vecdot.h) with the ARMv8.2 dot-product extension (sdot:
 * Cortex-A55, A76 and later; not the A53): vdotq_s32 sums four int8
 * products per int32 lane, exactly. The 4-bit codes are read as in
 * vecdot_neon.c (nibbles 0..15 are valid int8). dispatch.c offers them only
 * when HWCAP_ASIMDDP is set. Compiles to nothing off aarch64.
 */
#include "tensor/vecdot.h"

#if defined(__aarch64__)
#include <arm_neon.h>

/* arm_neon.h declares vdotq_s32 under arch=armv8.2-a+dotprod; a bare
 * "+dotprod" on the ARMv8-A baseline cannot inline it (GCC 12) */
#define DOTPROD __attribute__((target("arch=armv8.2-a+dotprod")))

DOTPROD static int32_t dot8_row_sdot(const int8_t *a, const int8_t *b, size_t dim)
{
    int32x4_t acc = vdupq_n_s32(0);
    size_t i = 0, d16 = dim & ~(size_t)15;
    for (; i < d16; i += 16) acc = vdotq_s32(acc, vld1q_s8(a + i), vld1q_s8(b + i));
    int32_t s = vaddvq_s32(acc);
    for (; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}

DOTPROD void cdx_vec_dot8_neondot(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) out[r] = dot8_row_sdot(c + r * dim, p, dim);
}

DOTPROD static int32_t dot4_row_sdot(const uint8_t *c, size_t rb, const int8_t *p)
{
    const uint8x16_t m15 = vdupq_n_u8(15);
    int32x4_t acc = vdupq_n_s32(0);
    for (size_t b = 0; b < 2 * rb; b += 64)
        for (size_t h = 0; h < 32; h += 16) {
            uint8x16_t v = vld1q_u8(c + b / 2 + h);
            acc = vdotq_s32(acc, vreinterpretq_s8_u8(vandq_u8(v, m15)), vld1q_s8(p + b + h));
            acc = vdotq_s32(acc, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vld1q_s8(p + b + 32 + h));
        }
    return vaddvq_s32(acc);
}

DOTPROD void cdx_vec_dot4_neondot(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) out[r] = dot4_row_sdot(c + r * rb, rb, p);
}
#endif
