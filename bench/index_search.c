/*
 * index_search.c - search latency of the library's vector search behind
 * `clipdex search` (clipdex_vecs_search, src/search/) on synthetic
 * L2-normalized vectors: N rows of DIM floats, top-10 of a query, median of
 * REPS runs per thread count, for the float32 scan (CLIPDEX_SEARCH_EXACT),
 * the int8 scan + float32 re-rank of 4096 candidates (a set with the int8
 * copy only), and the 4-bit scan with its per-row bound (16384 candidates
 * per thread, cascading to that int8 stage), whose hits are checked equal
 * to the float32 ones; it counts which stage answered. The kernel path is
 * the context's (CLIPDEX_ISA picks one).
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

#include "clipdex.h"

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
    float *sc = malloc(n * sizeof *sc), max_scale = 0, max_l1 = 0;
    size_t rb = clipdex_vec_q4_row_bytes(dim);
    uint8_t *c4 = malloc(n * rb);
    clipdex_vec_q4_info *info = malloc(n * sizeof *info);
    if (!c || !sc || !c4 || !info) return 1;
    for (size_t r = 0; r < n; r++) {
        clipdex_vec_q8_row(m + r * dim, dim, c + r * dim, &sc[r]);
        clipdex_vec_q4_row(m + r * dim, dim, c4 + r * rb, &info[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (sc[r] > max_scale) max_scale = sc[r];
        if (l1 > max_l1) max_l1 = (float)(l1 * (1 + 1e-6));
    }
    printf("n=%zu dim=%zu %s data; memory: float32 %.0f MB, int8 %.0f MB, 4-bit %.0f MB\n", n, dim,
           argv[4], (double)n * (double)dim * 4 / 1e6,
           (double)n * ((double)dim + 4) / 1e6, (double)n * ((double)rb + sizeof *info) / 1e6);
    clipdex_vecs_data full = {m, n, dim, c, sc, max_scale, max_l1, c4, info}, only8 = full;
    only8.q4 = NULL, only8.q4_info = NULL;
    clipdex_vecs *v_full = NULL, *v_8 = NULL;
    if (clipdex_vecs_new(NULL, &full, 0, &v_full) || clipdex_vecs_new(NULL, &only8, 0, &v_8)) return 1;
    static const char *const mode_name[3] = {"float32 scan", "int8 + re-rank 4096", "4-bit + re-rank"};
    clipdex_hit hits[10], ref[10];
    for (int a = 5; a < argc; a++) {
        clipdex_ctx_params cp = clipdex_ctx_params_default();
        cp.n_threads = atoi(argv[a]);
        clipdex_ctx *ctx = NULL;
        if (clipdex_ctx_new(&ctx, &cp)) return 1;
        for (int mode = 0; mode < 3; mode++) {
            int differ = 0, stages[33] = {0};
            size_t reranked = 0;
            clipdex_search_params p = clipdex_search_params_default();
            p.k = 10;
            p.stage = mode == 0 ? CLIPDEX_SEARCH_EXACT : CLIPDEX_SEARCH_STAGED;
            p.q8_candidates = Q8_CAND, p.q4_candidates = Q4_CAND;
            clipdex_search_params pe = p;
            pe.stage = CLIPDEX_SEARCH_EXACT;
            for (int i = 0; i < reps; i++) {
                make_vec(q, dim, centres, &seed);
                clipdex_search_stats st;
                size_t got = 0, got_ref = 0;
                double t0 = now_ms();
                int rc = clipdex_vecs_search(ctx, mode == 1 ? v_8 : v_full, q, &p, hits, &got, &st);
                t[i] = now_ms() - t0;
                if (rc || got != 10) return 1;
                stages[st.stage]++;
                reranked += st.reranked;
                if (mode > 0) {
                    if (clipdex_vecs_search(ctx, v_full, q, &pe, ref, &got_ref, NULL)) return 1;
                    for (int h = 0; h < 10; h++)
                        differ += ref[h].row != hits[h].row || ref[h].score != hits[h].score;
                }
            }
            qsort(t, (size_t)reps, sizeof *t, cmp_d);
            printf("n=%zu threads=%d %s (%s): median %.2f ms, min %.2f ms", n, cp.n_threads, mode_name[mode],
                   clipdex_ctx_isa(ctx), t[reps / 2], t[0]);
            if (mode == 0)
                printf(" (%.1f GB/s)\n", (double)n * (double)dim * 4 / (t[reps / 2] * 1e6));
            else
                printf("; answered by 4-bit %d, int8 %d, float32 %d of %d; %.0f re-ranked on average; "
                       "%d hits differ\n", stages[4], stages[8], stages[32], reps, (double)reranked / reps, differ);
            fflush(stdout);
        }
        clipdex_ctx_free(ctx);
    }
    clipdex_vecs_free(v_full);
    clipdex_vecs_free(v_8);
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
