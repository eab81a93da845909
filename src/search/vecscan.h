/*
 * vecscan.h - the exhaustive top-k scans behind clipdex_vecs_search
 * (vecs.c): the float32 scan, the int8 scan with an exact re-rank, and the
 * 4-bit scan with a per-row bound that cascades to them. Kernels come from
 * the context's table (tensor/dispatch.h), threads from its pool; every
 * result is independent of the thread count, and the staged scans return
 * exactly the float32 scan's hits or fall back to it.
 */
#ifndef CDX_VECSCAN_H
#define CDX_VECSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"
#include "core/core.h"

/* The error terms of an int8 copy: its largest row scale and the largest
 * L1 norm of a float32 row. */
typedef struct cdx_q8_set {
    const int8_t *c;    /* [n, dim] codes */
    const float *scale; /* [n] */
    float max_scale, max_l1;
    size_t n_cand; /* rows re-ranked in float32 */
} cdx_q8_set;

/* Scores the n rows of m (n x dim) against q and writes the best
 * min(k, hits) rows with score >= threshold to out, best first (ties: lower
 * row first). Returns the number written, or -1 if memory ran out. */
CDX_INTERNAL long cdx_vec_topk(clipdex_ctx *ctx, const float *m, size_t n, size_t dim, const float *q,
                               size_t k, float threshold, clipdex_hit *out);

/* The same hits (bit for bit) in two stages: scan the int8 copy for the
 * q8->n_cand best approximate scores, re-score those exactly, keep the k
 * best; when the error bound cannot prove that no other row could enter
 * (or pass the threshold), the full float32 scan answers (*fallback = 1).
 * *candidates: the rows re-ranked. */
CDX_INTERNAL long cdx_vec_topk_q8(clipdex_ctx *ctx, const cdx_q8_set *q8, const float *m, size_t n, size_t dim,
                                  const float *q, size_t k, float threshold, clipdex_hit *out, int *fallback,
                                  size_t *candidates);

/* The same hits (bit for bit) from the 4-bit copy (c, info): each thread
 * keeps the n_cand rows with the highest upper bounds u(r) >= score(r),
 * which are re-scored in decreasing u until u falls below the k-th exact
 * score; proven when that score (or the threshold) beats every left-out
 * bound, else cdx_vec_topk_q8 with q8 (or cdx_vec_topk when q8 is NULL)
 * answers. stats->stage says which (4, 8 or 32). */
CDX_INTERNAL long cdx_vec_topk_q4(clipdex_ctx *ctx, const uint8_t *c, const clipdex_vec_q4_info *info,
                                  const float *m, size_t n, size_t dim, const float *q, size_t k,
                                  float threshold, size_t n_cand, const cdx_q8_set *q8, clipdex_hit *out,
                                  clipdex_search_stats *stats);

#endif
