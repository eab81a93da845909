/*
 * vecscan.c - the brute-force vector scan behind `clipdex search`: rows are
 * scored in blocks into a small buffer, each thread keeps its k best in a
 * min-heap, and the per-thread heaps are merged and sorted at the end.
 * Two staged variants scan compact copies first (int8 with a global error
 * bound, 4-bit with a per-row one) and re-rank exactly, falling back when
 * the bound cannot prove the top k.
 */
#include "store/vecscan.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define VEC_BLOCK 64   /* rows scored per kernel call */
#define VEC_MAX_THREADS 64

typedef void (*dot_fn)(const float *m, size_t rows, size_t dim, const float *q, float *out);

/* m (rows, dim) @ q (dim,) -> out (rows,), scalar reference. */
static void dot_rows_scalar(const float *m, size_t rows, size_t dim, const float *q, float *out)
{
    for (size_t r = 0; r < rows; r++) {
        const float *x = m + r * dim;
        float s = 0;
        for (size_t i = 0; i < dim; i++) s += x[i] * q[i];
        out[r] = s;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
/* m (rows, dim) @ q (dim,) -> out (rows,) with 4 independent 8-lane FMA
 * accumulators; a scalar tail for dim % 8. */
__attribute__((target("avx2,fma"))) static void dot_rows_avx2(const float *m, size_t rows,
                                                                size_t dim, const float *q,
                                                                float *out)
{
    size_t d32 = dim & ~(size_t)31, d8 = dim & ~(size_t)7;
    for (size_t r = 0; r < rows; r++) {
        const float *x = m + r * dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        __m256 a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        size_t i = 0;
        for (; i < d32; i += 32) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(q + i), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8), _mm256_loadu_ps(q + i + 8), a1);
            a2 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 16), _mm256_loadu_ps(q + i + 16), a2);
            a3 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 24), _mm256_loadu_ps(q + i + 24), a3);
        }
        for (; i < d8; i += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(q + i), a0);
        __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; i < dim; i++) s += x[i] * q[i];
        out[r] = s;
    }
}
#endif

static dot_fn pick_kernel(const char **name)
{
    const char *force = getenv("CLIPDEX_FORCE_SCALAR");
    int scalar = force && force[0] && strcmp(force, "0") != 0;
#ifdef HAVE_AVX2_KERNEL
    if (!scalar) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
            if (name) *name = "avx2";
            return dot_rows_avx2;
        }
    }
#endif
    (void)scalar;
    if (name) *name = "scalar";
    return dot_rows_scalar;
}

const char *vec_kernel_name(void)
{
    const char *name = "scalar";
    pick_kernel(&name);
    return name;
}

/* a ranks below b: lower score, or equal score and a later row */
static int hit_worse(const vec_hit *a, const vec_hit *b)
{
    return a->score < b->score || (a->score == b->score && a->row > b->row);
}

/* Min-heap of the k best hits: h[0] is the worst kept. */
typedef struct heap {
    vec_hit *h;
    size_t n, k;
} heap;

static void heap_push(heap *hp, vec_hit x)
{
    vec_hit *h = hp->h;
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
        const vec_hit *best = &x;
        if (l < n && hit_worse(&h[l], best)) { m = l; best = &h[l]; }
        if (r < n && hit_worse(&h[r], best)) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

/* Runs fn on jobs[0..nt) (each `size` bytes): jobs 1.. on new threads, job 0
 * on the caller; a job whose thread could not start runs on the caller too. */
static void run_jobs(void *(*fn)(void *), void *jobs, size_t size, size_t nt)
{
    pthread_t tid[VEC_MAX_THREADS];
    int started[VEC_MAX_THREADS] = {0};
    char *base = jobs;
    for (size_t t = 1; t < nt; t++) started[t] = pthread_create(&tid[t], NULL, fn, base + t * size) == 0;
    fn(base);
    for (size_t t = 1; t < nt; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else fn(base + t * size);
    }
}

/* One thread's share of a scan: rows [begin, end) and the heap of its best. */
typedef struct scan_part {
    size_t begin, end;
    heap hp;
} scan_part;

/* How many threads scan n rows: n_threads, at least 1, at most
 * VEC_MAX_THREADS and no more than there are blocks. */
static size_t scan_threads(size_t n, int n_threads)
{
    size_t nt = n_threads < 1 ? 1 : (size_t)n_threads;
    if (nt > VEC_MAX_THREADS) nt = VEC_MAX_THREADS;
    if (nt > (n + VEC_BLOCK - 1) / VEC_BLOCK) nt = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    return nt;
}

/* Splits n rows into nt contiguous, block-aligned parts; part t keeps up to
 * cap hits in buf + t * cap. */
static void scan_parts_init(scan_part *parts, size_t nt, size_t n, vec_hit *buf, size_t cap)
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
static size_t scan_parts_gather(const scan_part *parts, size_t nt, vec_hit *buf)
{
    size_t total = 0;
    for (size_t t = 0; t < nt; t++) {
        memmove(buf + total, parts[t].hp.h, parts[t].hp.n * sizeof *buf);
        total += parts[t].hp.n;
    }
    return total;
}

typedef struct scan_job {
    const float *m, *q;
    size_t dim;
    float threshold;
    dot_fn dot;
    scan_part *pt;
} scan_job;

static void *scan_run(void *arg)
{
    scan_job *j = arg;
    float s[VEC_BLOCK];
    for (size_t r0 = j->pt->begin; r0 < j->pt->end; r0 += VEC_BLOCK) {
        size_t nr = j->pt->end - r0 < VEC_BLOCK ? j->pt->end - r0 : VEC_BLOCK;
        j->dot(j->m + r0 * j->dim, nr, j->dim, j->q, s);
        for (size_t i = 0; i < nr; i++) {
            if (!(s[i] >= j->threshold)) continue;
            if (j->pt->hp.n == j->pt->hp.k && s[i] < j->pt->hp.h[0].score) continue;
            heap_push(&j->pt->hp, (vec_hit){s[i], (uint32_t)(r0 + i)});
        }
    }
    return NULL;
}

static int hit_cmp(const void *a, const void *b)
{
    const vec_hit *x = a, *y = b;
    if (hit_worse(y, x)) return -1;
    if (hit_worse(x, y)) return 1;
    return 0;
}

long vec_topk(const float *m, size_t n, size_t dim, const float *q, size_t k, float threshold,
              int n_threads, vec_hit *out)
{
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    size_t nt = scan_threads(n, n_threads);
    scan_job jobs[VEC_MAX_THREADS];
    scan_part parts[VEC_MAX_THREADS];
    vec_hit *all = malloc(nt * k * sizeof *all);
    if (!all) return -1;
    dot_fn dot = pick_kernel(NULL);
    scan_parts_init(parts, nt, n, all, k);
    for (size_t t = 0; t < nt; t++)
        jobs[t] = (scan_job){.m = m, .q = q, .dim = dim, .threshold = threshold, .dot = dot,
                             .pt = &parts[t]};
    run_jobs(scan_run, jobs, sizeof jobs[0], nt);
    /* merge: compact the heaps, sort, keep k */
    size_t total = scan_parts_gather(parts, nt, all);
    qsort(all, total, sizeof *all, hit_cmp);
    if (total > k) total = k;
    memcpy(out, all, total * sizeof *out);
    free(all);
    return (long)total;
}

/* ---- int8 scan + exact re-rank --------------------------------------------- */

typedef int32_t (*dot8_fn)(const int8_t *a, const int8_t *b, size_t dim);

/* <a, b> over int8 vectors, exact in int32 (|a|,|b| <= 127, dim < 2^17). */
static int32_t dot8_scalar(const int8_t *a, const int8_t *b, size_t dim)
{
    int32_t s = 0;
    for (size_t i = 0; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}

#ifdef HAVE_AVX2_KERNEL
/* 32 lanes at a time: maddubs(|a|, sign(b, a)) gives pairwise int16 sums
 * (at most 2 x 127 x 127, no saturation), madd with ones widens to int32. */
__attribute__((target("avx2"))) static int32_t dot8_avx2(const int8_t *a, const int8_t *b,
                                                         size_t dim)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc = _mm256_setzero_si256();
    size_t i = 0, d32 = dim & ~(size_t)31;
    for (; i < d32; i += 32) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(a + i));
        __m256i y = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x));
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, ones));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t s = _mm_cvtsi128_si32(h);
    for (; i < dim; i++) s += (int32_t)a[i] * b[i];
    return s;
}
#endif

#ifdef HAVE_AVX2_KERNEL
/* Four rows against one query at once (dim % 32 == 0): the query is loaded
 * once per step and the four horizontal sums share one reduction. */
__attribute__((target("avx2"))) static void dot8_rows4_avx2(const int8_t *c, size_t dim,
                                                            const int8_t *p, int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    const int8_t *r0 = c, *r1 = c + dim, *r2 = c + 2 * dim, *r3 = c + 3 * dim;
    for (size_t i = 0; i < dim; i += 32) {
        __m256i y = _mm256_loadu_si256((const __m256i *)(p + i));
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(r0 + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(r1 + i));
        __m256i x2 = _mm256_loadu_si256((const __m256i *)(r2 + i));
        __m256i x3 = _mm256_loadu_si256((const __m256i *)(r3 + i));
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x0, x0), _mm256_sign_epi8(y, x0)), ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x1, x1), _mm256_sign_epi8(y, x1)), ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x2, x2), _mm256_sign_epi8(y, x2)), ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(x3, x3), _mm256_sign_epi8(y, x3)), ones));
    }
    /* hadd pairs: [a0 a1 a0 a1 | ...] then [a0 a1 a2 a3 | ...] */
    __m256i h01 = _mm256_hadd_epi32(a0, a1), h23 = _mm256_hadd_epi32(a2, a3);
    __m256i h = _mm256_hadd_epi32(h01, h23);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)out, s);
}
#endif

static dot8_fn pick_kernel8(const char **name)
{
    const char *force = getenv("CLIPDEX_FORCE_SCALAR");
    int scalar = force && force[0] && strcmp(force, "0") != 0;
#ifdef HAVE_AVX2_KERNEL
    if (!scalar) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) {
            if (name) *name = "avx2";
            return dot8_avx2;
        }
    }
#endif
    (void)scalar;
    if (name) *name = "scalar";
    return dot8_scalar;
}

const char *vec_q8_kernel_name(void)
{
    const char *name = "scalar";
    pick_kernel8(&name);
    return name;
}

void vec_q8_row(const float *x, size_t dim, int8_t *c, float *scale)
{
    float mx = 0;
    for (size_t i = 0; i < dim; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > mx) mx = a;
    }
    *scale = mx / 127.0f;
    for (size_t i = 0; i < dim; i++) {
        float v = mx > 0 ? x[i] / *scale : 0;
        long r = lrintf(v);
        c[i] = (int8_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
}

typedef struct scan8_job {
    const int8_t *c, *p;
    const float *scale;
    double qscale;
    size_t dim;
    dot8_fn dot;
    scan_part *pt;
} scan8_job;

static void *scan8_run(void *arg)
{
    scan8_job *j = arg;
    int32_t d[4];
    size_t r = j->pt->begin;
#ifdef HAVE_AVX2_KERNEL
    if (j->dot == dot8_avx2 && j->dim % 32 == 0) { /* same integers, four rows at a time */
        for (; r + 4 <= j->pt->end; r += 4) {
            dot8_rows4_avx2(j->c + r * j->dim, j->dim, j->p, d);
            for (int i = 0; i < 4; i++) {
                float s = (float)((double)d[i] * j->scale[r + i] * j->qscale);
                if (j->pt->hp.n == j->pt->hp.k && s < j->pt->hp.h[0].score) continue;
                heap_push(&j->pt->hp, (vec_hit){s, (uint32_t)(r + i)});
            }
        }
    }
#endif
    for (; r < j->pt->end; r++) {
        d[0] = j->dot(j->c + r * j->dim, j->p, j->dim);
        float s = (float)((double)d[0] * j->scale[r] * j->qscale);
        if (j->pt->hp.n == j->pt->hp.k && s < j->pt->hp.h[0].score) continue;
        heap_push(&j->pt->hp, (vec_hit){s, (uint32_t)r});
    }
    return NULL;
}

long vec_topk_q8(const int8_t *c, const float *scale, vec_q8_bounds b, const float *m, size_t n,
                 size_t dim, const float *q, size_t k, float threshold, int n_threads,
                 size_t n_cand, vec_hit *out, vec_q8_stats *stats)
{
    vec_q8_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    if (n_cand < k) n_cand = k;
    if (n_cand >= n) { /* every row is a candidate: the plain scan is as cheap */
        stats->candidates = n;
        return vec_topk(m, n, dim, q, k, threshold, n_threads, out);
    }
    size_t nt = scan_threads(n, n_threads);
    /* the query in int8, and the bound on |float32 score - int8 score| */
    int8_t *p = malloc(dim);
    vec_hit *all = malloc(nt * n_cand * sizeof *all);
    if (!p || !all) {
        free(p);
        free(all);
        return -1;
    }
    float ts;
    vec_q8_row(q, dim, p, &ts);
    double q1 = 0, qmax = 0;
    for (size_t i = 0; i < dim; i++) {
        double a = q[i] < 0 ? -(double)q[i] : q[i];
        q1 += a;
        if (a > qmax) qmax = a;
    }
    /* x = s c + e (|e| <= s/2), q = t p + d (|d| <= t/2):
     * x.q - s t c.p = s c.d + e.q, so |.| <= t/2 ||s c||_1 + s/2 ||q||_1, with
     * ||s c||_1 <= ||x||_1 + dim s/2; plus the float32 rounding of the exact
     * score (<= 2 dim u ||x||_1 ||q||_inf) and a margin for the rest */
    double u = 1.0 / (1 << 24), smax = b.max_scale, l1 = b.max_l1;
    double E = (ts / 2.0) * (1 + 1e-6) * (l1 + (double)dim * smax / 2.0) +
               (smax / 2.0) * (1 + 1e-6) * q1 + 2.0 * (double)dim * u * l1 * qmax + 1e-6;
    dot8_fn dot = pick_kernel8(NULL);
    scan8_job jobs[VEC_MAX_THREADS];
    scan_part parts[VEC_MAX_THREADS];
    scan_parts_init(parts, nt, n, all, n_cand);
    for (size_t t = 0; t < nt; t++)
        jobs[t] = (scan8_job){.c = c, .p = p, .scale = scale, .qscale = ts, .dim = dim, .dot = dot,
                              .pt = &parts[t]};
    run_jobs(scan8_run, jobs, sizeof jobs[0], nt);
    size_t total = scan_parts_gather(parts, nt, all);
    qsort(all, total, sizeof *all, hit_cmp);
    if (total > n_cand) total = n_cand;
    /* every row left out scores at most a_min + E in float32 */
    float a_min = all[total - 1].score;
    /* re-rank exactly with the float32 kernel (the same per-row arithmetic
     * as vec_topk, so the scores are identical) */
    dot_fn fdot = pick_kernel(NULL);
    size_t kept = 0;
    for (size_t i = 0; i < total; i++) {
        float s;
        fdot(m + (size_t)all[i].row * dim, 1, dim, q, &s);
        if (!(s >= threshold)) continue;
        all[kept].score = s;
        all[kept].row = all[i].row;
        kept++;
    }
    qsort(all, kept, sizeof *all, hit_cmp);
    double bound = (double)a_min + E;
    int proven = kept >= k ? (double)all[k - 1].score > bound : (double)threshold > bound;
    stats->candidates = total;
    long res;
    if (proven) {
        if (kept > k) kept = k;
        memcpy(out, all, kept * sizeof *out);
        res = (long)kept;
    } else {
        stats->fallback = 1;
        res = vec_topk(m, n, dim, q, k, threshold, n_threads, out);
    }
    free(p);
    free(all);
    return res;
}

/* ---- 4-bit scan with a per-row bound + exact re-rank ---------------------- */

size_t vec_q4_row_bytes(size_t dim) { return (dim + 63) / 64 * 32; }

/* byte and shift of dimension i in a row of 4-bit codes */
static size_t q4_byte(size_t i) { return i / 64 * 32 + i % 32; }
static unsigned q4_shift(size_t i) { return i % 64 >= 32 ? 4u : 0u; }

static int q4_code(float x, float s)
{
    long r = lrintf(x / s);
    return (int)(r > 7 ? 7 : r < -8 ? -8 : r);
}

void vec_q4_row(const float *x, size_t dim, uint8_t *c, vec_q4_row_info *info)
{
    static const float frac[] = {1.0f, 0.85f, 0.7f, 0.6f, 0.5f};
    float mx = 0;
    for (size_t i = 0; i < dim; i++) {
        float a = x[i] < 0 ? -x[i] : x[i];
        if (a > mx) mx = a;
    }
    float best_s = 0;
    if (mx > 0) {
        double best = INFINITY;
        for (size_t f = 0; f < sizeof frac / sizeof frac[0]; f++) {
            float s = mx * frac[f] / 7.0f;
            if (!(s > 0)) continue;
            double e2 = 0;
            for (size_t i = 0; i < dim; i++) {
                double e = (double)x[i] - (double)s * q4_code(x[i], s);
                e2 += e * e;
            }
            if (e2 < best) {
                best = e2;
                best_s = s;
            }
        }
    }
    memset(c, 0x88, vec_q4_row_bytes(dim));
    double n2 = 0, r2 = 0;
    for (size_t i = 0; i < dim; i++) {
        int code = best_s > 0 ? q4_code(x[i], best_s) : 0;
        size_t b = q4_byte(i);
        unsigned sh = q4_shift(i);
        c[b] = (uint8_t)((c[b] & ~(0xFu << sh)) | ((unsigned)(code + 8) << sh));
        double v = (double)best_s * code, e = (double)x[i] - v; /* both exact in double */
        n2 += v * v;
        r2 += e * e;
    }
    info->scale = best_s;
    /* rounded up: the sums carry relative errors far below 1e-6 */
    info->norm = (float)(sqrt(n2) * (1 + 1e-6));
    info->resid = (float)(sqrt(r2) * (1 + 1e-6));
}

/* sum of nibble(i) * p[i] over the padded dimensions dp (a multiple of 64):
 * the raw unsigned codes; the caller subtracts 8 * sum(p). Scalar reference. */
static int32_t dot4_scalar(const uint8_t *c, const int8_t *p, size_t dp)
{
    int32_t s = 0;
    for (size_t b = 0; b < dp; b += 64)
        for (size_t j = 0; j < 32; j++) {
            unsigned v = c[b / 2 + j];
            s += (int32_t)(v & 15) * p[b + j] + (int32_t)(v >> 4) * p[b + 32 + j];
        }
    return s;
}

#ifdef HAVE_AVX2_KERNEL
/* The same sums for four consecutive rows (rb bytes apart): per 64
 * dimensions one 32-byte load per row, low and high nibbles times the two
 * query halves with maddubs (pair sums <= 2 x 15 x 127); int16 lanes add up
 * to four blocks (<= 30480) before widening to int32 with madd. */
#define Q4_STEP(v, acc)                                                                       \
    do {                                                                                      \
        __m256i lo_ = _mm256_and_si256(v, m15), hi_ = _mm256_and_si256(_mm256_srli_epi16(v, 4), m15); \
        acc = _mm256_add_epi16(acc, _mm256_add_epi16(_mm256_maddubs_epi16(lo_, y0),           \
                                                     _mm256_maddubs_epi16(hi_, y1)));         \
    } while (0)
__attribute__((target("avx2"))) static void dot4_rows4_avx2(const uint8_t *c, size_t rb,
                                                            size_t dp, const int8_t *p,
                                                            int32_t *out)
{
    const __m256i ones = _mm256_set1_epi16(1), m15 = _mm256_set1_epi8(15);
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t b0 = 0; b0 < dp; b0 += 256) {
        size_t e = b0 + 256 < dp ? b0 + 256 : dp;
        __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t b = b0; b < e; b += 64) {
            __m256i y0 = _mm256_loadu_si256((const __m256i *)(p + b));
            __m256i y1 = _mm256_loadu_si256((const __m256i *)(p + b + 32));
            __m256i v0 = _mm256_loadu_si256((const __m256i *)(c + b / 2));
            __m256i v1 = _mm256_loadu_si256((const __m256i *)(c + rb + b / 2));
            __m256i v2 = _mm256_loadu_si256((const __m256i *)(c + 2 * rb + b / 2));
            __m256i v3 = _mm256_loadu_si256((const __m256i *)(c + 3 * rb + b / 2));
            Q4_STEP(v0, s0);
            Q4_STEP(v1, s1);
            Q4_STEP(v2, s2);
            Q4_STEP(v3, s3);
        }
        a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(s0, ones));
        a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(s1, ones));
        a2 = _mm256_add_epi32(a2, _mm256_madd_epi16(s2, ones));
        a3 = _mm256_add_epi32(a3, _mm256_madd_epi16(s3, ones));
    }
    __m256i h01 = _mm256_hadd_epi32(a0, a1), h23 = _mm256_hadd_epi32(a2, a3);
    __m256i h = _mm256_hadd_epi32(h01, h23);
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    _mm_storeu_si128((__m128i *)out, s);
}
#undef Q4_STEP
#endif

static int q4_use_avx2(const char **name)
{
    const char *force = getenv("CLIPDEX_FORCE_SCALAR");
    int scalar = force && force[0] && strcmp(force, "0") != 0;
#ifdef HAVE_AVX2_KERNEL
    if (!scalar) {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) {
            if (name) *name = "avx2";
            return 1;
        }
    }
#endif
    (void)scalar;
    if (name) *name = "scalar";
    return 0;
}

const char *vec_q4_kernel_name(void)
{
    const char *name = "scalar";
    q4_use_avx2(&name);
    return name;
}

typedef struct scan4_job {
    const uint8_t *c;
    const int8_t *p;
    const vec_q4_row_info *info;
    size_t rb, dp;
    int32_t psum8;         /* 8 * sum(p): the nibble offset */
    double t, cn, cr;      /* query scale; factors of norm and resid */
    int avx2;
    scan_part *pt;
} scan4_job;

/* u(r) >= the float32 score of row r (see vec_topk_q4), rounded up to float */
static float q4_upper(const scan4_job *j, size_t r, int32_t raw)
{
    const vec_q4_row_info *ri = &j->info[r];
    double u = (double)(raw - j->psum8) * ri->scale * j->t + ri->norm * j->cn + ri->resid * j->cr +
               1e-6;
    u += (u < 0 ? -u : u) * 1e-6; /* covers the double products and the float cast */
    return (float)u;
}

static void scan4_push(scan4_job *j, size_t r, int32_t raw)
{
    float u = q4_upper(j, r, raw);
    if (j->pt->hp.n == j->pt->hp.k && u < j->pt->hp.h[0].score) return;
    heap_push(&j->pt->hp, (vec_hit){u, (uint32_t)r});
}

static void *scan4_run(void *arg)
{
    scan4_job *j = arg;
    size_t r = j->pt->begin;
#ifdef HAVE_AVX2_KERNEL
    if (j->avx2) {
        int32_t d[4];
        for (; r + 4 <= j->pt->end; r += 4) {
            dot4_rows4_avx2(j->c + r * j->rb, j->rb, j->dp, j->p, d);
            for (size_t i = 0; i < 4; i++) scan4_push(j, r + i, d[i]);
        }
    }
#endif
    for (; r < j->pt->end; r++) scan4_push(j, r, dot4_scalar(j->c + r * j->rb, j->p, j->dp));
    return NULL;
}

/* Max-heap on score (ties: lower row first) for taking candidates in
 * decreasing upper bound. */
static void maxheap_down(vec_hit *h, size_t n, size_t i)
{
    vec_hit x = h[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const vec_hit *best = &x;
        if (l < n && hit_worse(best, &h[l])) { m = l; best = &h[l]; }
        if (r < n && hit_worse(best, &h[r])) m = r;
        if (m == i) break;
        h[i] = h[m];
        i = m;
    }
    h[i] = x;
}

long vec_topk_q4(const uint8_t *c, const vec_q4_row_info *info, const float *m, size_t n,
                 size_t dim, const float *q, size_t k, float threshold, int n_threads,
                 size_t n_cand, const vec_q8_set *q8, vec_hit *out, vec_q4_stats *stats)
{
    vec_q4_stats dummy;
    if (!stats) stats = &dummy;
    memset(stats, 0, sizeof *stats);
    stats->stage = 4;
    if (k == 0 || n == 0) return 0;
    if (k > n) k = n;
    if (n_cand < k) n_cand = k;
    size_t nt = scan_threads(n, n_threads);
    size_t dp = (dim + 63) / 64 * 64, rb = vec_q4_row_bytes(dim);
    int8_t *p = calloc(dp, 1);
    vec_hit *all = malloc(nt * n_cand * sizeof *all), *top = malloc(k * sizeof *top);
    if (!p || !all || !top) {
        free(p);
        free(all);
        free(top);
        return -1;
    }
    /* q = t p + d: ||d|| and ||q|| computed in double, rounded up */
    float t;
    vec_q8_row(q, dim, p, &t);
    double d2 = 0, q2 = 0;
    int32_t psum = 0;
    for (size_t i = 0; i < dim; i++) {
        double d = (double)q[i] - (double)t * p[i];
        d2 += d * d;
        q2 += (double)q[i] * q[i];
        psum += p[i];
    }
    double dn = sqrt(d2) * (1 + 1e-6), qn = sqrt(q2) * (1 + 1e-6);
    /* x = s c + e: x.q = s t <c, p> + s <c, d> + <e, q>, |s <c, d>| <= norm ||d||,
     * |<e, q>| <= resid ||q||; the float32 score differs from x.q by at most
     * 2 dim u sum|x_i q_i| <= 2 dim u (norm + resid) ||q|| */
    double rho = 2.0 * (double)dim / (double)(1 << 24) * qn;
    scan4_job jobs[VEC_MAX_THREADS];
    scan_part parts[VEC_MAX_THREADS];
    int avx2 = q4_use_avx2(NULL);
    scan_parts_init(parts, nt, n, all, n_cand);
    for (size_t th = 0; th < nt; th++)
        jobs[th] = (scan4_job){.c = c, .p = p, .info = info, .rb = rb, .dp = dp,
                               .psum8 = 8 * psum, .t = t, .cn = dn + rho, .cr = qn + rho,
                               .avx2 = avx2, .pt = &parts[th]};
    run_jobs(scan4_run, jobs, sizeof jobs[0], nt);
    /* every row a thread left out has u <= that thread's smallest kept u */
    double bound = -INFINITY;
    for (size_t th = 0; th < nt; th++) {
        const heap *hp = &parts[th].hp;
        if (hp->n == hp->k && (double)hp->h[0].score > bound) bound = hp->h[0].score;
    }
    size_t total = scan_parts_gather(parts, nt, all);
    stats->candidates = total;
    /* a hopeless case gives up at once: the proof needs the k-th exact score
     * above the bound, and the k-th best centre estimate (u less its error
     * terms) is a fair guess of that score; when it is not above the bound,
     * re-ranking would almost surely be wasted (a heuristic: giving up only
     * hands over to the next stage, it cannot change the answer) */
    heap guess = {top, 0, k};
    for (size_t i = 0; i < total; i++) {
        const vec_q4_row_info *ri = &info[all[i].row];
        float a = (float)((double)all[i].score - ri->norm * (dn + rho) - ri->resid * (qn + rho));
        if (guess.n == k && a < guess.h[0].score) continue;
        heap_push(&guess, (vec_hit){a, all[i].row});
    }
    size_t left = total;
    if (guess.n == k && !((double)guess.h[0].score > bound) && !((double)threshold > bound))
        left = 0;
    /* re-rank in decreasing u; stop once u is below the k-th exact score
     * (then every later candidate is too) or below the threshold */
    for (size_t i = left / 2; i-- > 0;) maxheap_down(all, left, i);
    dot_fn fdot = pick_kernel(NULL);
    heap best = {top, 0, k};
    while (left > 0) {
        float u = all[0].score;
        if (!(u >= threshold)) break;
        if (best.n == k && u < best.h[0].score) break;
        uint32_t row = all[0].row;
        all[0] = all[--left];
        if (left > 0) maxheap_down(all, left, 0);
        float s;
        fdot(m + (size_t)row * dim, 1, dim, q, &s);
        stats->reranked++;
        if (!(s >= threshold)) continue;
        heap_push(&best, (vec_hit){s, row});
    }
    int proven = best.n == k ? (double)best.h[0].score > bound : (double)threshold > bound;
    long res;
    if (proven) {
        qsort(top, best.n, sizeof *top, hit_cmp);
        memcpy(out, top, best.n * sizeof *out);
        res = (long)best.n;
    } else if (q8) {
        vec_q8_stats s8;
        res = vec_topk_q8(q8->c, q8->scale, q8->b, m, n, dim, q, k, threshold, n_threads,
                          q8->n_cand, out, &s8);
        stats->stage = s8.fallback ? 32 : 8;
    } else {
        stats->stage = 32;
        res = vec_topk(m, n, dim, q, k, threshold, n_threads, out);
    }
    free(p);
    free(all);
    free(top);
    return res;
}
