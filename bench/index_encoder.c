/*
 * index_encoder.c - encoder-only throughput for the index benchmark: runs
 * clipdex_pixels_embed on N preprocessed (constant) images in batches of B,
 * with no decoding, and prints images/s. Usage: index_encoder MODEL N B
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "clipdex.h"

int main(int argc, char **argv)
{
    if (argc < 4) return 2;
    size_t n = strtoull(argv[2], NULL, 10), b = strtoull(argv[3], NULL, 10);
    clipdex_ctx *ctx = NULL;
    clipdex_model *m = NULL;
    clipdex_model_info info;
    if (clipdex_ctx_new(&ctx, NULL) || clipdex_model_load(ctx, argv[1], NULL, &m) ||
        clipdex_model_get_info(m, &info)) {
        fprintf(stderr, "cannot load %s: %s\n", argv[1], clipdex_ctx_errmsg(ctx));
        return 1;
    }
    size_t px = 3 * (size_t)info.image_size * (size_t)info.image_size;
    float *pix = calloc(b * px, sizeof *pix), *out = malloc(b * (size_t)info.embed_dim * sizeof *out);
    if (!pix || !out) return 1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (size_t done = 0; done < n; done += b) {
        size_t k = n - done < b ? n - done : b;
        if (clipdex_pixels_embed(ctx, m, pix, k, out, k * (size_t)info.embed_dim, 0)) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    printf("encoder only: %zu images in %.2f s = %.1f img/s\n", n, s, (double)n / s);
    free(pix);
    free(out);
    clipdex_model_free(m);
    clipdex_ctx_free(ctx);
    return 0;
}
