/*
 * ops.h - the numeric kernels of the forward pass. Kernels know shapes, not
 * CLIP. Every kernel has a scalar reference (`*_ref`) that is always compiled;
 * the dispatching entry points pick AVX2/FMA variants once per context unless
 * ctx->force_scalar is set. Each output element is produced by exactly one
 * task in a fixed reduction order, so results are identical for any thread
 * count and any batch size.
 */
#ifndef CDX_OPS_H
#define CDX_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

enum cdx_act { CDX_ACT_NONE = 0, CDX_ACT_QUICK_GELU = 1, CDX_ACT_GELU = 2 };

/* Flags for cdx_linear. */
#define CDX_LIN_ACCUM 1u /* C += result instead of C = result */

/* C (m, n; row stride ldc) [+]= act(A (m, k; stride lda) @ W (n, k)^T + bias (n,))
 * W is row-major [n, k] (PyTorch nn.Linear layout); bias may be NULL.
 * act is applied before accumulation; ACCUM with an activation is allowed. */
CDX_INTERNAL void cdx_linear(clipdex_ctx *ctx, const float *A, size_t lda, const float *W,
                             const float *bias, float *C, size_t ldc, size_t m, size_t n, size_t k,
                             int act, unsigned flags);
/* Single-threaded scalar reference of cdx_linear (for tests). */
CDX_INTERNAL void cdx_linear_ref(const float *A, size_t lda, const float *W, const float *bias,
                                 float *C, size_t ldc, size_t m, size_t n, size_t k, int act,
                                 unsigned flags);

/* y (m, n) = LayerNorm(x (m, n)) * w + b, row by row; x and y may alias. */
CDX_INTERNAL void cdx_layernorm(clipdex_ctx *ctx, const float *x, size_t ldx, float *y, size_t ldy,
                                size_t m, size_t n, const float *w, const float *b, float eps);

/* Multi-head attention over `n_seq` sequences of `t` tokens each.
 * q, k, v, out: (n_seq * t, width) row-major with row stride ld; head h uses
 * columns [h*d, (h+1)*d), d = width / heads. causal: token i sees j <= i.
 * `scratch` holds at least cdx_attention_scratch(n_seq, heads, t) floats. */
CDX_INTERNAL size_t cdx_attention_scratch(size_t n_seq, size_t heads, size_t t);
CDX_INTERNAL void cdx_attention(clipdex_ctx *ctx, const float *q, const float *k, const float *v,
                                float *out, size_t ld, size_t n_seq, size_t t, size_t width,
                                size_t heads, int causal, float *scratch);

/* x (n,) scaled to unit L2 norm (left as is if the norm is zero). */
CDX_INTERNAL void cdx_l2_normalize(float *x, size_t n);

CDX_INTERNAL float cdx_act_apply(int act, float x);

/* IEEE binary16 and bfloat16 bit patterns to float (exact, subnormals kept). */
CDX_INTERNAL float cdx_half_to_float(uint16_t h);
CDX_INTERNAL float cdx_bf16_to_float(uint16_t h);

/* AVX2/FMA building block (src/tensor/linear_avx2.c): rows [m0, m1) x cols
 * [n0, n1) of the product, same contract as cdx_linear. A task tile is at most
 * CDX_LINEAR_TILE_M rows by CDX_LINEAR_TILE_N columns. */
#define CDX_LINEAR_TILE_M 240
#define CDX_LINEAR_TILE_N 64
CDX_INTERNAL int cdx_cpu_has_avx2_fma(void);
CDX_INTERNAL void cdx_linear_tile_avx2(const float *A, size_t lda, const float *W,
                                       const float *bias, float *C, size_t ldc, size_t m0,
                                       size_t m1, size_t n0, size_t n1, size_t k, int act,
                                       unsigned flags);
CDX_INTERNAL float cdx_dot_avx2(const float *a, const float *b, size_t n);

#endif
