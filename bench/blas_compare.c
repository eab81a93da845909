/*
 * blas_compare.c - OpenBLAS sgemm against clipdex's linear kernel on the
 * matrix shapes CLIP runs, to decide where each should be used
 * (docs/blas.md). C (m, n) = A (m, k) @ W (n, k)^T, fp32.
 *
 *   make lib
 *   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/blas_compare.c build/libclipdex.a \
 *      $(pkg-config --libs libjpeg libpng libwebp libwebpdemux libtiff-4 libutf8proc zlib jansson) \
 *      -lgif -lm -lpthread -ldl -o /tmp/blas_compare
 *   OMP_WAIT_POLICY=PASSIVE /tmp/blas_compare [rounds]
 *
 * OpenBLAS is loaded with dlopen (libopenblas.so.0: Debian's libopenblas0-*),
 * so nothing here needs it to build. Per shape and thread count, the three
 * methods run interleaved, round after round (the machine's speed drifts):
 *   openblas   cblas_sgemm(RowMajor, NoTrans, Trans) - it packs W on every call
 *   cdx-rows   cdx_linear_w with W in rows (packs 16-wide panels per call)
 *   cdx-packed cdx_linear_w with W as F32P panels (what `clipdex quantize` writes)
 * Each measurement repeats the product for >= 0.3 s; a cell is the median
 * GFLOP/s (2mnk / s) over the rounds, a ratio the median of per-round ratios.
 * Then, per shape, whether OpenBLAS gives a row the same bits alone as in
 * the batch, and with 2 threads as with 1 (clipdex does, by construction).
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clipdex.h"
#include "core/core.h"
#include "tensor/ops.h"

typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int, float,
                         float *, int);
typedef void (*setthr_fn)(int);
enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 5;
    if (rounds < 1 || rounds > 50) rounds = 5;
    void *h = dlopen("libopenblas.so.0", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "blas_compare: cannot load libopenblas.so.0 (apt-get install libopenblas0-openmp): %s\n",
                dlerror());
        return 1;
    }
    sgemm_fn sgemm = (sgemm_fn)(uintptr_t)dlsym(h, "cblas_sgemm");
    setthr_fn setthr = (setthr_fn)(uintptr_t)dlsym(h, "openblas_set_num_threads");
    const char *(*config)(void) = (const char *(*)(void))(uintptr_t)dlsym(h, "openblas_get_config");
    if (!sgemm || !setthr) {
        fprintf(stderr, "blas_compare: libopenblas.so.0 lacks cblas_sgemm / openblas_set_num_threads\n");
        return 1;
    }
    printf("OpenBLAS: %s; OMP_WAIT_POLICY=%s\n", config ? config() : "?",
           getenv("OMP_WAIT_POLICY") ? getenv("OMP_WAIT_POLICY") : "(default)");
    static const struct {
        const char *what;
        size_t m, n, k;
    } shapes[] = {
        {"image b16 q/k/v/o", 800, 768, 768},   {"image b16 fc1", 800, 3072, 768}, {"image b16 fc2", 800, 768, 3072},
        {"image b1 q/k/v/o", 50, 768, 768},     {"image b1 fc1", 50, 3072, 768},   {"image b1 fc2", 50, 768, 3072},
        {"text 6 q/k/v/o", 6, 512, 512},        {"text 6 fc1", 6, 2048, 512},      {"text 6 fc2", 6, 512, 2048},
        {"text 77 fc1", 77, 2048, 512},
    };
    printf("%-18s %4s %5s %5s %3s  %9s %9s %10s  %s\n", "shape", "m", "n", "k", "thr", "openblas", "cdx-rows",
           "cdx-packed", "packed/openblas  rows/openblas");
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        size_t m = shapes[si].m, n = shapes[si].n, k = shapes[si].k;
        float *A = malloc(m * k * 4), *W = malloc(n * k * 4), *C = malloc(m * n * 4);
        size_t pb = cdx_wmat_bytes(CDX_W_F32P, n, k);
        float *Wp = aligned_alloc(64, (pb + 63) / 64 * 64);
        for (size_t i = 0; i < m * k; i++) A[i] = (float)((i * 7919u) % 1000) / 1000.0f - 0.5f;
        for (size_t i = 0; i < n * k; i++) W[i] = (float)((i * 104729u) % 1000) / 1000.0f - 0.5f;
        struct cdx_wmat wr = cdx_wmat_f32(W), wp = {CDX_W_F32P, Wp};
        cdx_wmat_pack(CDX_W_F32P, &wr, n, k, Wp);
        double flop = 2.0 * (double)m * (double)n * (double)k;
        for (int thr = 1; thr <= 2; thr++) {
            clipdex_ctx_params p = clipdex_ctx_params_default();
            p.n_threads = thr;
            clipdex_ctx *ctx = NULL;
            if (clipdex_ctx_new(&ctx, &p)) return 1;
            setthr(thr);
            double g[3][50], rp[50], rr[50];
            for (int r = 0; r < rounds; r++) {
                for (int meth = 0; meth < 3; meth++) {
                    int it = 0;
                    double t0 = now(), t;
                    do {
                        if (meth == 0)
                            sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)m, (int)n, (int)k, 1.0f, A, (int)k, W, (int)k, 0.0f,
                                  C, (int)n);
                        else
                            cdx_linear_w(ctx, A, k, meth == 1 ? &wr : &wp, NULL, C, n, m, n, k, CDX_ACT_NONE, 0);
                        it++;
                        t = now() - t0;
                    } while (t < 0.3);
                    g[meth][r] = flop * it / t / 1e9;
                }
                rp[r] = g[2][r] / g[0][r];
                rr[r] = g[1][r] / g[0][r];
            }
            double mp = median(rp, rounds), mr = median(rr, rounds);
            printf("%-18s %4zu %5zu %5zu %3d  %9.1f %9.1f %10.1f  %15.2f  %13.2f\n", shapes[si].what, m, n, k, thr,
                   median(g[0], rounds), median(g[1], rounds), median(g[2], rounds), mp, mr);
            fflush(stdout);
            clipdex_ctx_free(ctx);
        }
        /* does a row's result depend on the batch (m) or the thread count? */
        if (m > 1) {
            float *C1 = malloc(n * 4), *C2 = malloc(m * n * 4);
            setthr(1);
            sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)m, (int)n, (int)k, 1.0f, A, (int)k, W, (int)k, 0.0f, C, (int)n);
            size_t r = m - 1; /* the last row: in a remainder block of most blockings */
            sgemm(ROW_MAJOR, NO_TRANS, TRANS, 1, (int)n, (int)k, 1.0f, A + r * k, (int)k, W, (int)k, 0.0f, C1, (int)n);
            setthr(2);
            sgemm(ROW_MAJOR, NO_TRANS, TRANS, (int)m, (int)n, (int)k, 1.0f, A, (int)k, W, (int)k, 0.0f, C2, (int)n);
            printf("%-18s openblas: row %zu alone %s in the batch; 2 threads %s 1 thread\n", shapes[si].what, r,
                   memcmp(C1, C + r * n, n * 4) ? "DIFFERS from" : "equals", memcmp(C, C2, m * n * 4) ? "DIFFER from" : "equal");
            free(C1), free(C2);
        }
        free(A), free(W), free(C), free(Wp);
    }
    return 0;
}
