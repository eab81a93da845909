/*
 * linear_bench.c - single-thread micro-benchmark of the fp32 linear kernels
 * of each x86 path (dispatch.h: avx2, avx512) on ViT-B/32 and text shapes.
 *
 *   make lib
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/linear_bench.c build/libclipdex.a \
 *      $(pkg-config --libs libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson) \
 *      -lgif -lm -lpthread -o /tmp/linear_bench
 *   /tmp/linear_bench [--rounds N] [--seconds S] [--type f32p|f16p|f32]
 *
 * Each measurement is the whole product C (m, n) = A (m, k) @ W^T with
 * weights of the given type (default F32P, what `clipdex quantize` writes),
 * cut into 480 x 64 task tiles looped as ops.c does, on one thread, through
 * the path's linear_tile. Shapes: m = 800 (16 images x 50 tokens) and 50 (one
 * image) on the attention, MLP and projection matrices; m = 7 (a short text
 * query, the streaming path) on the text tower's. The paths run interleaved,
 * shape by shape, round after round (the machine is shared and drifts); a
 * line gives per path the best and worst GFLOP/s (2mnk / s) over the rounds
 * and the range of the per-round speed-up of the last path over the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"

struct shape {
    size_t m, n, k;
};
static const struct shape shapes[] = {{800, 2304, 768}, {800, 768, 768}, {800, 3072, 768}, {800, 768, 3072},
                                      {50, 2304, 768},   {50, 3072, 768}, {50, 768, 3072},  {7, 512, 512},
                                      {7, 2048, 512},    {7, 512, 2048}};
#define NS (sizeof shapes / sizeof shapes[0])
#define MAXP 4 /* paths */
#define MAXR 64

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

/* W (n, k) of `type` from random floats (packed types through their rows). */
static struct cdx_wmat make_w(int type, size_t n, size_t k)
{
    int base = cdx_wtype_base(type);
    size_t rb = cdx_wtype_row_bytes(base, k), bytes = cdx_wmat_bytes(type, n, k);
    float *row = malloc(k * sizeof *row);
    uint8_t *rows = malloc(n * rb), *out = aligned_alloc(64, (bytes + 63) / 64 * 64);
    for (size_t j = 0; j < n; j++) {
        for (size_t p = 0; p < k; p++) row[p] = frand() * 0.05f;
        cdx_quant_row(base, row, k, rows + j * rb);
    }
    struct cdx_wmat rm = {base, rows}, w = {type, out};
    if (cdx_wtype_is_packed(type)) {
        cdx_wmat_pack(type, &rm, n, k, out);
        free(rows);
    } else {
        free(out);
        w.data = rows;
    }
    free(row);
    return w;
}

/* The whole product once, tile by tile in ops.c's order. */
static void product(const struct cdx_kernels *kt, const float *A, const struct cdx_wmat *W, const float *bias,
                    float *C, const struct shape *s)
{
    size_t n_mt = (s->m + CDX_LINEAR_TILE_M - 1) / CDX_LINEAR_TILE_M;
    size_t n_nt = (s->n + CDX_LINEAR_TILE_N - 1) / CDX_LINEAR_TILE_N;
    for (size_t t = 0; t < n_mt * n_nt; t++) {
        size_t m0 = t % n_mt * CDX_LINEAR_TILE_M, n0 = t / n_mt * CDX_LINEAR_TILE_N;
        size_t m1 = m0 + CDX_LINEAR_TILE_M < s->m ? m0 + CDX_LINEAR_TILE_M : s->m;
        size_t n1 = n0 + CDX_LINEAR_TILE_N < s->n ? n0 + CDX_LINEAR_TILE_N : s->n;
        kt->linear_tile(A, s->k, W, bias, C, s->n, m0, m1, n0, n1, s->k, CDX_ACT_NONE, 0);
    }
}

/* GFLOP/s of repeated products for about `secs` seconds. */
static double measure(const struct cdx_kernels *kt, const float *A, const struct cdx_wmat *W, const float *bias,
                      float *C, const struct shape *s, double secs)
{
    product(kt, A, W, bias, C, s); /* warm */
    double t0 = now_s(), t;
    long it = 0;
    do {
        product(kt, A, W, bias, C, s);
        it++;
        t = now_s() - t0;
    } while (t < secs);
    return 2.0 * (double)s->m * (double)s->n * (double)s->k * (double)it / t * 1e-9;
}

static int parse_type(const char *s)
{
    return !strcmp(s, "f16p") ? CDX_W_F16P : !strcmp(s, "f32") ? CDX_W_F32 : !strcmp(s, "f16") ? CDX_W_F16 : CDX_W_F32P;
}

int main(int argc, char **argv)
{
    int rounds = 5, type = CDX_W_F32P;
    double secs = 0.3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rounds")) rounds = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds")) secs = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--type")) type = parse_type(argv[i + 1]);
    }
    if (rounds < 1 || rounds > MAXR) rounds = 5;
    const struct cdx_kernels *paths[MAXP];
    int np = 0;
    const int want[] = {CDX_ISA_AVX2, CDX_ISA_AVX512};
    for (int i = 0; i < 2; i++)
        if (cdx_kernels_for(want[i])) paths[np++] = cdx_kernels_for(want[i]);
    if (np == 0) {
        fprintf(stderr, "linear_bench: this CPU has none of the x86 paths\n");
        return 1;
    }
    printf("# %s, 1 thread, %d rounds x %.2f s; GFLOP/s best..worst per path; speed-up %s/%s per round\n",
           cdx_wtype_name(type), rounds, secs, paths[np - 1]->name, paths[0]->name);
    for (size_t si = 0; si < NS; si++) {
        const struct shape *s = &shapes[si];
        float *A = malloc(s->m * s->k * 4), *bias = malloc(s->n * 4), *C = malloc(s->m * s->n * 4);
        for (size_t i = 0; i < s->m * s->k; i++) A[i] = frand();
        for (size_t i = 0; i < s->n; i++) bias[i] = frand();
        struct cdx_wmat W = make_w(type, s->n, s->k);
        double g[MAXR][MAXP], best[MAXP] = {0}, worst[MAXP], lo = 1e9, hi = 0;
        for (int r = 0; r < rounds; r++) {
            for (int p = 0; p < np; p++) {
                g[r][p] = measure(paths[p], A, &W, bias, C, s, secs);
                best[p] = g[r][p] > best[p] ? g[r][p] : best[p];
                worst[p] = r == 0 || g[r][p] < worst[p] ? g[r][p] : worst[p];
            }
            double ratio = g[r][np - 1] / g[r][0];
            lo = ratio < lo ? ratio : lo, hi = ratio > hi ? ratio : hi;
        }
        printf("m %4zu n %4zu k %4zu", s->m, s->n, s->k);
        for (int p = 0; p < np; p++) printf("  %s %6.1f..%6.1f", paths[p]->name, best[p], worst[p]);
        printf("  x%.2f..%.2f\n", lo, hi);
        fflush(stdout);
        free(A), free(bias), free(C), free((void *)W.data);
    }
    return 0;
}
