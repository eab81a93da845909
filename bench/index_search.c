/*
 * index_search.c - search latency of the vector scan behind `clipdex search`
 * (app/vecscan.c) on synthetic L2-normalized vectors: N rows of DIM floats,
 * top-10 of a random query, median of REPS runs per thread count, for the
 * float32 scan (vec_topk) and for the int8 scan + float32 re-rank of 4096
 * candidates (vec_topk_q8), whose hits are checked equal to the float32 ones.
 * Usage: index_search N DIM REPS THREADS...
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "vecscan.h"

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

static void fill_unit(float *v, size_t dim, unsigned *seed)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) {
        *seed = *seed * 1664525u + 1013904223u;
        v[i] = (float)((*seed >> 8) / 16777216.0 - 0.5);
        s += (double)v[i] * v[i];
    }
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(s));
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: %s N DIM REPS THREADS...\n", argv[0]);
        return 2;
    }
    size_t n = strtoull(argv[1], NULL, 10), dim = strtoull(argv[2], NULL, 10);
    int reps = atoi(argv[3]);
    float *m = malloc(n * dim * sizeof *m), *q = malloc(dim * sizeof *q);
    double *t = malloc((size_t)reps * sizeof *t);
    if (!m || !q || !t || reps < 1) return 1;
    unsigned seed = 1;
    for (size_t r = 0; r < n; r++) fill_unit(m + r * dim, dim, &seed);
    int8_t *c = malloc(n * dim);
    float *sc = malloc(n * sizeof *sc);
    if (!c || !sc) return 1;
    vec_q8_bounds qb = {0, 0};
    for (size_t r = 0; r < n; r++) {
        vec_q8_row(m + r * dim, dim, c + r * dim, &sc[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (sc[r] > qb.max_scale) qb.max_scale = sc[r];
        if (l1 > qb.max_l1) qb.max_l1 = (float)(l1 * (1 + 1e-6));
    }
    vec_hit hits[10], ref[10];
    for (int a = 4; a < argc; a++) {
        int nt = atoi(argv[a]);
        for (int mode = 0; mode < 2; mode++) {
            int fallbacks = 0, differ = 0;
            for (int i = 0; i < reps; i++) {
                fill_unit(q, dim, &seed);
                vec_q8_stats st = {0, 0};
                double t0 = now_ms();
                long got = mode == 0 ? vec_topk(m, n, dim, q, 10, -INFINITY, nt, hits)
                                     : vec_topk_q8(c, sc, qb, m, n, dim, q, 10, -INFINITY, nt,
                                                   4096, hits, &st);
                t[i] = now_ms() - t0;
                if (got != 10) return 1;
                fallbacks += st.fallback;
                if (mode == 1) {
                    vec_topk(m, n, dim, q, 10, -INFINITY, nt, ref);
                    for (int h = 0; h < 10; h++)
                        differ += ref[h].row != hits[h].row || ref[h].score != hits[h].score;
                }
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_d);
            if (mode == 0)
                printf("n=%zu dim=%zu threads=%d float32 scan (%s): median %.2f ms, min %.2f ms "
                       "(%.1f GB/s)\n", n, dim, nt, vec_kernel_name(), t[reps / 2], t[0],
                       (double)n * (double)dim * 4 / (t[reps / 2] * 1e6));
            else
                printf("n=%zu dim=%zu threads=%d int8 scan + re-rank 4096 (%s): median %.2f ms, "
                       "min %.2f ms; %d/%d fell back, %d hits differ from float32\n", n, dim, nt,
                       vec_q8_kernel_name(), t[reps / 2], t[0], fallbacks, reps, differ);
        }
    }
    free(c);
    free(sc);
    free(m);
    free(q);
    free(t);
    return 0;
}
