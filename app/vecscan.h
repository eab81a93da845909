/*
 * vecscan.h - exhaustive top-k search over a contiguous row-major matrix of
 * float32 vectors: SIMD dot products (AVX2/FMA when the CPU has them, a
 * scalar reference otherwise), a bounded min-heap per thread, and a merge.
 * An int8 copy of the rows (a quarter of the bytes) can be scanned first and
 * the best candidates re-ranked exactly in float32, with an error bound that
 * proves the result equals the float32 scan (else it falls back to it).
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

/* ---- compact int8 copy with an exact re-rank ---------------------------- */

/* Quantizes one row: x[i] ~= *scale * c[i], c in [-127, 127], *scale =
 * max|x| / 127 (0 for a zero row). */
void vec_q8_row(const float *x, size_t dim, int8_t *c, float *scale);

/* The error terms of a quantized matrix: the largest row scale and the
 * largest row L1 norm (of the float rows). */
typedef struct vec_q8_bounds {
    float max_scale, max_l1;
} vec_q8_bounds;

typedef struct vec_q8_stats {
    size_t candidates; /* rows re-ranked in float32 */
    int fallback;      /* 1: the bound did not prove the candidates hold the
                          top k, so the full float32 scan was run */
} vec_q8_stats;

/* The same result as vec_topk (bit for bit: same scores, same order) in
 * two stages: scan the int8 copy `c` (n x dim, row scales `scale`) for the
 * n_cand best approximate scores, re-score those rows exactly on the float32
 * matrix m, keep the k best. The quantization error of every score is
 * bounded from `b`; when the bound cannot prove that no row outside the
 * candidates could enter the top k (or pass the threshold), the full
 * float32 scan runs instead (stats->fallback). Returns the number of hits
 * written or -1 when memory ran out. stats may be NULL. */
long vec_topk_q8(const int8_t *c, const float *scale, vec_q8_bounds b, const float *m, size_t n,
                 size_t dim, const float *q, size_t k, float threshold, int n_threads,
                 size_t n_cand, vec_hit *out, vec_q8_stats *stats);

/* The int8 dot product kernel ("avx2" or "scalar"). */
const char *vec_q8_kernel_name(void);

#endif
