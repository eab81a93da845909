/*
 * bf16.c - the scalar reference of the AVX512_BF16 linear kernel
 * (linear_bf16_avx512.c): the exact arithmetic of vcvtne2ps2bf16 and
 * vdpbf16ps, so the kernel can be tested bit for bit.
 *   - activations to bfloat16: round to nearest even; NaN stays NaN (quiet);
 *     a subnormal float becomes a zero of its sign (the instruction does
 *     not consult MXCSR and flushes them);
 *   - vdpbf16ps, per output lane and k pair: acc = fma(a[2p+1], w[2p+1], acc)
 *     then acc = fma(a[2p], w[2p], acc), fp32 fmas rounding to nearest even,
 *     subnormal inputs (the accumulator included) read as zero and subnormal
 *     results written as zero. Measured on this project's Zen 5 machine: bit
 *     for bit on 9.6M lanes of random and special values (the even product
 *     first, or one rounding of the pair sum, differ in ~5 % of lanes).
 */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

/* x with a subnormal value replaced by a zero of its sign. */
static float flush(float x) { return fpclassify(x) == FP_SUBNORMAL ? copysignf(0.0f, x) : x; }

uint16_t cdx_float_to_bf16_act(float f)
{
    return cdx_float_to_bf16(flush(f));
}

static float bf(uint16_t h) { return flush(cdx_bf16_to_float(h)); }

void cdx_linear_bf16_ref(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias, float *C,
                         size_t ldc, size_t m, size_t n, size_t k, int act, unsigned flags)
{
    float w[2];
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t p = 0; p < k; p += 2) {
                float a1 = p + 1 < k ? bf(cdx_float_to_bf16_act(A[i * lda + p + 1])) : 0.0f;
                float a0 = bf(cdx_float_to_bf16_act(A[i * lda + p]));
                w[1] = 0.0f;
                cdx_wmat_dequant(W, k, j, p, p + 1 < k ? 2 : 1, w);
                acc = flush(fmaf(a1, flush(w[1]), flush(acc)));
                acc = flush(fmaf(a0, flush(w[0]), acc));
            }
            float s = acc;
            if (bias) s += bias[j];
            s = cdx_act_apply(act, s);
            float *c = C + i * ldc + j;
            *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
        }
}
