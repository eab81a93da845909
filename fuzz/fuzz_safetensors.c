/*
 * fuzz_safetensors.c - fuzz target for the weight-file reader and the model
 * config parser. The input is split at the first NUL byte: the part before is
 * written as config.json, the rest as model.safetensors, and the directory is
 * loaded as a model. Inputs without a NUL are parsed as safetensors only.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clipdex.h"
#include "model/safetensors.h"

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
        snprintf(dir, sizeof dir, "/tmp/clipdex-fuzz-st-%d", (int)getpid());
        mkdir(dir, 0700);
    }
    struct cdx_st_file f;
    memset(&f, 0, sizeof f);
    if (cdx_st_parse(ctx, data, size, "fuzz", &f) == CLIPDEX_OK) {
        for (size_t i = 0; i < f.n_tensors; i++) (void)cdx_st_find(&f, f.tensors[i].name);
    }
    cdx_st_close(&f);
    const uint8_t *nul = memchr(data, 0, size);
    if (nul) {
        put("config.json", data, (size_t)(nul - data));
        put("model.safetensors", nul + 1, size - (size_t)(nul - data) - 1);
        clipdex_model *m = NULL;
        if (clipdex_model_load(ctx, dir, NULL, &m) == CLIPDEX_OK) {
            clipdex_model_info info;
            clipdex_model_get_info(m, &info);
        }
        clipdex_model_free(m);
    }
    return 0;
}
