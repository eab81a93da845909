/*
 * vecscan.c - the brute-force vector scan behind `clipdex search`: rows are
 * scored in blocks into a small buffer, each thread keeps its k best in a
 * min-heap, and the per-thread heaps are merged and sorted at the end.
 */
#include "vecscan.h"

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

typedef struct scan_job {
    const float *m, *q;
    size_t dim, begin, end;
    float threshold;
    dot_fn dot;
    heap hp;
} scan_job;

static void *scan_run(void *arg)
{
    scan_job *j = arg;
    float s[VEC_BLOCK];
    for (size_t r0 = j->begin; r0 < j->end; r0 += VEC_BLOCK) {
        size_t nr = j->end - r0 < VEC_BLOCK ? j->end - r0 : VEC_BLOCK;
        j->dot(j->m + r0 * j->dim, nr, j->dim, j->q, s);
        for (size_t i = 0; i < nr; i++) {
            if (!(s[i] >= j->threshold)) continue;
            if (j->hp.n == j->hp.k && s[i] < j->hp.h[0].score) continue;
            heap_push(&j->hp, (vec_hit){s[i], (uint32_t)(r0 + i)});
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
    size_t nt = n_threads < 1 ? 1 : (size_t)n_threads;
    if (nt > VEC_MAX_THREADS) nt = VEC_MAX_THREADS;
    if (nt > (n + VEC_BLOCK - 1) / VEC_BLOCK) nt = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    scan_job jobs[VEC_MAX_THREADS];
    pthread_t tid[VEC_MAX_THREADS];
    int started[VEC_MAX_THREADS] = {0};
    vec_hit *all = malloc(nt * k * sizeof *all);
    if (!all) return -1;
    dot_fn dot = pick_kernel(NULL);
    /* contiguous chunks, block-aligned */
    size_t blocks = (n + VEC_BLOCK - 1) / VEC_BLOCK;
    for (size_t t = 0; t < nt; t++) {
        scan_job *j = &jobs[t];
        j->m = m;
        j->q = q;
        j->dim = dim;
        j->begin = blocks * t / nt * VEC_BLOCK;
        j->end = blocks * (t + 1) / nt * VEC_BLOCK;
        if (j->end > n) j->end = n;
        j->threshold = threshold;
        j->dot = dot;
        j->hp = (heap){all + t * k, 0, k};
    }
    for (size_t t = 1; t < nt; t++)
        started[t] = pthread_create(&tid[t], NULL, scan_run, &jobs[t]) == 0;
    scan_run(&jobs[0]);
    for (size_t t = 1; t < nt; t++) {
        if (started[t])
            pthread_join(tid[t], NULL);
        else
            scan_run(&jobs[t]); /* no thread: do its share here */
    }
    /* merge: compact the heaps, sort, keep k */
    size_t total = 0;
    for (size_t t = 0; t < nt; t++) {
        memmove(all + total, jobs[t].hp.h, jobs[t].hp.n * sizeof *all);
        total += jobs[t].hp.n;
    }
    qsort(all, total, sizeof *all, hit_cmp);
    if (total > k) total = k;
    memcpy(out, all, total * sizeof *out);
    free(all);
    return (long)total;
}
