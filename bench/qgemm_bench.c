/*
 * qgemm_bench.c - single-thread micro-benchmark of the int8 GEMM kernels
 * (src/tensor/qgemm*.c) against the fp32 linear kernel, on CLIP-sized shapes.
 *
 *   make BUILD=build-q lib
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/qgemm_bench.c build-q/libclipdex.a \
 *      $(pkg-config --libs libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson) \
 *      -lgif -lm -lpthread -o /tmp/qgemm_bench
 *   /tmp/qgemm_bench [rounds]
 *
 * Each measurement is the whole product C (m, n) = A (m, k) @ W^T, tiles of
 * 480 rows x 64 columns looped as ops.c does (task t: row tile t % n_mt,
 * column tile t / n_mt):
 * on the kernel path CLIPDEX_ISA names (scalar|avx2|avx-vnni|avx512; default
 * the best the CPU has; run one process per path, interleaved, to compare):
 *   q8p   activation quantization (the path's act_q8 at its range, every row) + Q8P tiles
 *   q4p   the same with Q4P weights
 *   f32   the path's linear tile with F32 weights
 *   f32q8 the path's linear tile with Q8_0 row weights (dequantized in its pack)
 * The machine's speed drifts, so the methods run interleaved, round after
 * round; a cell is the best GFLOP/s (2mnk / s) over the rounds, a ratio is
 * the median over rounds of the ratio measured within one round.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"
#include "tensor/qgemm.h"

static const struct cdx_kernels *K; /* the path under test: CLIPDEX_ISA, else the best */

#define NM 4
static const char *mname[NM] = {"q8p", "q4p", "f32", "f32q8"};

struct shape {
    size_t m, n, k;
};
static const struct shape shapes[] = {{800, 2304, 768}, {800, 3072, 768}, {800, 768, 3072},
                                      {50, 2304, 768},  {6, 1536, 512},   {6, 512, 2048}};
#define NS (sizeof shapes / sizeof shapes[0])

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

struct data {
    float *A, *W, *C, *bias;
    uint8_t *q8rows, *q8p, *q4p;
    int8_t *qa;
    float *da;
    int32_t *sa;
};

static void *xalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) / 64 * 64);
    if (!p) {
        perror("alloc");
        exit(1);
    }
    return p;
}

static void setup(const struct shape *s, struct data *d)
{
    size_t m = s->m, n = s->n, k = s->k;
    d->A = xalloc(m * k * 4), d->W = xalloc(n * k * 4), d->C = xalloc(m * n * 4), d->bias = xalloc(n * 4);
    for (size_t i = 0; i < m * k; i++) d->A[i] = frand();
    for (size_t i = 0; i < n * k; i++) d->W[i] = frand() * 0.05f;
    for (size_t i = 0; i < n; i++) d->bias[i] = frand();
    size_t r8 = cdx_wtype_row_bytes(CDX_W_Q8_0, k), r4 = cdx_wtype_row_bytes(CDX_W_Q4_0, k);
    uint8_t *q4rows = xalloc(n * r4);
    d->q8rows = xalloc(n * r8);
    for (size_t j = 0; j < n; j++) {
        cdx_quant_row(CDX_W_Q8_0, d->W + j * k, k, d->q8rows + j * r8);
        cdx_quant_row(CDX_W_Q4_0, d->W + j * k, k, q4rows + j * r4);
    }
    d->q8p = xalloc(cdx_q8p_bytes(n, k)), d->q4p = xalloc(cdx_q4p_bytes(n, k));
    cdx_q8p_pack(d->q8rows, n, k, d->q8p);
    cdx_q4p_pack(q4rows, n, k, d->q4p);
    free(q4rows);
    d->qa = xalloc(m * k), d->da = xalloc(m * k / 32 * 4), d->sa = xalloc(m * k / 32 * 4);
}

static void run(int method, const struct shape *s, struct data *d)
{
    size_t m = s->m, n = s->n, k = s->k, tm = CDX_LINEAR_TILE_M, tn = CDX_LINEAR_TILE_N;
    size_t n_mt = (m + tm - 1) / tm, n_nt = (n + tn - 1) / tn;
    if (method <= 1)
        for (size_t i = 0; i < m; i++)
            K->act_q8(d->A + i * k, k, K->qmax[method], d->qa + i * k, d->da + i * (k / 32), d->sa + i * (k / 32));
    struct cdx_wmat wf = cdx_wmat_f32(d->W), wq = {CDX_W_Q8_0, d->q8rows};
    for (size_t t = 0; t < n_mt * n_nt; t++) {
        size_t mi = t % n_mt, ni = t / n_mt;
        size_t m0 = mi * tm, m1 = m0 + tm < m ? m0 + tm : m, n0 = ni * tn, n1 = n0 + tn < n ? n0 + tn : n;
        switch (method) {
        case 0:
        case 1:
            K->qgemm_tile(method ? CDX_QP_Q4 : CDX_QP_Q8, d->qa, d->da, d->sa, method ? d->q4p : d->q8p, k, d->bias,
                          d->C, n, m0, m1, n0, n1, CDX_ACT_NONE, 0);
            break;
        default:
            K->linear_tile(d->A, k, method == 2 ? &wf : &wq, d->bias, d->C, n, m0, m1, n0, n1, k, CDX_ACT_NONE, 0);
        }
    }
}

/* GFLOP/s of the best of repetitions filling ~min_s seconds. */
static double measure(int method, const struct shape *s, struct data *d, double min_s)
{
    double best = 1e30, t0 = now_s();
    int reps = 0;
    do {
        double t = now_s();
        run(method, s, d);
        t = now_s() - t;
        if (t < best) best = t;
        reps++;
    } while (now_s() - t0 < min_s || reps < 3);
    return 2.0 * (double)s->m * (double)s->n * (double)s->k / best * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1 || rounds > 64) rounds = 5;
    K = cdx_kernels_from_env();
    if (!K) {
        fprintf(stderr, "qgemm_bench: CLIPDEX_ISA names no path\n");
        return 1;
    }
    printf("path %s (%s)\n", K->name, K->describe);
    static struct data d[NS];
    for (size_t s = 0; s < NS; s++) setup(&shapes[s], &d[s]);
    double best[NS][NM] = {{0}}, ratio[NS][NM][64];
    for (int r = 0; r < rounds; r++)
        for (size_t s = 0; s < NS; s++) {
            double g[NM];
            for (int mth = 0; mth < NM; mth++) {
                g[mth] = measure(mth, &shapes[s], &d[s], 0.15);
                if (g[mth] > best[s][mth]) best[s][mth] = g[mth];
            }
            for (int mth = 0; mth < NM; mth++) ratio[s][mth][r] = g[mth] / g[2];
        }
    printf("single thread, best GFLOP/s (2mnk/s) over %d interleaved rounds; ratios = median per-round ratio to f32\n",
           rounds);
    printf("%5s %5s %5s |", "m", "n", "k");
    for (int mth = 0; mth < NM; mth++) printf(" %7s", mname[mth]);
    printf(" | q8p/f32 q4p/f32 f32q8/f32\n");
    for (size_t s = 0; s < NS; s++) {
        printf("%5zu %5zu %5zu |", shapes[s].m, shapes[s].n, shapes[s].k);
        for (int mth = 0; mth < NM; mth++) printf(" %7.1f", best[s][mth]);
        printf(" |");
        int cols[3] = {0, 1, 3};
        for (int c = 0; c < 3; c++) {
            double *v = ratio[s][cols[c]];
            qsort(v, (size_t)rounds, sizeof *v, cmpd);
            printf(" %7.2f", v[rounds / 2]);
        }
        printf("\n");
    }
    return 0;
}
