/*
 * vecscan.h - exhaustive top-k search over a contiguous row-major matrix of
 * float32 vectors: SIMD dot products (AVX2/FMA when the CPU has them, a
 * scalar reference otherwise), a bounded min-heap per thread, and a merge.
 * Pure computation: no files, no SQLite (bench/index_search.c links it alone).
 */
#ifndef CLIPDEX_APP_VECSCAN_H
#define CLIPDEX_APP_VECSCAN_H

#include <stddef.h>
#include <stdint.h>

typedef struct vec_hit {
    float score;  /* dot product with the query */
    uint32_t row; /* row of the matrix */
} vec_hit;

/* Scores the n rows of m (n x dim) against q (dim) and writes the best
 * min(k, hits) rows with score >= threshold to out, best first (ties: lower
 * row first). Rows are split over n_threads threads (0 or 1: the caller's
 * thread only); the result does not depend on n_threads. Returns the number
 * written, or -1 if memory ran out. CLIPDEX_FORCE_SCALAR=1 forces the
 * scalar kernel. */
long vec_topk(const float *m, size_t n, size_t dim, const float *q, size_t k, float threshold,
              int n_threads, vec_hit *out);

/* The dot product kernel vec_topk uses ("avx2" or "scalar"). */
const char *vec_kernel_name(void);

#endif
