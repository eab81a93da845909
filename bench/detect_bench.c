/*
 * detect_bench.c - the detector's speed: clipdex_detect on one image (the
 * whole call: letterbox, graph, decoding, NMS) and its stages, median of
 * RUNS after two warm-up runs, on THREADS threads. Prints one line:
 *   clipdex threads=N isa=ISA ms=MEDIAN min=MIN prepare=MS graph=MS post=MS
 * usage: detect_bench DETECTOR_DIR IMAGE THREADS RUNS
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clipdex.h"
#include "detect/detect.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: detect_bench DETECTOR_DIR IMAGE THREADS RUNS\n");
        return 2;
    }
    int runs = atoi(argv[4]);
    if (runs < 1 || runs > 10000) return 2;
    clipdex_ctx_params p = clipdex_ctx_params_default();
    p.n_threads = atoi(argv[3]);
    clipdex_ctx *ctx = NULL;
    clipdex_detector *det = NULL;
    clipdex_image *img = NULL;
    if (clipdex_ctx_new(&ctx, &p) || clipdex_detector_load(ctx, argv[1], &det) ||
        clipdex_image_load(ctx, argv[2], NULL, &img)) {
        fprintf(stderr, "detect_bench: %s\n", ctx ? clipdex_ctx_errmsg(ctx) : "no context");
        return 1;
    }
    clipdex_detection out[100];
    size_t n;
    double *all = malloc(4 * (size_t)runs * sizeof *all), *pre = all + runs, *gr = pre + runs, *post = gr + runs;
    for (int i = -2; i < runs; i++) {
        struct cdx_letterbox lb;
        double t0 = now_ms();
        if (clipdex_detect(ctx, det, img, NULL, out, 100, &n)) return 1;
        double t1 = now_ms();
        cdx_detect_prepare(ctx, det, img, &lb);
        double t2 = now_ms();
        cdx_detect_heads(ctx, det);
        double t3 = now_ms();
        if (i < 0) continue;
        all[i] = t1 - t0;
        pre[i] = t2 - t1;
        gr[i] = t3 - t2;
        post[i] = all[i] - pre[i] - gr[i]; /* decoding and NMS: the rest of the whole call */
    }
    double mn = all[0];
    for (int i = 1; i < runs; i++) mn = all[i] < mn ? all[i] : mn;
    double m_pre = median(pre, runs), m_gr = median(gr, runs), m_post = median(post, runs);
    printf("clipdex threads=%d isa=%s ms=%.2f min=%.2f prepare=%.2f graph=%.2f post=%.2f boxes=%zu\n",
           clipdex_ctx_n_threads(ctx), clipdex_ctx_isa(ctx), median(all, runs), mn, m_pre, m_gr, m_post, n);
    free(all);
    clipdex_image_free(img);
    clipdex_detector_free(det);
    clipdex_ctx_free(ctx);
    return 0;
}
