/*
 * qgemm.h - integer GEMM for quantized weights: int8 activations (quantized
 * per row in blocks of 32, ggml Q8_0 style, scale kept as a float) times
 * panel-packed Q8_0 / Q4_0 weights (Q8P / Q4P below), int32 block sums
 * scaled into a float FMA chain. Each kernel has a scalar reference
 * (qgemm.c) that the AVX2 (qgemm_avx2.c) and VNNI (qgemm_vnni.inc, in
 * qgemm_avx512.c and qgemm_avxvnni.c) versions match bit for bit.
 *
 * Packed weight formats. W (n outputs, k inputs), k % 32 == 0, is cut into
 * np = ceil(n / 16) panels of 16 outputs; rows past n are zero (scale 0,
 * value 0; Q4P nibble 8). Panel q starts at q * (k / 32) * block bytes, block
 * b of a panel (k indices 32b .. 32b+31) at b * block bytes:
 *   Q8P (576 B): float d[16] (row scales, f16 converted exactly), then
 *                int8 v[8][16][4], v[g][r][e] = q of row 16q+r at k 32b+4g+e.
 *   Q4P (320 B): float d[16], then 8 groups of 32 B; byte j of group g =
 *                lo | hi << 4, lo = nibble (0..15) of row 16q + j/4, hi = the
 *                nibble of row 16q + 8 + j/4, both at k 32b+4g+j%4;
 *                value (nibble - 8) * d.
 *
 * The product, exactly (both implementations): for output (i, j)
 *   acc = 0; for b = 0 .. k/32-1 in order:
 *     isum = sum_e qa[i][32b+e] * w[j][32b+e]   (int32, exact)
 *     acc = fmaf((float)isum, da[i][b] * dw[j][b], acc)
 *   then acc + bias[j], the activation, and C = accum ? C + s : s.
 * Quantized activations: row i at qa + i*k, da + i*(k/32), sa + i*(k/32)
 * (sa[b] = sum of the block's q, used by the AVX2 kernels to undo the
 * offset of their unsigned operand). Their range is the kernel path's
 * (struct cdx_kernels.qmax): on the scalar and AVX2 paths (cdx_qp_act_max)
 * |q| <= 63 for Q8P, so that the AVX2 kernel can multiply unsigned w + 128
 * (0..255) by signed q in vpmaddubsw without saturating (pair sums <= 2 *
 * 255 * 63 = 32130), which is 1.3x faster than applying the weights' signs
 * to 8-bit activations; |q| <= 127 for Q4P, whose 4-bit weights leave room
 * for 8-bit activations. The VNNI paths (vpdpbusd sums four products into
 * int32 with no intermediate saturation) use |q| <= 127 for both: on the b32
 * goldens Q8 worst cosine 0.999255 (7-bit) -> 0.999775 (8-bit).
 */
#ifndef CDX_QGEMM_H
#define CDX_QGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "tensor/ops.h"

#define CDX_QP_NR 16      /* outputs per panel */
#define CDX_QP_Q8 8       /* wtype: Q8P (numbered like CDX_W_Q8_0) */
#define CDX_QP_Q4 2       /* wtype: Q4P (numbered like CDX_W_Q4_0) */
#define CDX_QP_Q8_BLOCK 576 /* bytes per 16 x 32 block */
#define CDX_QP_Q4_BLOCK 320

/* Bytes of the packed matrix (n, k); 0 if k % 32 != 0 or on overflow. */
CDX_INTERNAL size_t cdx_q8p_bytes(size_t n, size_t k);
CDX_INTERNAL size_t cdx_q4p_bytes(size_t n, size_t k);
/* Packs n ggml rows (Q8_0: 34 B blocks; Q4_0: 18 B blocks; k / 32 blocks per
 * row) into `out` (cdx_q*p_bytes(n, k) bytes). Values are copied exactly;
 * padding rows are zero. */
CDX_INTERNAL void cdx_q8p_pack(const void *q8_0_rows, size_t n, size_t k, void *out);
CDX_INTERNAL void cdx_q4p_pack(const void *q4_0_rows, size_t n, size_t k, void *out);
/* Row j (< padded n) of a packed matrix, block b: its 32 integer weights
 * (Q8P: the int8; Q4P: nibble - 8) and its scale. For tests and the
 * reference. */
CDX_INTERNAL void cdx_qp_unpack_block(int wtype, const void *Wp, size_t k, size_t j, size_t b,
                                      int8_t w[32], float *d);

#define CDX_QA_MAX_Q8 63  /* activation range for Q8P weights */
#define CDX_QA_MAX_Q4 127 /* activation range for Q4P weights */
static inline int cdx_qp_act_max(int wtype) { return wtype == CDX_QP_Q8 ? CDX_QA_MAX_Q8 : CDX_QA_MAX_Q4; }

/* One row x (k values, k % 32 == 0, finite) to integers in [-qmax, qmax]
 * (qmax 63 or 127, from cdx_qp_act_max): per block of 32, amax = max |x|,
 * d = amax / qmax, id = d >= FLT_MIN ? 1 / d : 0 (so blocks with amax below
 * qmax * FLT_MIN, ~1e-36, become zero with d = 0),
 * q = round-half-even(x * id), |q| <= qmax; d[b] is stored as a float and
 * s[b] = sum of the block's q. A block holding NaN or inf (only broken
 * weights make those) gets q = 0, s = 0 and d = NaN, so its products are NaN
 * as in fp32 arithmetic, with no undefined float-to-int conversion. The AVX2
 * version is bitwise identical. */
CDX_INTERNAL void cdx_act_q8_ref(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
CDX_INTERNAL void cdx_act_q8_avx2(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
CDX_INTERNAL void cdx_act_q8_avx512(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);

/* C (m, n; stride ldc) (+)= act(product + bias) (the definition above);
 * wtype is CDX_QP_Q8 or CDX_QP_Q4, Wp the whole packed matrix, bias may be
 * NULL, flags CDX_LIN_ACCUM. Epilogue arithmetic of cdx_linear_ref. */
CDX_INTERNAL void cdx_qgemm_ref(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                size_t m, const void *Wp, size_t n, size_t k, const float *bias,
                                float *C, size_t ldc, int act, unsigned flags);
/* Rows [m0, m1) x cols [n0, n1) of the same product (qa/da/sa/C/bias are
 * indexed with absolute rows and columns); n0 % 16 == 0,
 * m1 - m0 <= CDX_LINEAR_TILE_M, n1 - n0 <= CDX_LINEAR_TILE_N. Bitwise equal
 * to cdx_qgemm_ref for CDX_ACT_NONE (epilogue: cdx_linear_epilogue_avx2) for
 * any tiling. Uses a per-thread static accumulator tile (no allocation);
 * needs AVX2/FMA/F16C (cpu.h). cdx_qgemm_tile_ref is the scalar table's
 * version (cdx_qgemm_ref on the tile). */
CDX_INTERNAL void cdx_qgemm_tile_ref(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                     const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                     size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);
CDX_INTERNAL void cdx_qgemm_tile_avx2(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                      const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                      size_t m0, size_t m1, size_t n0, size_t n1, int act,
                                      unsigned flags);
/* The same tile with VNNI's vpdpbusd (qgemm_vnni.inc): 512-bit AVX512_VNNI
 * (needs AVX-512 F/BW/VL/DQ + VNNI) and 256-bit AVX-VNNI (needs AVX2 + AVX-VNNI).
 * No saturation anywhere, so activations may use the full |q| <= 127;
 * bitwise cdx_qgemm_ref for CDX_ACT_NONE, like the AVX2 tile. */
CDX_INTERNAL void cdx_qgemm_tile_avx512(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                        const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                        size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);
CDX_INTERNAL void cdx_qgemm_tile_avxvnni(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                         const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                         size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);
#define CDX_QA_MAX_VNNI 127 /* activation range of the VNNI tiles, Q8P and Q4P */

/* aarch64 (qgemm_neon.c, qgemm_neondot.c): the same contracts. Both tiles
 * multiply signed bytes exactly (smull + sadalp into int32 on plain NEON;
 * sdot, four products per int32 lane, with +dotprod), so the activations use
 * |q| <= 127 for Q8P and Q4P; bitwise cdx_qgemm_ref for CDX_ACT_NONE. */
#define CDX_QA_MAX_NEON 127
CDX_INTERNAL void cdx_act_q8_neon(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
CDX_INTERNAL void cdx_qgemm_tile_neon(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                      const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                      size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);
CDX_INTERNAL void cdx_qgemm_tile_neondot(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                         const void *Wp, size_t k, const float *bias, float *C, size_t ldc,
                                         size_t m0, size_t m1, size_t n0, size_t n1, int act, unsigned flags);

/* I8P: int8 weights with one scale per output row (ops.h has the layout),
 * times int8 activations with one scale per row, the whole k in one exact
 * integer sum:
 *   isum = sum_p qa[i][p] * w[j][p]            (int32, exact: k <= 65536)
 *   s = (float)isum * (da[i] * dw[j]), then + bias[j], the activation, and
 *   C = accum ? C + s : s                      (cdx_linear_ref's epilogue)
 * No float chain over k, so any tiling, k chunking or instruction order
 * gives the same bits; only the activation range qmax (struct cdx_kernels
 * .qmax_i8) differs between paths. */
#define CDX_I8_KMAX 65536
/* Bytes of the I8P matrix (n, k); 0 if k % 32 != 0, k > CDX_I8_KMAX or on
 * overflow. */
CDX_INTERNAL size_t cdx_i8p_bytes(size_t n, size_t k);
/* Quantizes W (n, k; any type, dequantized exactly row by row) into I8P:
 * per row d = max |w| / 127, q = round-half-even(w / d) (d = 0 and q = 0 for
 * a zero row; a row holding NaN or inf gets d = NaN and q = 0, so its outputs
 * are NaN as in fp32). Padding rows are d = 0, q = 0. 0, or -1 out of
 * memory. */
CDX_INTERNAL int cdx_i8p_quant(const struct cdx_wmat *src, size_t n, size_t k, void *out);
/* Row j of an I8P matrix: its k weights q (|q| <= 127) and scale. */
CDX_INTERNAL void cdx_i8p_unpack_row(const void *Wp, size_t k, size_t j, int8_t *w, float *d);
/* One activation row x (k values) to q in [-qmax, qmax] with one scale:
 * amax = max |x| over the row, d = amax / qmax, id = d >= FLT_MIN ? 1 / d : 0,
 * q = round-half-even(x * id); *s = sum of q. A row holding NaN or inf gets
 * q = 0, *s = 0, *d = NaN (cdx_act_q8_ref's rule, for the whole row). */
CDX_INTERNAL void cdx_act_i8_ref(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
CDX_INTERNAL void cdx_act_i8_avx2(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
CDX_INTERNAL void cdx_act_i8_avx512(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
/* C (m, n) (+)= the I8P product above; qa row i at qa + i * k, da[i], sa[i]. */
CDX_INTERNAL void cdx_i8gemm_ref(const int8_t *qa, const float *da, const int32_t *sa, size_t m, const void *Wp,
                                 size_t n, size_t k, const float *bias, float *C, size_t ldc, int act,
                                 unsigned flags);
/* Rows [m0, m1) x cols [n0, n1) of it (absolute indices; n0 % 16 == 0,
 * m1 - m0 <= CDX_LINEAR_TILE_M, n1 - n0 <= CDX_LINEAR_TILE_N); bitwise
 * cdx_i8gemm_ref for CDX_ACT_NONE on every path (epilogues as the Q8P
 * tiles'). The SIMD tiles use the biased weights (w + 128) as vpdpbusd's /
 * vpmaddubsw's unsigned operand and start the integer sums at -128 * sa[i]. */
typedef void cdx_i8gemm_tile_t(const int8_t *qa, const float *da, const int32_t *sa, const void *Wp, size_t k,
                               const float *bias, float *C, size_t ldc, size_t m0, size_t m1, size_t n0,
                               size_t n1, int act, unsigned flags);
CDX_INTERNAL cdx_i8gemm_tile_t cdx_i8gemm_tile_ref, cdx_i8gemm_tile_avx2, cdx_i8gemm_tile_avxvnni,
    cdx_i8gemm_tile_avx512, cdx_i8gemm_tile_neon, cdx_i8gemm_tile_neondot;
#define CDX_IA_MAX 127 /* I8P activations on every path (8 bits) */

#endif
