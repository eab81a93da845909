/*
 * ops.h - the numeric kernels of the forward pass. Kernels know shapes, not
 * CLIP. Every kernel has a scalar reference (`*_ref`) that is always compiled;
 * the threaded entry points call the kernel table of the context (ctx->kern,
 * dispatch.h: scalar, AVX2 or AVX-512, chosen once from the CPU's features
 * and CLIPDEX_ISA). Each output element is produced by exactly one
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

/* Weight element types, numbered like ggml's (and GGUF's) tensor types.
 * F32/F16 are plain arrays; the Q types are blocks of CDX_QK = 32 values
 * along a row with ggml's exact byte layouts:
 *   Q4_0 (18 B): f16 d, 16 B nibbles; low nibbles = elements 0..15, high = 16..31;
 *                value (q - 8) * d
 *   Q4_1 (20 B): f16 d, f16 m, 16 B nibbles as Q4_0; value q * d + m
 *   Q5_0 (22 B): f16 d, u32 qh (bit e = 5th bit of element e), 16 B nibbles;
 *                value (q - 16) * d
 *   Q5_1 (24 B): f16 d, f16 m, u32 qh, 16 B nibbles; value q * d + m
 *   Q8_0 (34 B): f16 d, 32 int8; value q * d
 *   BF16 (2 B per value): bfloat16, the top half of a float (ggml type 30)
 * All multi-byte fields are little-endian and may be unaligned. */
enum cdx_wtype {
    CDX_W_F32 = 0, CDX_W_F16 = 1, CDX_W_Q4_0 = 2, CDX_W_Q4_1 = 3,
    CDX_W_Q5_0 = 6, CDX_W_Q5_1 = 7, CDX_W_Q8_0 = 8, CDX_W_BF16 = 30,
    /* I8: int8 with one scale per output row (per channel, as ONNX Runtime's
     * dynamic quantization). Only packed (I8P) in files: it has no ggml row
     * layout, so number 15 (ggml's Q8_K, which clipdex does not read) names
     * it only as the request type of quantization and the base of I8P. */
    CDX_W_I8 = 15,
    /* Panel-packed matrices (clipdex's own; GGUF type = CDX_W_PACKED + base
     * type, outside ggml's numbering). W (n, k) is cut into ceil(n/16) panels
     * of 16 outputs (rows past n are zero), stored one after the other; inside
     * a panel the layout is k-major, so the linear kernels read a panel
     * straight from the file instead of transposing W on every call:
     *   F32P: float v[k][16];          panel bytes 64 k
     *   F16P: binary16 v[k][16];       panel bytes 32 k
     *   Q8P:  per block of 32 k (576 B): float d[16] (the Q8_0 scales), then
     *         int8 v[8][16][4], v[g][r][e] = q of row r at k 32b + 4g + e
     *   Q4P:  per block of 32 k (320 B): float d[16], then 8 groups of 32 B;
     *         byte j of group g = nibble(row j/4, k 32b+4g+j%4)
     *         | nibble(row 8 + j/4, same k) << 4; value (nibble - 8) d
     *   I8P:  float d[16] (one scale per output row), then uint8 v[k/4][16][4],
 *         v[g][r][e] = 128 + q of row r at k 4g + e (|q| <= 127): panel
 *         bytes 64 + 16 k, k % 32 == 0
 * Q8P/Q4P/I8P are multiplied with int8 activations (src/tensor/qgemm.h). */
    CDX_W_PACKED = 1024,
    CDX_W_F32P = CDX_W_PACKED + CDX_W_F32, CDX_W_F16P = CDX_W_PACKED + CDX_W_F16,
    CDX_W_Q4P = CDX_W_PACKED + CDX_W_Q4_0, CDX_W_Q8P = CDX_W_PACKED + CDX_W_Q8_0,
    CDX_W_BF16P = CDX_W_PACKED + CDX_W_BF16, CDX_W_I8P = CDX_W_PACKED + CDX_W_I8
};
#define CDX_QK 32
#define CDX_PANEL 16 /* outputs per packed panel */

/* A weight matrix W (n, k) of any cdx_wtype, row-major: row j holds the k
 * inputs of output j (for Q types: k / 32 consecutive blocks). The shape is
 * passed beside it. A zeroed struct is F32 with no data. */
struct cdx_wmat {
    int type;         /* enum cdx_wtype */
    const void *data;
};

static inline struct cdx_wmat cdx_wmat_f32(const float *w)
{
    struct cdx_wmat m = {CDX_W_F32, w};
    return m;
}

/* Name ("F32", "Q8_0", ...) or NULL if `type` is not a supported type. */
CDX_INTERNAL const char *cdx_wtype_name(int type);
/* Values per block (1 for F32/F16/BF16, 32 for Q types); 0 if unsupported. */
CDX_INTERNAL size_t cdx_wtype_block(int type);
/* Bytes per block; 0 if unsupported. */
CDX_INTERNAL size_t cdx_wtype_block_bytes(int type);
/* Bytes of one row of k values; 0 if unsupported or k is not a multiple of
 * the block (or overflows). */
CDX_INTERNAL size_t cdx_wtype_row_bytes(int type, size_t k);
/* out[0..n) = values [k0, k0 + n) of a row (`row` = its first byte). For Q
 * types k0 and n are multiples of 32. Exact: the same floats the SIMD
 * kernels compute. */
CDX_INTERNAL void cdx_dequant_row(int type, const void *row, size_t k0, size_t n, float *out);
/* Quantizes k values (k a multiple of the block) into `out` (row bytes) with
 * ggml's reference rounding (F16, BF16: round to nearest even). */
CDX_INTERNAL void cdx_quant_row(int type, const float *x, size_t k, void *out);
/* Row j of W (n, k) as a pointer. */
static inline const void *cdx_wmat_row(const struct cdx_wmat *w, size_t k, size_t j) /* row types only */
{
    return (const uint8_t *)w->data + j * cdx_wtype_row_bytes(w->type, k);
}

/* Packed types: 1 if `type` is one, its row type (F32P -> F32, ...) or -1. */
static inline int cdx_wtype_is_packed(int type)
{
    return type == CDX_W_F32P || type == CDX_W_F16P || type == CDX_W_Q8P || type == CDX_W_Q4P ||
           type == CDX_W_BF16P || type == CDX_W_I8P;
}
static inline int cdx_wtype_base(int type) { return cdx_wtype_is_packed(type) ? type - CDX_W_PACKED : type; }
/* The packed type of a row type (F32 -> F32P ...), or -1 if it has none. */
CDX_INTERNAL int cdx_wtype_packed_of(int type);
/* Bytes of a whole matrix (n, k) of any type (packed or rows); 0 if the
 * type is unknown, k does not split into its blocks, or on overflow. */
CDX_INTERNAL size_t cdx_wmat_bytes(int type, size_t n, size_t k);
/* The view of rows [j0, ...) of W (n, k); for packed types j0 % 16 == 0. */
CDX_INTERNAL struct cdx_wmat cdx_wmat_sub(const struct cdx_wmat *W, size_t k, size_t j0);
/* out[0..kc) = W[j][k0 .. k0+kc) for any type (packed or rows); for block
 * types k0 and kc are multiples of 32. Exact (the same floats as
 * cdx_dequant_row on the row matrix the packed one was made from). */
CDX_INTERNAL void cdx_wmat_dequant(const struct cdx_wmat *W, size_t k, size_t j, size_t k0, size_t kc,
                                   float *out);
/* Packs W (n, k) of row type `src->type` into `out` (cdx_wmat_bytes(dst, n,
 * k) bytes) as packed type dst: F32P from F32; F16P from F16; BF16P from BF16; Q8P from
 * Q8_0; Q4P from Q4_0 (the values are copied, never re-rounded); I8P from
 * any type (quantized per row: cdx_i8p_quant). Returns 0, or -1 if the pair
 * is not one of these (or I8P runs out of memory). */
CDX_INTERNAL int cdx_wmat_pack(int dst, const struct cdx_wmat *src, size_t n, size_t k, void *out);

/* C (m, n; row stride ldc) [+]= act(A (m, k; stride lda) @ W (n, k)^T + bias (n,))
 * W is row-major [n, k] (PyTorch nn.Linear layout) of any cdx_wtype (Q types
 * need k % 32 == 0); bias may be NULL. act is applied before accumulation;
 * ACCUM with an activation is allowed. Reduced-precision weights are
 * dequantized exactly into the fp32 panels the kernel packs anyway, so every
 * output is the same FMA chain as with the dequantized F32 matrix: results
 * are identical for any batch size and thread count, for every type. */
CDX_INTERNAL void cdx_linear_w(clipdex_ctx *ctx, const float *A, size_t lda, const struct cdx_wmat *W,
                               const float *bias, float *C, size_t ldc, size_t m, size_t n, size_t k,
                               int act, unsigned flags);
/* One product of cdx_linear_multi: C (m, n; stride ldc) [+]= act(A @ W^T + bias). */
struct cdx_lin_out {
    const struct cdx_wmat *W;
    const float *bias;
    float *C;
    size_t ldc, n;
};
#define CDX_LIN_MAX_OUT 3
/* cdx_linear_w for several weight matrices of one input A (m, k) (the q, k
 * and v projections): the int8 types quantize A once and every product runs
 * in one pool job, so short inputs pay one hand-off instead of n_out. Each
 * output is bitwise what cdx_linear_w gives. Mixed weight types, or more
 * than CDX_LIN_MAX_OUT products, run one cdx_linear_w after another. */
CDX_INTERNAL void cdx_linear_multi(clipdex_ctx *ctx, const float *A, size_t lda, size_t m, size_t k,
                                   const struct cdx_lin_out *out, size_t n_out, int act, unsigned flags);
/* cdx_linear_w with F32 weights. */
CDX_INTERNAL void cdx_linear(clipdex_ctx *ctx, const float *A, size_t lda, const float *W,
                             const float *bias, float *C, size_t ldc, size_t m, size_t n, size_t k,
                             int act, unsigned flags);
/* Single-threaded scalar reference of cdx_linear (for tests). */
CDX_INTERNAL void cdx_linear_ref(const float *A, size_t lda, const float *W, const float *bias,
                                 float *C, size_t ldc, size_t m, size_t n, size_t k, int act,
                                 unsigned flags);
/* Scalar reference for any type: each row dequantized (cdx_dequant_row),
 * then the reference dot product in the same order as cdx_linear_ref. */
CDX_INTERNAL void cdx_linear_w_ref(const float *A, size_t lda, const struct cdx_wmat *W,
                                   const float *bias, float *C, size_t ldc, size_t m, size_t n,
                                   size_t k, int act, unsigned flags);

/* The scalar table's kernels (dispatch.h signatures): cdx_linear_w_ref on
 * one task tile, one LayerNorm row (double sums), one attention row. */
CDX_INTERNAL void cdx_linear_tile_ref(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                      float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                      int act, unsigned flags);
CDX_INTERNAL void cdx_layernorm_row_ref(const float *x, float *y, size_t n, const float *w, const float *b,
                                        float eps);
CDX_INTERNAL void cdx_attn_row_ref(const float *q, const float *K, const float *V, size_t ld, size_t lim,
                                   size_t d, float scale, float *p, float *o);

/* y (m, n) = LayerNorm(x (m, n)) * w + b, row by row; x and y may alias. */
CDX_INTERNAL void cdx_layernorm(clipdex_ctx *ctx, const float *x, size_t ldx, float *y, size_t ldy,
                                size_t m, size_t n, const float *w, const float *b, float eps);

/* Multi-head attention over `n_seq` sequences of `t` tokens each.
 * q, k, v, out: (n_seq * t, width) row-major with row stride ld; head h uses
 * columns [h*d, (h+1)*d), d = width / heads. causal: token i sees j <= i.
 * `scratch` holds at least cdx_attention_scratch(n_seq, heads, t, width) floats. */
CDX_INTERNAL size_t cdx_attention_scratch(size_t n_seq, size_t heads, size_t t, size_t width);
CDX_INTERNAL void cdx_attention(clipdex_ctx *ctx, const float *q, const float *k, const float *v,
                                float *out, size_t ld, size_t n_seq, size_t t, size_t width,
                                size_t heads, int causal, float *scratch);

/* cdx_attention for one query row per sequence: `sel[s]` is the row of
 * sequence s; q and out hold one row per sequence (n_seq rows, stride ld),
 * k and v all n_seq * t rows. Each row is bitwise the row cdx_attention
 * computes. */
CDX_INTERNAL void cdx_attention_sel(clipdex_ctx *ctx, const float *q, const float *k, const float *v,
                                    float *out, size_t ld, size_t n_seq, size_t t, size_t width,
                                    size_t heads, int causal, const size_t *sel, float *scratch);

/* x (n,) scaled to unit L2 norm (left as is if the norm is zero). */
CDX_INTERNAL void cdx_l2_normalize(float *x, size_t n);

CDX_INTERNAL float cdx_act_apply(int act, float x);

/* IEEE binary16 and bfloat16 bit patterns to float (exact, subnormals kept). */
CDX_INTERNAL float cdx_half_to_float(uint16_t h);
/* float to binary16, round to nearest even (overflow to inf, NaN kept NaN). */
CDX_INTERNAL uint16_t cdx_float_to_half(float f);
CDX_INTERNAL float cdx_bf16_to_float(uint16_t h);
/* float to bfloat16, round to nearest even (NaN kept NaN, quiet), as
 * PyTorch's .to(torch.bfloat16). */
CDX_INTERNAL uint16_t cdx_float_to_bf16(float f);

/* AVX2/FMA/F16C building block (src/tensor/linear_avx2.c): rows [m0, m1) x
 * cols [n0, n1) of the product, same contract as cdx_linear_w. A task tile is
 * at most CDX_LINEAR_TILE_M rows by CDX_LINEAR_TILE_N columns. */
#define CDX_LINEAR_TILE_M 480
#define CDX_LINEAR_TILE_N 64
CDX_INTERNAL void cdx_linear_tile_avx2(const float *A, size_t lda, const struct cdx_wmat *W,
                                       const float *bias, float *C, size_t ldc, size_t m0,
                                       size_t m1, size_t n0, size_t n1, size_t k, int act,
                                       unsigned flags);
/* C rows [m0, m1) x cols [n0, n1) (+)= act(acc + bias) with the exact
 * arithmetic of cdx_linear_tile_avx2's epilogue; acc row i is at
 * acc + (i - m0) * ldacc (float sums over k, before bias). */
CDX_INTERNAL void cdx_linear_epilogue_avx2(const float *acc, size_t ldacc, const float *bias, float *C,
                                           size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1,
                                           int act, unsigned flags);
/* The same with AVX-512 (linear_avx512.c): bitwise the AVX2 epilogue but for
 * GELU (a vector erfc there, libm's erff here). */
CDX_INTERNAL void cdx_linear_epilogue_avx512(const float *acc, size_t ldacc, const float *bias, float *C,
                                             size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1,
                                             int act, unsigned flags);
/* One LayerNorm row with AVX2 (double sums, 4 lanes; x and y may alias). */
CDX_INTERNAL void cdx_layernorm_row_avx2(const float *x, float *y, size_t n, const float *w, const float *b,
                                         float eps);
/* One attention query row with AVX2 (ops.c's attn_row, bitwise): scores
 * against lim keys (K + c*ld), softmax, o (d) = weighted sum of V rows; p
 * holds lim floats of scratch. */
CDX_INTERNAL void cdx_attn_row_avx2(const float *q, const float *K, const float *V, size_t ld, size_t lim,
                                    size_t d, float scale, float *p, float *o);
/* BF16P weights with AVX512_BF16 (linear_bf16_avx512.c): the
 * cdx_linear_tile_avx2 contract, activations rounded to bfloat16 and
 * multiplied with vdpbf16ps (fp32 accumulation, one step per k pair). */
CDX_INTERNAL void cdx_linear_tile_bf16_avx512(const float *A, size_t lda, const struct cdx_wmat *W,
                                              const float *bias, float *C, size_t ldc, size_t m0, size_t m1,
                                              size_t n0, size_t n1, size_t k, int act, unsigned flags);
/* Its scalar reference (bf16.c): the exact arithmetic of the instructions
 * (bfloat16 activations, two fp32 fmas per k pair, subnormals flushed), on
 * BF16 rows or BF16P panels; cdx_float_to_bf16_act is the activation
 * rounding (subnormals to zero, then cdx_float_to_bf16). */
CDX_INTERNAL void cdx_linear_bf16_ref(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                      float *C, size_t ldc, size_t m, size_t n, size_t k, int act, unsigned flags);
CDX_INTERNAL uint16_t cdx_float_to_bf16_act(float f);
/* P (kc, 16) <- rows j0 .. j0+15 (zero from n1 on) of W, columns k0 .. k0+kc
 * (kc <= 256; multiples of 32 for block types): the fp32 panel of any type. */
CDX_INTERNAL void cdx_linear_pack_avx2(const struct cdx_wmat *W, size_t k, size_t j0, size_t n1, size_t k0,
                                       size_t kc, float *P);
/* The AVX-512 fp32 path (linear_avx512.c, rows_avx512.c): dispatch.h's
 * linear_tile, layernorm_row and attn_row contracts. */
CDX_INTERNAL void cdx_linear_tile_avx512(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                         float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                         int act, unsigned flags);
CDX_INTERNAL void cdx_layernorm_row_avx512(const float *x, float *y, size_t n, const float *w, const float *b,
                                           float eps);
CDX_INTERNAL void cdx_attn_row_avx512(const float *q, const float *K, const float *V, size_t ld, size_t lim,
                                      size_t d, float scale, float *p, float *o);
CDX_INTERNAL void cdx_attn_rows_avx512(const float *q, size_t ldq, size_t rows, const float *Kt, const float *V,
                                       size_t lim, size_t d, float scale, float *p, float *o, size_t ldo);
/* The aarch64 NEON fp32 path (linear_neon.c): dispatch.h's linear_tile,
 * layernorm_row and attn_row contracts, one FMA chain per output as on x86. */
CDX_INTERNAL void cdx_linear_tile_neon(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                       float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                       int act, unsigned flags);
CDX_INTERNAL void cdx_linear_epilogue_neon(const float *acc, size_t ldacc, const float *bias, float *C, size_t ldc,
                                           size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);
CDX_INTERNAL void cdx_layernorm_row_neon(const float *x, float *y, size_t n, const float *w, const float *b,
                                         float eps);
CDX_INTERNAL void cdx_attn_row_neon(const float *q, const float *K, const float *V, size_t ld, size_t lim,
                                    size_t d, float scale, float *p, float *o);
CDX_INTERNAL float cdx_dot_avx2(const float *a, const float *b, size_t n);
CDX_INTERNAL void cdx_axpy_avx2(float a, const float *x, float *y, size_t n); /* y += a x */

#endif
