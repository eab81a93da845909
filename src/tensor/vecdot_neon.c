/*
 * vecdot_neon.c - NEON kernels of the vector search (contracts in
 * vecdot.h) for aarch64; dispatch.c puts them in the neon tables. Compiles
 * to nothing elsewhere.
 *   float32: per row 4 independent 4-lane FMA accumulators over 16
 *            dimensions, then 4, a fixed horizontal sum, a scalar tail; the
 *            order depends on dim only, never on `rows`.
 *   int8:    baseline NEON (Cortex-A53): vmull_s8 products (|.| <= 16129
 *            fit int16) widened pairwise into int32 with vpadalq_s16,
 *            exact; vecdot_neondot.c has the ARMv8.2 sdot form.
 *   4-bit:   per 64 dimensions 32 bytes, low and high nibbles (0..15, so
 *            valid int8) against the two query halves, the same
 *            products; exact.
 */
#include "tensor/vecdot.h"

#if defined(__aarch64__)
#include <arm_neon.h>

void cdx_vec_dot_neon(const float *m, size_t rows, size_t dim, const float *q, float *out)
{
    size_t d16 = dim & ~(size_t)15, d4 = dim & ~(size_t)3;
    for (size_t r = 0; r < rows; r++) {
        const float *x = m + r * dim;
        float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
        size_t i = 0;
        for (; i < d16; i += 16) {
            a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(q + i));
            a1 = vfmaq_f32(a1, vld1q_f32(x + i + 4), vld1q_f32(q + i + 4));
            a2 = vfmaq_f32(a2, vld1q_f32(x + i + 8), vld1q_f32(q + i + 8));
            a3 = vfmaq_f32(a3, vld1q_f32(x + i + 12), vld1q_f32(q + i + 12));
        }
        for (; i < d4; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(x + i), vld1q_f32(q + i));
        float s = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
        for (; i < dim; i++) s += x[i] * q[i];
        out[r] = s;
    }
}

/* sum over 16 lanes of a x b (int8) into the int32 lanes of acc */
static inline int32x4_t dot8_step(int32x4_t acc, int8x16_t a, int8x16_t b)
{
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b)); /* <= 2 x 16129: fits int16 */
    return vpadalq_s16(acc, p);
}

static int32_t dot8_row(const int8_t *a, const int8_t *b, size_t dim)
{
    int32x4_t acc = vdupq_n_s32(0);
    size_t i = 0, d16 = dim & ~(size_t)15;
    for (; i < d16; i += 16) acc = dot8_step(acc, vld1q_s8(a + i), vld1q_s8(b + i));
    int32_t s = vaddvq_s32(acc);
    for (; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}

void cdx_vec_dot8_neon(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) out[r] = dot8_row(c + r * dim, p, dim);
}

/* the raw nibble sums of one 4-bit row of rb bytes against p (2 rb) */
static int32_t dot4_row(const uint8_t *c, size_t rb, const int8_t *p)
{
    const uint8x16_t m15 = vdupq_n_u8(15);
    int32x4_t acc = vdupq_n_s32(0);
    for (size_t b = 0; b < 2 * rb; b += 64)
        for (size_t h = 0; h < 32; h += 16) {
            uint8x16_t v = vld1q_u8(c + b / 2 + h);
            acc = dot8_step(acc, vreinterpretq_s8_u8(vandq_u8(v, m15)), vld1q_s8(p + b + h));
            acc = dot8_step(acc, vreinterpretq_s8_u8(vshrq_n_u8(v, 4)), vld1q_s8(p + b + 32 + h));
        }
    return vaddvq_s32(acc);
}

void cdx_vec_dot4_neon(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out)
{
    for (size_t r = 0; r < rows; r++) out[r] = dot4_row(c + r * rb, rb, p);
}

#endif
