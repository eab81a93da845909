/*
 * vecdot.h - the kernels of the vector search (src/search/vecscan.c): dot
 * products of one query against many stored rows, in float32, in int8 and
 * in packed 4-bit codes. A scalar reference per kernel here (vecdot.c), one
 * file per ISA beside it (vecdot_avx2.c); dispatch.c puts them in the
 * kernel table. The int8 and 4-bit sums are exact integers, so every path
 * gives the reference's values; the float32 dot may differ in the last bits
 * between paths (summation order) but not between calls of one path.
 */
#ifndef CDX_VECDOT_H
#define CDX_VECDOT_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* m (rows, dim) row-major @ q (dim,) -> out (rows,). Each row's sum is
 * computed the same way whatever `rows` is, so scoring one row alone gives
 * the same float as scoring it in a block. */
CDX_INTERNAL void cdx_vec_dot_ref(const float *m, size_t rows, size_t dim, const float *q, float *out);
/* c (rows, dim) int8 row-major . p (dim,) int8 -> out (rows,), exact in
 * int32 (|c|, |p| <= 127, dim < 2^17). */
CDX_INTERNAL void cdx_vec_dot8_ref(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out);
/* 4-bit rows (rows, rb bytes each; the layout of cdx_vec_q4_row: per 64
 * dimensions 32 bytes, the low nibble dimension j, the high one 32 + j) .
 * p (dp = 2 rb int8, padded with zeros) -> out (rows,): the sums of the raw
 * unsigned nibbles (0..15) times p, exact in int32. */
CDX_INTERNAL void cdx_vec_dot4_ref(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out);

#if defined(__x86_64__) || defined(__i386__)
CDX_INTERNAL void cdx_vec_dot_avx2(const float *m, size_t rows, size_t dim, const float *q, float *out);
CDX_INTERNAL void cdx_vec_dot8_avx2(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out);
CDX_INTERNAL void cdx_vec_dot4_avx2(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out);
#endif

#if defined(__aarch64__)
CDX_INTERNAL void cdx_vec_dot_neon(const float *m, size_t rows, size_t dim, const float *q, float *out);
CDX_INTERNAL void cdx_vec_dot8_neon(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out);
CDX_INTERNAL void cdx_vec_dot4_neon(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out);
CDX_INTERNAL void cdx_vec_dot8_neondot(const int8_t *c, size_t rows, size_t dim, const int8_t *p, int32_t *out);
CDX_INTERNAL void cdx_vec_dot4_neondot(const uint8_t *c, size_t rows, size_t rb, const int8_t *p, int32_t *out);
#endif

#endif
