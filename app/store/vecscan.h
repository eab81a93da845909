/*
 * vecscan.h - exhaustive top-k search over a contiguous row-major matrix of
 * float32 vectors: SIMD dot products (AVX2/FMA when the CPU has them, a
 * scalar reference otherwise), a bounded min-heap per thread, and a merge.
 * An int8 copy of the rows (a quarter of the bytes) can be scanned first and
 * the best candidates re-ranked exactly in float32, with an error bound that
 * proves the result equals the float32 scan (else it falls back to it).
 * A 4-bit copy (an eighth of the bytes) with a per-row error bound can be
 * scanned before that, falling back to the int8 stage and then the float32
 * scan whenever its bound cannot prove the top k.
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

/* ---- compact 4-bit copy with a per-row bound ----------------------------- */

/* Bytes of one row's 4-bit codes: dim rounded up to a multiple of 64, two
 * codes a byte. In each 64-dimension block b the 32 bytes hold code + 8 of
 * dimension 64b + j in the low nibble and of 64b + 32 + j in the high one;
 * padding dimensions hold code 0 (nibble 8). */
size_t vec_q4_row_bytes(size_t dim);

/* What bounds one row's 4-bit error (12 bytes, no padding). */
typedef struct vec_q4_row_info {
    float scale; /* x[i] ~= scale * code[i], code in [-8, 7] */
    float norm;  /* ||scale * code||_2, rounded up */
    float resid; /* ||x - scale * code||_2, rounded up */
} vec_q4_row_info;

/* Quantizes one row into vec_q4_row_bytes(dim) bytes at c: the scale is the
 * one of a few (max|x| / 7 times 1, 0.85, 0.7, 0.6, 0.5) with the smallest
 * residual, clipping the largest coordinates when that pays. */
void vec_q4_row(const float *x, size_t dim, uint8_t *c, vec_q4_row_info *info);

/* The int8 stage a 4-bit search falls back to (NULL: the float32 scan). */
typedef struct vec_q8_set {
    const int8_t *c;
    const float *scale;
    vec_q8_bounds b;
    size_t n_cand;
} vec_q8_set;

typedef struct vec_q4_stats {
    size_t candidates; /* rows kept by the 4-bit scan (all threads) */
    size_t reranked;   /* of those, rows re-scored in float32 */
    int stage;         /* what gave the answer: 4 (4-bit stage proven), 8 (int8
                          stage proven), 32 (the full float32 scan) */
} vec_q4_stats;

/* The same result as vec_topk (bit for bit) in two stages: each thread scans
 * its rows' 4-bit codes `c` against the int8 query and keeps the n_cand
 * rows with the highest upper bounds u(r) >= float32 score(r) (from `info`:
 * u = scale t <code, p> + norm ||q - t p|| + resid ||q|| + rounding terms);
 * the candidates are re-scored in float32 in decreasing u until u falls
 * below the k-th exact score (or the threshold). The answer is proven when
 * that score (or the threshold) beats the largest bound of any row left out;
 * otherwise (or at once, without re-ranking, when the k-th best estimate
 * already fails that test) vec_topk_q8 with `q8` (or vec_topk when q8 is
 * NULL) answers.
 * Returns the number of hits written or -1 when memory ran out. */
long vec_topk_q4(const uint8_t *c, const vec_q4_row_info *info, const float *m, size_t n,
                 size_t dim, const float *q, size_t k, float threshold, int n_threads,
                 size_t n_cand, const vec_q8_set *q8, vec_hit *out, vec_q4_stats *stats);

/* The 4-bit kernel ("avx2" or "scalar"). */
const char *vec_q4_kernel_name(void);

#endif
