/*
 * dispatch.h - the kernel table. One table per instruction-set path (scalar
 * reference, AVX2+FMA, AVX-512; NEON and NEON with the dot product on
 * aarch64), each filled once at start-up from the CPU's
 * features (cpu.h); a context holds the table it runs (ctx->kern) and the
 * model code reaches kernels only through ops.h, which calls the table.
 * Results are bitwise identical for any thread count and batch size within
 * one table; different tables may differ in the last bits (other FMA
 * orders) or, for int8, in the activation range (qmax).
 */
#ifndef CDX_DISPATCH_H
#define CDX_DISPATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

struct cdx_wmat;

/* In increasing order: a CPU that runs a path runs every path below it
 * that it has the features of. avx-vnni is AVX2 plus the 256-bit VNNI int8
 * product (Alder Lake and later without AVX-512, and Zen 4/5). The aarch64
 * paths come last: neon (ARMv8-A Advanced SIMD; int8 with smull/sadalp, the
 * Cortex-A53's) and neon-dot (the same fp32 kernels, int8 with ARMv8.2 sdot:
 * A55, A76 and later). An x86 build never offers them, an aarch64 build
 * never offers the x86 ones. */
enum cdx_isa { CDX_ISA_SCALAR = 0, CDX_ISA_AVX2, CDX_ISA_AVXVNNI, CDX_ISA_AVX512, CDX_ISA_NEON, CDX_ISA_NEONDOT,
               CDX_ISA_COUNT };

/* C rows [m0, m1) x cols [n0, n1) (+)= act(A @ W^T + bias), the contract of
 * cdx_linear_w restricted to one task tile (at most CDX_LINEAR_TILE_M rows by
 * CDX_LINEAR_TILE_N columns, n0 a multiple of 16). */
typedef void (*cdx_linear_tile_fn)(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                                   float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k,
                                   int act, unsigned flags);
/* One LayerNorm row (x and y may alias). */
typedef void (*cdx_layernorm_row_fn)(const float *x, float *y, size_t n, const float *w, const float *b, float eps);
/* One attention query row: scores of q (d) against lim keys (K + c*ld),
 * softmax with `scale`, o (d) = weighted sum of the V rows; p: lim floats.
 * K and V have lim rows rounded up to 16 that may be read (the rows past
 * lim are zeros; ops.c packs them). */
typedef void (*cdx_attn_row_fn)(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d,
                                float scale, float *p, float *o);
/* Up to CDX_ATTN_ROWS query rows of one head without a causal mask: q row r
 * at q + r*ldq (d floats), the lim keys transposed in Kt (d rows of
 * L = lim rounded up to 64 floats, key c at column c, columns lim..L zero),
 * V (lim rows rounded up to 16, d floats each, the rest zero), p: rows x L
 * floats of scratch; o row r at o + r*ldo. Each row's result must not
 * depend on `rows` (the grouping of rows is free). */
#define CDX_ATTN_ROWS 6
typedef void (*cdx_attn_rows_fn)(const float *q, size_t ldq, size_t rows, const float *Kt, const float *V,
                                 size_t lim, size_t d, float scale, float *p, float *o, size_t ldo);
/* One row of activations to int8 blocks (qgemm.h, cdx_act_q8_ref). */
typedef void (*cdx_act_q8_fn)(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s);
/* One tile of the int8 product (qgemm.h, cdx_qgemm_tile_avx2's contract). */
typedef void (*cdx_qgemm_tile_fn)(int wtype, const int8_t *qa, const float *da, const int32_t *sa,
                                  const void *Wp, size_t k, const float *bias, float *C, size_t ldc, size_t m0,
                                  size_t m1, size_t n0, size_t n1, int act, unsigned flags);

/* One tile of the I8P product (qgemm.h, cdx_i8gemm_tile_t). */
typedef void (*cdx_i8gemm_tile_fn)(const int8_t *qa, const float *da, const int32_t *sa, const void *Wp, size_t k,
                                   const float *bias, float *C, size_t ldc, size_t m0, size_t m1, size_t n0,
                                   size_t n1, int act, unsigned flags);

/* The vector search's dot products (vecdot.h). */
typedef void (*cdx_vec_dot_fn)(const float *m, size_t rows, size_t dim, const float *q, float *out);
typedef void (*cdx_vec_dot8_fn)(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out);
typedef void (*cdx_vec_dot4_fn)(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out);

struct cdx_kernels {
    int isa;                   /* enum cdx_isa */
    const char *name;          /* "scalar", "avx2", "avx-vnni", "avx512", "neon", "neon-dot" */
    const char *describe;      /* per family: "fp32 avx512, int8 avx512-vnni, bf16 avx512-bf16" */
    int qmax[2];               /* int8 activation range for Q8P [0] and Q4P [1] weights */
    cdx_linear_tile_fn linear_tile;
    cdx_linear_tile_fn linear_tile_bf16; /* BF16P weights; NULL: linear_tile widens them exactly */
    cdx_layernorm_row_fn layernorm_row;
    cdx_attn_row_fn attn_row;
    cdx_attn_rows_fn attn_rows; /* NULL: attn_row for every row */
    cdx_act_q8_fn act_q8;
    cdx_qgemm_tile_fn qgemm_tile;
    int qmax_i8;               /* int8 activation range for I8P weights */
    cdx_act_q8_fn act_i8;      /* one row, one scale (cdx_act_i8_ref): d and s point to one value each */
    cdx_i8gemm_tile_fn i8gemm_tile;
    cdx_vec_dot_fn vec_dot;   /* search: float32 rows . query */
    cdx_vec_dot8_fn vec_dot8; /* search: int8 rows . int8 query */
    cdx_vec_dot4_fn vec_dot4; /* search: 4-bit rows . int8 query */
};

/* The table of path `isa`, or NULL if this CPU (or this build) cannot run
 * it. The scalar table always exists. */
CDX_INTERNAL const struct cdx_kernels *cdx_kernels_for(int isa);
/* The best table this CPU runs. */
CDX_INTERNAL const struct cdx_kernels *cdx_kernels_best(void);
/* Path name ("scalar", "avx2", "avx-vnni", "avx512", "neon", "neon-dot") to
 * enum cdx_isa; -1 if unknown. cdx_isa_name is the inverse ("?" if none,
 * whether or not this CPU runs the path). */
CDX_INTERNAL int cdx_isa_parse(const char *name);
CDX_INTERNAL const char *cdx_isa_name(int isa);
/* The table for a context: CLIPDEX_ISA=NAME asks for a path (a path above
 * the CPU's gives the best it has); CLIPDEX_FORCE_SCALAR=1 is
 * CLIPDEX_ISA=scalar. Returns NULL if CLIPDEX_ISA names no path. */
CDX_INTERNAL const struct cdx_kernels *cdx_kernels_from_env(void);

#endif
