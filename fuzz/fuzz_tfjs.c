/*
 * fuzz_tfjs.c - fuzz target for the TF.js graph-model reader and executor.
 * The input is split at the first NUL byte: the part before is written as
 * model.json, the rest as w.bin (the weights file a model names); the model
 * is loaded, and when it loads it is run once on a zero input of its declared
 * shape (when that shape is known and small).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipdex.h"
#include "graph/graph.h"

static char dir[64];

static void put(const char *name, const uint8_t *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static clipdex_ctx *ctx;
    if (!ctx) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = 1;
        clipdex_ctx_new(&ctx, &p);
        snprintf(dir, sizeof dir, "/tmp/clipdex-fuzz-tfjs-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    const uint8_t *nul = memchr(data, 0, size);
    size_t jlen = nul ? (size_t)(nul - data) : size;
    put("model.json", data, jlen);
    put("w.bin", nul ? nul + 1 : data, nul ? size - jlen - 1 : 0);
    char path[128];
    snprintf(path, sizeof path, "%s/model.json", dir);
    struct cdx_graph *g = NULL;
    if (cdx_graph_load_tfjs(ctx, path, &g) == 0) {
        size_t n = 1;
        int ok = 1;
        for (int d = 0; d < g->in_rank; d++) {
            if (g->in_dim[d] < 1 || g->in_dim[d] > 64) ok = 0;
            else n *= (size_t)g->in_dim[d];
        }
        float *x = ok && n <= 65536 ? calloc(n, sizeof *x) : NULL;
        if (x) cdx_graph_run(ctx, g, x, g->in_dim, g->in_rank);
        free(x);
        cdx_graph_free(g);
    }
    return 0;
}
