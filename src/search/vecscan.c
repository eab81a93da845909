/*
 * vecscan.c - the brute-force scans of the vector search (vecscan.h): rows
 * are scored in blocks into a small buffer, each part of the rows (one pool
 * task) keeps its k best in a min-heap, and the heaps are merged and sorted
 * at the end. The parts are fixed by the row count and the context's thread
 * count, and the merge orders hits totally (score, then row), so results do
 * not depend on which thread ran what. The staged scans (int8 with a global
 * error bound, 4-bit with a per-row one) re-rank exactly with the same
 * float32 kernel, so their scores are the scan's to the bit.
 */
#include "search/vecscan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "tensor/dispatch.h"

#define VEC_BLOCK 64 /* rows scored per kernel call */
#define VEC_MAX_PARTS 64

/* a ranks below b: lower score, or equal score and a later row */
static int hit_worse(const clipdex_hit *a, const clipdex_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->row > b->row);
}

static int hit_cmp(const void *a, const void *b)
{
    const clipdex_hit *x = a, *y = b;
    if (hit_worse(y, x)) return -1;
    if (hit_worse(x, y)) return 1;
    return 0;
}

/* Min-heap of the k best hits: h[0] is the worst kept. */
typedef struct heap {
    clipdex_hit *h;
    size_t n, k;
} heap;

static void heap_push(heap *hp, clipdex_hit x)
{
    clipdex_hit *h = hp->h;
    if (hp->n < hp->k) {
        size_t i = hp->n++;
        while (i > 0) {
            size_t p = (i - 1) / 2;
            if (!hit_worse(&x, &h[p])) break;
            h[i] = h[p];
            i = p;
        }
        h[i] = x;
        return;
    }
    if (!hit_worse(&h[0], &x)) return;
    size_t i = 0, n = hp->n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const clipdex_hit *best = &x;
        if (l < n && hit_worse(&h[l], best)) { m = l; best = &h[l]; }
        if (r < n && hit_worse(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

/* pushes unless the heap is full and x is below its worst */
static void heap_offer(heap *hp, float score, size_t row)
{
    if (hp->n == hp->k && score < hp->h[0].score) return;
    heap_push(hp, (clipdex_hit){score, (uint32_t)row});
}

/* One part of a scan: rows [begin, end) and the heap of its best. */
typedef struct scan_part {
    size_t begin, end;
    heap hp;
} scan_part;

/* How many parts scan n rows: the context's threads, at least 1, at most
 * VEC_MAX_PARTS and no more than there are blocks. */
static size_t scan_parts_count(const clipdex_ctx *ctx, size_t n)
{
    size_t nt = ctx->n_threads < 1 ? 1 : (size_t)ctx->n_threads;
    if (nt > VEC_MAX_PARTS) nt = VEC_MAX_PARTS;
    if (nt > (n + VEC_BLOCK - 1) / VEC_BLOCK) nt = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    return nt;
}

/* Splits n rows into nt contiguous, block-aligned parts; part t keeps up to
 * cap hits in buf + t * cap. */
static void scan_parts_init(scan_part *parts, size_t nt, size_t n, clipdex_hit *buf, size_t cap)
{
    size_t blocks = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    for (size_t t = 0; t < nt; t++) {
        parts[t].begin = blocks * t / nt * VEC_BLOCK;
        parts[t].end = blocks * (t + 1) / nt * VEC_BLOCK;
        if (parts[t].end > n) parts[t].end = n;
        parts[t].hp = (heap){buf + t * cap, 0, cap};
    }
}

/* Moves the hits the nt parts kept to the front of buf (their heaps live in
 * it, in order); returns how many. */
static size_t scan_parts_gather(const scan_part *parts, size_t nt, clipdex_hit *buf)
{
    size_t total = 0;
    for (size_t t = 0; t < nt; t++) {
        memmove(buf + total, parts[t].hp.h, parts[t].hp.n * sizeof *buf);
        total += parts[t].hp.n;
    }
    return total;
}

/* ---- float32 scan ------------------------------------------------------- */

typedef struct scan_job {
    const float *m, *q;
    size_t dim;
    float threshold;
    cdx_vec_dot_fn dot;
    scan_part *parts;
} scan_job;

static void scan_task(void *arg, size_t t)
{
    const scan_job *j = arg;
    scan_part *pt = &j->parts[t];
    float s[VEC_BLOCK];
    for (size_t r0 = pt->begin; r0 < pt->end; r0 += VEC_BLOCK) {
        size_t nr = pt->end - r0 < VEC_BLOCK ? pt->end - r0 : VEC_BLOCK;
        j->dot(j->m + r0 * j->dim, nr, j->dim, j->q, s);
        for (size_t i = 0; i < nr; i++)
            if (s[i] >= j->threshold) heap_offer(&pt->hp, s[i], r0 + i);
    }
}

long cdx_vec_topk(clipdex_ctx *ctx, const float *m, size_t n, size_t dim, const float *q, size_t k,
                  float threshold, clipdex_hit *out)
{
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    size_t nt = scan_parts_count(ctx, n);
    scan_part parts[VEC_MAX_PARTS];
    clipdex_hit *all = malloc(nt * k * sizeof *all);
    if (!all) return -1;
    scan_parts_init(parts, nt, n, all, k);
    scan_job job = {m, q, dim, threshold, ctx->kern->vec_dot, parts};
    cdx_pool_run(ctx->pool, scan_task, &job, nt);
    /* merge: compact the heaps, sort, keep k */
    size_t total = scan_parts_gather(parts, nt, all);
    qsort(all, total, sizeof *all, hit_cmp);
    if (total > k) total = k;
    memcpy(out, all, total * sizeof *out);
    free(all);
    return (long)total;
}

/* ---- int8 scan + exact re-rank ------------------------------------------ */

typedef struct scan8_job {
    const int8_t *c, *p;
    const float *scale;
    double qscale;
    size_t dim;
    cdx_vec_dot8_fn dot;
    scan_part *parts;
} scan8_job;

static void scan8_task(void *arg, size_t t)
{
    const scan8_job *j = arg;
    scan_part *pt = &j->parts[t];
    int32_t d[VEC_BLOCK];
    for (size_t r0 = pt->begin; r0 < pt->end; r0 += VEC_BLOCK) {
        size_t nr = pt->end - r0 < VEC_BLOCK ? pt->end - r0 : VEC_BLOCK;
        j->dot(j->c + r0 * j->dim, nr, j->dim, j->p, d);
        for (size_t i = 0; i < nr; i++)
            heap_offer(&pt->hp, (float)((double)d[i] * j->scale[r0 + i] * j->qscale), r0 + i);
    }
}

/* The bound on |float32 score - int8 score| of every row for query q (whose
 * int8 scale is ts). x = s c + e (|e| <= s/2), q = t p + d (|d| <= t/2):
 * x.q - s t c.p = s c.d + e.q, so |.| <= t/2 ||s c||_1 + s/2 ||q||_1, with
 * ||s c||_1 <= ||x||_1 + dim s/2; plus the float32 rounding of the exact
 * score (<= 2 dim u ||x||_1 ||q||_inf) and a margin for the rest. */
static double q8_error(const cdx_q8_set *q8, const float *q, size_t dim, float ts)
{
    double q1 = 0, qmax = 0;
    for (size_t i = 0; i < dim; i++) {
        double a = fabs((double)q[i]);
        q1 += a;
        if (a > qmax) qmax = a;
    }
    double u = 1.0 / (1 << 24), smax = q8->max_scale, l1 = q8->max_l1;
    return (ts / 2.0) * (1 + 1e-6) * (l1 + (double)dim * smax / 2.0) + (smax / 2.0) * (1 + 1e-6) * q1 +
           2.0 * (double)dim * u * l1 * qmax + 1e-6;
}

/* Re-scores hits [0, total) exactly in float32, keeps those >= threshold,
 * sorts them; returns how many were kept. */
static size_t rescore(const clipdex_ctx *ctx, const float *m, size_t dim, const float *q, float threshold,
                      clipdex_hit *all, size_t total)
{
    size_t kept = 0;
    for (size_t i = 0; i < total; i++) {
        float s;
        ctx->kern->vec_dot(m + (size_t)all[i].row * dim, 1, dim, q, &s);
        if (!(s >= threshold)) continue;
        all[kept].score = s;
        all[kept].row = all[i].row;
        kept++;
    }
    qsort(all, kept, sizeof *all, hit_cmp);
    return kept;
}

long cdx_vec_topk_q8(clipdex_ctx *ctx, const cdx_q8_set *q8, const float *m, size_t n, size_t dim,
                     const float *q, size_t k, float threshold, clipdex_hit *out, int *fallback,
                     size_t *candidates)
{
    *fallback = 0;
    *candidates = 0;
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    size_t n_cand = q8->n_cand < k ? k : q8->n_cand;
    if (n_cand >= n) { /* every row is a candidate: the plain scan is as cheap */
        *candidates = n;
        return cdx_vec_topk(ctx, m, n, dim, q, k, threshold, out);
    }
    size_t nt = scan_parts_count(ctx, n);
    int8_t *p = malloc(dim);
    clipdex_hit *all = malloc(nt * n_cand * sizeof *all);
    if (!p || !all) {
        free(p);
        free(all);
        return -1;
    }
    float ts;
    clipdex_vec_q8_row(q, dim, p, &ts);
    double E = q8_error(q8, q, dim, ts);
    scan_part parts[VEC_MAX_PARTS];
    scan_parts_init(parts, nt, n, all, n_cand);
    scan8_job job = {q8->c, p, q8->scale, ts, dim, ctx->kern->vec_dot8, parts};
    cdx_pool_run(ctx->pool, scan8_task, &job, nt);
    size_t total = scan_parts_gather(parts, nt, all);
    qsort(all, total, sizeof *all, hit_cmp);
    if (total > n_cand) total = n_cand;
    /* every row left out scores at most a_min + E in float32 */
    double bound = (double)all[total - 1].score + E;
    size_t kept = rescore(ctx, m, dim, q, threshold, all, total);
    int proven = kept >= k ? (double)all[k - 1].score > bound : (double)threshold > bound;
    *candidates = total;
    long res;
    if (proven) {
        if (kept > k) kept = k;
        memcpy(out, all, kept * sizeof *out);
        res = (long)kept;
    } else {
        *fallback = 1;
        res = cdx_vec_topk(ctx, m, n, dim, q, k, threshold, out);
    }
    free(p);
    free(all);
    return res;
}

/* ---- 4-bit scan with a per-row bound + exact re-rank -------------------- */

typedef struct scan4_job {
    const uint8_t *c;
    const int8_t *p;
    const clipdex_vec_q4_info *info;
    size_t rb;
    int32_t psum8;    /* 8 * sum(p): the nibble offset */
    double t, cn, cr; /* query scale; factors of norm and resid */
    cdx_vec_dot4_fn dot;
    scan_part *parts;
} scan4_job;

/* u(r) >= the float32 score of row r (see cdx_vec_topk_q4), rounded up */
static float q4_upper(const scan4_job *j, size_t r, int32_t raw)
{
    const clipdex_vec_q4_info *ri = &j->info[r];
    double u = (double)(raw - j->psum8) * ri->scale * j->t + ri->norm * j->cn + ri->resid * j->cr + 1e-6;
    u += fabs(u) * 1e-6; /* covers the double products and the float cast */
    return (float)u;
}

static void scan4_task(void *arg, size_t t)
{
    const scan4_job *j = arg;
    scan_part *pt = &j->parts[t];
    int32_t d[VEC_BLOCK];
    for (size_t r0 = pt->begin; r0 < pt->end; r0 += VEC_BLOCK) {
        size_t nr = pt->end - r0 < VEC_BLOCK ? pt->end - r0 : VEC_BLOCK;
        j->dot(j->c + r0 * j->rb, nr, j->rb, j->p, d);
        for (size_t i = 0; i < nr; i++) heap_offer(&pt->hp, q4_upper(j, r0 + i, d[i]), r0 + i);
    }
}

/* The 4-bit job for query q: q = t p + d, ||d|| and ||q|| in double rounded
 * up. x = s c + e: x.q = s t <c, p> + s <c, d> + <e, q>, |s <c, d>| <=
 * norm ||d||, |<e, q>| <= resid ||q||; the float32 score differs from x.q
 * by at most 2 dim u sum|x_i q_i| <= 2 dim u (norm + resid) ||q||. */
static void q4_job_init(scan4_job *j, const float *q, size_t dim, int8_t *p)
{
    float t;
    clipdex_vec_q8_row(q, dim, p, &t);
    double d2 = 0, q2 = 0;
    int32_t psum = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)q[i] - (double)t * p[i];
        d2 += d * d;
        q2 += (double)q[i] * q[i];
        psum += p[i];
    }
    double dn = sqrt(d2) * (1 + 1e-6), qn = sqrt(q2) * (1 + 1e-6);
    double rho = 2.0 * (double)dim / (double)(1 << 24) * qn;
    j->p = p;
    j->psum8 = 8 * psum;
    j->t = t;
    j->cn = dn + rho;
    j->cr = qn + rho;
}

/* Max-heap on score (ties: lower row first) for taking candidates in
 * decreasing upper bound. */
static void maxheap_down(clipdex_hit *h, size_t n, size_t i)
{
    clipdex_hit x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const clipdex_hit *best = &x;
        if (l < n && hit_worse(best, &h[l])) { m = l; best = &h[l]; }
        if (r < n && hit_worse(best, &h[r])) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

/* A hopeless case gives up at once: the proof needs the k-th exact score
 * above the bound, and the k-th best centre estimate (u less its error
 * terms) is a fair guess of that score; when it is not above the bound,
 * re-ranking would almost surely be wasted (a heuristic: giving up only
 * hands over to the next stage, it cannot change the answer). top: k
 * scratch hits. */
static int q4_hopeless(const scan4_job *j, const clipdex_hit *all, size_t total, size_t k, float threshold,
                       double bound, clipdex_hit *top)
{
    heap guess = {top, 0, k};
    for (size_t i = 0; i < total; i++) {
        const clipdex_vec_q4_info *ri = &j->info[all[i].row];
        heap_offer(&guess, (float)((double)all[i].score - ri->norm * j->cn - ri->resid * j->cr), all[i].row);
    }
    return guess.n == k && !((double)guess.h[0].score > bound) && !((double)threshold > bound);
}

/* Re-ranks the candidates all[0, left) in decreasing u into `best`; stops
 * once u is below the k-th exact score (then every later candidate is too)
 * or below the threshold. Returns the rows re-scored. */
static size_t q4_rerank(const clipdex_ctx *ctx, const float *m, size_t dim, const float *q, float threshold,
                        clipdex_hit *all, size_t left, heap *best)
{
    size_t reranked = 0;
    for (size_t i = left / 2; i-- > 0;) maxheap_down(all, left, i);
    while (left > 0) {
        float u = all[0].score;
        if (!(u >= threshold)) break;
        if (best->n == best->k && u < best->h[0].score) break;
        uint32_t row = all[0].row;
        all[0] = all[--left];
        if (left > 0) maxheap_down(all, left, 0);
        float s;
        ctx->kern->vec_dot(m + (size_t)row * dim, 1, dim, q, &s);
        reranked++;
        if (s >= threshold) heap_push(best, (clipdex_hit){s, row});
    }
    return reranked;
}

long cdx_vec_topk_q4(clipdex_ctx *ctx, const uint8_t *c, const clipdex_vec_q4_info *info, const float *m,
                     size_t n, size_t dim, const float *q, size_t k, float threshold, size_t n_cand,
                     const cdx_q8_set *q8, clipdex_hit *out, clipdex_search_stats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->stage = 4;
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    if (n_cand < k) n_cand = k;
    size_t nt = scan_parts_count(ctx, n), rb = clipdex_vec_q4_row_bytes(dim);
    int8_t *p = calloc(2 * rb, 1);
    clipdex_hit *all = malloc(nt * n_cand * sizeof *all), *top = malloc(k * sizeof *top);
    if (!p || !all || !top) {
        free(p);
        free(all);
        free(top);
        return -1;
    }
    scan_part parts[VEC_MAX_PARTS];
    scan_parts_init(parts, nt, n, all, n_cand);
    scan4_job job = {.c = c, .info = info, .rb = rb, .dot = ctx->kern->vec_dot4, .parts = parts};
    q4_job_init(&job, q, dim, p);
    cdx_pool_run(ctx->pool, scan4_task, &job, nt);
    /* every row a part left out has u <= that part's smallest kept u */
    double bound = -INFINITY;
    for (size_t t = 0; t < nt; t++) {
        const heap *hp = &parts[t].hp;
        if (hp->n == hp->k && (double)hp->h[0].score > bound) bound = hp->h[0].score;
    }
    size_t total = scan_parts_gather(parts, nt, all);
    stats->candidates = total;
    size_t left = q4_hopeless(&job, all, total, k, threshold, bound, top) ? 0 : total;
    heap best = {top, 0, k};
    stats->reranked = q4_rerank(ctx, m, dim, q, threshold, all, left, &best);
    int proven = best.n == k ? (double)best.h[0].score > bound : (double)threshold > bound;
    long res;
    if (proven) {
        qsort(top, best.n, sizeof *top, hit_cmp);
        memcpy(out, top, best.n * sizeof *out);
        res = (long)best.n;
    } else if (q8) {
        int fb;
        res = cdx_vec_topk_q8(ctx, q8, m, n, dim, q, k, threshold, out, &fb, &stats->candidates);
        stats->stage = fb ? 32 : 8;
        stats->reranked = 0;
    } else {
        stats->stage = 32;
        res = cdx_vec_topk(ctx, m, n, dim, q, k, threshold, out);
    }
    free(p);
    free(all);
    free(top);
    return res;
}
