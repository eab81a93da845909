/*
 * index_search.c - search latency of the vector scan behind `clipdex search`
 * (app/store/vecscan.c) on synthetic L2-normalized vectors: N rows of DIM floats,
 * top-10 of a query, median of REPS runs per thread count, for the float32
 * scan (vec_topk), the int8 scan + float32 re-rank of 4096 candidates
 * (vec_topk_q8), and the 4-bit scan with its per-row bound (vec_topk_q4,
 * 16384 candidates per thread, cascading to that int8 stage), whose hits
 * are checked equal to the float32 ones; it counts which stage answered.
 * Data: "random" (uniform coordinates, normalized: every cosine near 0;
 * queries are random too), "clustered" (1000 random centres, each row a
 * centre plus an equal-norm random offset; queries made the same way) or
 * "onecluster" (the same with a single centre: every row near every other,
 * the hard case for the bounds).
 * Usage: index_search N DIM REPS random|clustered|onecluster THREADS...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/vecscan.h"

#define N_CENTRES 1000
static size_t n_centres = N_CENTRES;
#define Q8_CAND 4096
#define Q4_CAND 16384

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void normalize(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(s));
}

static void fill_unit(float *v, size_t dim, unsigned *seed)
{
    for (size_t i = 0; i < dim; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        v[i] = (float)((*seed >> 8) / 16777216.0 - 0.5);
    }
    normalize(v, dim);
}

/* a row or query: random, or a random centre plus a random unit offset */
static void make_vec(float *v, size_t dim, const float *centres, unsigned *seed)
{
    fill_unit(v, dim, seed);
    if (!centres) return;
    *seed = *seed * 1664525u + 1013904223u;
    const float *c = centres + (size_t)((*seed >> 8) % n_centres) * dim;
    for (size_t i = 0; i < dim; i++) v[i] += c[i];
    normalize(v, dim);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s N DIM REPS random|clustered|onecluster THREADS...\n", argv[0]);
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10), dim = strtoull(argv[2], NULL, 10);
    int reps = atoi(argv[3]);
    int clustered = strcmp(argv[4], "clustered") == 0 || strcmp(argv[4], "onecluster") == 0;
    if (strcmp(argv[4], "onecluster") == 0) n_centres = 1;
    float *m = malloc(n * dim * sizeof *m), *q = malloc(dim * sizeof *q);
    float *centres = clustered ? malloc(N_CENTRES * dim * sizeof *centres) : NULL;
    double *t = malloc((size_t)reps * sizeof *t);
    if (!m || !q || !t || reps < 1 || (clustered && !centres)) return 1;
    unsigned seed = 1;
    for (size_t i = 0; clustered && i < N_CENTRES; i++) fill_unit(centres + i * dim, dim, &seed);
    for (size_t r = 0; r < n; r++) make_vec(m + r * dim, dim, centres, &seed);
    int8_t *c = malloc(n * dim);
    float *sc = malloc(n * sizeof *sc);
    size_t rb = vec_q4_row_bytes(dim);
    uint8_t *c4 = malloc(n * rb);
    vec_q4_row_info *info = malloc(n * sizeof *info);
    if (!c || !sc || !c4 || !info) return 1;
    vec_q8_bounds qb = {0, 0};
    for (size_t r = 0; r < n; r++) {
        vec_q8_row(m + r * dim, dim, c + r * dim, &sc[r]);
        vec_q4_row(m + r * dim, dim, c4 + r * rb, &info[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (sc[r] > qb.max_scale) qb.max_scale = sc[r];
        if (l1 > qb.max_l1) qb.max_l1 = (float)(l1 * (1 + 1e-6));
    }
    printf("n=%zu dim=%zu %s data; memory: float32 %.0f MB, int8 %.0f MB, 4-bit %.0f MB\n", n, dim,
           argv[4], (double)n * (double)dim * 4 / 1e6,
           (double)n * ((double)dim + 4) / 1e6, (double)n * ((double)rb + sizeof *info) / 1e6);
    vec_hit hits[10], ref[10];
    vec_q8_set q8 = {c, sc, qb, Q8_CAND};
    for (int a = 5; a < argc; a++) {
        int nt = atoi(argv[a]);
        for (int mode = 0; mode < 3; mode++) {
            int fallbacks = 0, differ = 0, stages[33] = {0};
            size_t reranked = 0;
            for (int i = 0; i < reps; i++) {
                make_vec(q, dim, centres, &seed);
                vec_q8_stats st = {0, 0};
                vec_q4_stats st4 = {0, 0, 0};
                double t0 = now_ms();
                long got = mode == 0   ? vec_topk(m, n, dim, q, 10, -INFINITY, nt, hits)
                           : mode == 1 ? vec_topk_q8(c, sc, qb, m, n, dim, q, 10, -INFINITY, nt,
                                                     Q8_CAND, hits, &st)
                                       : vec_topk_q4(c4, info, m, n, dim, q, 10, -INFINITY, nt,
                                                     Q4_CAND, &q8, hits, &st4);
                t[i] = now_ms() - t0;
                if (got != 10) return 1;
                fallbacks += st.fallback;
                if (mode == 2) {
                    stages[st4.stage]++;
                    reranked += st4.reranked;
                }
                if (mode > 0) {
                    vec_topk(m, n, dim, q, 10, -INFINITY, nt, ref);
                    for (int h = 0; h < 10; h++)
                        differ += ref[h].row != hits[h].row || ref[h].score != hits[h].score;
                }
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_d);
            if (mode == 0)
                printf("n=%zu threads=%d float32 scan (%s): median %.2f ms, min %.2f ms "
                       "(%.1f GB/s)\n", n, nt, vec_kernel_name(), t[reps / 2], t[0],
                       (double)n * (double)dim * 4 / (t[reps / 2] * 1e6));
            else if (mode == 1)
                printf("n=%zu threads=%d int8 + re-rank %d (%s): median %.2f ms, min %.2f ms; "
                       "%d/%d fell back, %d hits differ\n", n, nt, Q8_CAND, vec_q8_kernel_name(),
                       t[reps / 2], t[0], fallbacks, reps, differ);
            else
                printf("n=%zu threads=%d 4-bit + re-rank (%s): median %.2f ms, min %.2f ms; "
                       "answered by 4-bit %d, int8 %d, float32 %d of %d; %.0f re-ranked on average; "
                       "%d hits differ\n", n, nt, vec_q4_kernel_name(), t[reps / 2], t[0],
                       stages[4], stages[8], stages[32], reps, (double)reranked / reps, differ);
            fflush(stdout);
        }
    }
    free(c);
    free(sc);
    free(c4);
    free(info);
    free(centres);
    free(m);
    free(q);
    free(t);
    return 0;
}
