/*
 * fuzz_gguf.c - fuzz target for the GGUF reader and the GGUF model loader.
 * The input is parsed from memory (every key read through the typed
 * getters); then it is written to a file and loaded as a model, and a model
 * that loads (small ones only) embeds one blank image and one token
 * sequence, which runs the kernels on the file's quantized weights.
 * Seeds: fuzz/corpus/gguf/ (tools/gen_gguf_seeds.py).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clipdex.h"
#include "model/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static clipdex_ctx *ctx;
    static char path[64];
    if (!ctx) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = 1;
        clipdex_ctx_new(&ctx, &p);
        snprintf(path, sizeof path, "/tmp/clipdex-fuzz-gguf-%d.gguf", (int)getpid());
    }
    struct cdx_gguf_file f;
    memset(&f, 0, sizeof f);
    if (cdx_gguf_parse(ctx, data, size, "fuzz", &f) == CLIPDEX_OK) {
        for (size_t i = 0; i < f.n_kv; i++) {
            uint32_t u;
            float x[3];
            int b;
            const char *s;
            size_t n;
            (void)cdx_gguf_get_u32(&f, f.kv[i].key, &u);
            (void)cdx_gguf_get_f32(&f, f.kv[i].key, x);
            (void)cdx_gguf_get_bool(&f, f.kv[i].key, &b);
            (void)cdx_gguf_get_f32s(&f, f.kv[i].key, x, 3);
            if (cdx_gguf_get_str(&f, f.kv[i].key, &s, &n) == 1 && n) (void)s[n - 1];
        }
        for (size_t i = 0; i < f.n_tensors; i++) (void)cdx_gguf_find(&f, f.tensors[i].name);
    }
    cdx_gguf_close(&f);
    if (!cdx_gguf_sniff(data, size)) return 0;
    FILE *out = fopen(path, "wb");
    if (!out) return 0;
    if (size) fwrite(data, 1, size, out);
    fclose(out);
    clipdex_model *m = NULL;
    if (clipdex_model_load(ctx, path, NULL, &m) == CLIPDEX_OK) {
        clipdex_model_info info;
        clipdex_model_get_info(m, &info);
        if (info.image_size <= 64 && info.vision_width <= 256 && info.text_width <= 256 && info.embed_dim <= 256 &&
            info.context_length <= 64 && info.vision_layers <= 4 && info.text_layers <= 4 &&
            info.vision_mlp <= 1024 && info.text_mlp <= 1024) {
            size_t px = 3 * (size_t)info.image_size * info.image_size, E = (size_t)info.embed_dim;
            float *pixels = calloc(px, sizeof *pixels), *emb = malloc(E * sizeof *emb);
            int32_t *ids = calloc((size_t)info.context_length, sizeof *ids);
            if (pixels && emb && ids) {
                (void)clipdex_pixels_embed(ctx, m, pixels, 1, emb, E, 0);
                ids[0] = info.vocab_size - 1;
                (void)clipdex_tokens_embed(ctx, m, ids, 1, emb, E, 0);
            }
            free(pixels), free(emb), free(ids);
        }
    }
    clipdex_model_free(m);
    unlink(path);
    return 0;
}
