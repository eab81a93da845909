/*
 * test_model.c - the engine's forward pass against known answers:
 *  1. OpenAI's own code, via ../shared/data/known-answers/clip_data.json: one
 *     residual attention block and a tiny ViT (32 px, patch 2, width 4), 1e-5.
 *  2. ../shared/reference/tiny-s1001: a seeded model with the embeddings
 *     OpenAI's code gives for its preprocessed images and token ids, 1e-5.
 *  3. Model loading errors: missing/short/hostile files, missing tensors,
 *     wrong shapes and dtypes, each with a message naming the tensor.
 */
#include <jansson.h>
#include <unistd.h>

#include "check.h"
#include "model/model.h"
#include "npz.h"
#include "tensor/ops.h"

/* Flattens a nested JSON array of numbers into a new float array. */
static size_t flatten(json_t *a, float *out, size_t n)
{
    if (json_is_number(a)) {
        if (out) out[n] = (float)json_number_value(a);
        return n + 1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) n = flatten(v, out, n);
    return n;
}

/* Arrays made by jfloats for the known-answer weights, freed at the end. */
static void *allocs[256];
static size_t n_allocs;

static void *keep(void *p)
{
    if (n_allocs < sizeof allocs / sizeof allocs[0]) allocs[n_allocs++] = p;
    return p;
}

static float *jfloats(json_t *a, size_t *n_out)
{
    size_t n = flatten(a, NULL, 0);
    float *p = keep(malloc((n ? n : 1) * sizeof *p));
    flatten(a, p, 0);
    if (n_out) *n_out = n;
    return p;
}

static double max_abs(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

/* Fills a block from OpenAI-named weights `<prefix>attn.in_proj_weight` ... */
static void block_from_json(json_t *w, const char *prefix, struct cdx_block *b, int W)
{
    char k[256];
#define GET(name) (snprintf(k, sizeof k, "%s%s", prefix, name), jfloats(json_object_get(w, k), NULL))
    float *ipw = GET("attn.in_proj_weight"), *ipb = GET("attn.in_proj_bias");
    struct cdx_lin *qkv[3] = {&b->q, &b->k, &b->v};
    for (int i = 0; i < 3; i++) {
        qkv[i]->w = cdx_wmat_f32(ipw + i * W * W);
        qkv[i]->b = ipb + i * W;
    }
    b->o.w = cdx_wmat_f32(GET("attn.out_proj.weight"));
    b->o.b = GET("attn.out_proj.bias");
    b->ln1.w = GET("ln_1.weight");
    b->ln1.b = GET("ln_1.bias");
    b->ln2.w = GET("ln_2.weight");
    b->ln2.b = GET("ln_2.bias");
    b->fc1.w = cdx_wmat_f32(GET("mlp.c_fc.weight"));
    b->fc1.b = GET("mlp.c_fc.bias");
    b->fc2.w = cdx_wmat_f32(GET("mlp.c_proj.weight"));
    b->fc2.b = GET("mlp.c_proj.bias");
#undef GET
}

static void known_answers(clipdex_ctx *ctx, const char *shared)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/data/known-answers/clip_data.json", shared);
    json_error_t e;
    json_t *d = json_load_file(path, 0, &e);
    CHECK(d != NULL, "cannot parse %s: %s", path, e.text);
    if (!d) return;

    /* residual attention block: input [1, 4, 8] = 1 sequence of 4 tokens */
    json_t *ac = json_object_get(d, "attn_config");
    int W = (int)json_integer_value(json_object_get(ac, "d_model"));
    int H = (int)json_integer_value(json_object_get(ac, "n_head"));
    struct cdx_tower_cfg cfg = {W, 1, H, 4 * W, CDX_ACT_QUICK_GELU, 1e-5f};
    struct cdx_block blk;
    block_from_json(json_object_get(d, "attn_weights"), "", &blk, W);
    size_t n_in, n_out;
    float *x = jfloats(json_object_get(d, "attn_input"), &n_in);
    float *want = jfloats(json_object_get(d, "attn_output"), &n_out);
    size_t t = n_in / (size_t)W;
    float *scratch = malloc(cdx_block_scratch(&cfg, 1, t) * sizeof(float));
    cdx_block_forward(ctx, &cfg, &blk, x, 1, t, 0, scratch);
    double err = max_abs(x, want, n_out);
    CHECK(n_in == n_out && err < 1e-5, "attention block max error %g", err);
    printf("known answer: residual attention block max abs error %.3g\n", err);
    free(scratch);

    /* the pooled-rows-only last block == the rows of the full block, bitwise:
     * 3 sequences of 5 tokens, kept rows 0, 4, 2, with and without the causal mask */
    {
        size_t ns = 3, T = 5, R = ns * T, sel[3] = {0, 4, 2};
        float *xs = malloc(R * (size_t)W * sizeof(float)), *full = malloc(R * (size_t)W * sizeof(float));
        float *kept = malloc(ns * (size_t)W * sizeof(float));
        float *sc = malloc(cdx_block_scratch(&cfg, ns, T) * sizeof(float));
        uint32_t r = 12345;
        for (size_t i = 0; i < R * (size_t)W; i++) {
            r = r * 1664525u + 1013904223u;
            xs[i] = (float)(r >> 8) / 8388608.0f - 1.0f;
        }
        for (int causal = 0; causal < 2; causal++) {
            memcpy(full, xs, R * (size_t)W * sizeof(float));
            cdx_block_forward(ctx, &cfg, &blk, full, ns, T, causal, sc);
            cdx_block_forward_sel(ctx, &cfg, &blk, xs, ns, T, causal, sel, kept, sc);
            int same = 1;
            for (size_t q = 0; q < ns; q++)
                same &= memcmp(kept + q * (size_t)W, full + (q * T + sel[q]) * (size_t)W, (size_t)W * sizeof(float)) == 0;
            CHECK(same, "block on the kept rows only (causal %d) differs from the full block", causal);
        }
        free(xs), free(full), free(kept), free(sc);
    }

    /* tiny ViT: input given as [1, 32, 32, 3] (NHWC) for a [1, 3, 32, 32] model input */
    json_t *vc = json_object_get(d, "vit_config"), *vw = json_object_get(d, "vit_weights");
    struct cdx_vision v;
    memset(&v, 0, sizeof v);
    v.cfg.width = (int)json_integer_value(json_object_get(vc, "width"));
    v.cfg.layers = (int)json_integer_value(json_object_get(vc, "layers"));
    v.cfg.heads = (int)json_integer_value(json_object_get(vc, "heads"));
    v.cfg.mlp = 4 * v.cfg.width;
    v.cfg.act = CDX_ACT_QUICK_GELU;
    v.cfg.eps = 1e-5f;
    v.image_size = (int)json_integer_value(json_object_get(vc, "input_resolution"));
    v.patch = (int)json_integer_value(json_object_get(vc, "patch_size"));
    v.grid = v.image_size / v.patch;
    v.n_pos = v.grid * v.grid + 1;
    v.has_ln_pre = 1;
    int E = (int)json_integer_value(json_object_get(vc, "output_dim"));
    v.patch_w = cdx_wmat_f32(jfloats(json_object_get(vw, "conv1.weight"), NULL));
    v.class_emb = jfloats(json_object_get(vw, "class_embedding"), NULL);
    v.pos_emb = jfloats(json_object_get(vw, "positional_embedding"), NULL);
    v.ln_pre.w = jfloats(json_object_get(vw, "ln_pre.weight"), NULL);
    v.ln_pre.b = jfloats(json_object_get(vw, "ln_pre.bias"), NULL);
    v.ln_post.w = jfloats(json_object_get(vw, "ln_post.weight"), NULL);
    v.ln_post.b = jfloats(json_object_get(vw, "ln_post.bias"), NULL);
    float *proj = jfloats(json_object_get(vw, "proj"), NULL); /* [W, E]: transpose to [E, W] */
    float *projT = keep(malloc((size_t)E * v.cfg.width * sizeof *projT));
    for (int i = 0; i < v.cfg.width; i++)
        for (int j = 0; j < E; j++) projT[j * v.cfg.width + i] = proj[i * E + j];
    v.proj.w = cdx_wmat_f32(projT);
    v.proj.in = v.cfg.width;
    v.proj.out = E;
    v.blocks = keep(calloc((size_t)v.cfg.layers, sizeof *v.blocks));
    for (int l = 0; l < v.cfg.layers; l++) {
        char pre[64];
        snprintf(pre, sizeof pre, "transformer.resblocks.%d.", l);
        block_from_json(vw, pre, &v.blocks[l], v.cfg.width);
    }
    float *hwc = jfloats(json_object_get(d, "vit_input"), &n_in);
    int S = v.image_size;
    float *chw = keep(malloc((size_t)3 * S * S * sizeof *chw));
    for (int y = 0; y < S; y++)
        for (int xx = 0; xx < S; xx++)
            for (int c = 0; c < 3; c++) chw[(c * S + y) * S + xx] = hwc[(y * S + xx) * 3 + c];
    want = jfloats(json_object_get(d, "vit_output"), &n_out);
    float out[64];
    CHECK(n_out == (size_t)E && E <= 64, "vit output size %zu", n_out);
    cdx_vision_forward(ctx, &v, chw, 1, out);
    err = max_abs(out, want, (size_t)E);
    CHECK(err < 1e-5, "tiny ViT max error %g", err);
    printf("known answer: tiny ViT (32 px, patch 2, width 4) max abs error %.3g\n", err);
    json_decref(d);
}

static void shared_reference(clipdex_ctx *ctx, const char *shared)
{
    char dir[1024], path[1100];
    snprintf(dir, sizeof dir, "%s/reference/tiny-s1001", shared);
    clipdex_model *m = NULL;
    int rc = clipdex_model_load(ctx, dir, NULL, &m);
    CHECK(rc == CLIPDEX_OK, "load %s: %s", dir, clipdex_ctx_errmsg(ctx));
    if (rc) return;
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json_error_t e;
    json_t *g = json_load_file(path, 0, &e);
    snprintf(path, sizeof path, "%s/golden_inputs.npz", dir);
    npz_file *z = NULL;
    npz_array imgs, toks;
    int zr = npz_open(path, &z);
    CHECK(g && zr == 0, "cannot read the golden files in %s", dir);
    if (!g || zr) return;
    zr = npz_find(z, "images", &imgs) || npz_find(z, "tokens", &toks);
    CHECK(zr == 0 && imgs.ndim == 4 && toks.ndim == 2 && strcmp(imgs.dtype, "<f4") == 0,
          "npz arrays images/tokens");
    if (zr) return;
    size_t n_img = imgs.shape[0], n_txt = toks.shape[0], E = (size_t)m->embed_dim;
    float *px = malloc(imgs.count * sizeof *px);
    memcpy(px, imgs.data, imgs.count * sizeof *px);
    int32_t *ids = malloc(toks.count * sizeof *ids);
    for (size_t k = 0; k < toks.count; k++) { /* int64 or int32 */
        int64_t v = 0;
        if (toks.itemsize == 8) memcpy(&v, (const char *)toks.data + 8 * k, 8);
        else { int32_t w; memcpy(&w, (const char *)toks.data + 4 * k, 4); v = w; }
        ids[k] = (int32_t)v;
    }
    float *ie = malloc(n_img * E * 4), *te = malloc(n_txt * E * 4);
    CHECK(clipdex_pixels_embed(ctx, m, px, n_img, ie, n_img * E, 0) == 0, "pixels_embed: %s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_tokens_embed(ctx, m, ids, n_txt, te, n_txt * E, 0) == 0, "tokens_embed: %s", clipdex_ctx_errmsg(ctx));
    double worst = 0;
    json_t *ji = json_object_get(g, "images"), *jt = json_object_get(g, "texts"), *it;
    size_t i;
    json_array_foreach(ji, i, it) {
        float *want = jfloats(json_object_get(it, "embedding_normalized"), NULL);
        double err = max_abs(ie + i * E, want, E);
        worst = fmax(worst, err);
        CHECK(err < 1e-5, "image %s: max error %g", json_string_value(json_object_get(it, "file")), err);
    }
    json_array_foreach(jt, i, it) {
        float *want = jfloats(json_object_get(it, "embedding_normalized"), NULL);
        double err = max_abs(te + i * E, want, E);
        worst = fmax(worst, err);
        CHECK(err < 1e-5, "text '%s': max error %g", json_string_value(json_object_get(it, "text")), err);
    }
    /* raw (unnormalized) embeddings too */
    CHECK(clipdex_pixels_embed(ctx, m, px, 1, ie, E, CLIPDEX_EMBED_RAW) == 0, "raw embed");
    float *raw = jfloats(json_object_get(json_array_get(ji, 0), "embedding"), NULL);
    double rerr = max_abs(ie, raw, E);
    CHECK(rerr < 1e-4, "raw image embedding max error %g", rerr);
    /* logits and softmax over texts */
    clipdex_model_info info;
    clipdex_model_get_info(m, &info);
    CHECK(fabsf(info.logit_scale - 100.00001f) < 1e-3, "logit scale %g", info.logit_scale);
    printf("shared reference tiny-s1001: %zu images, %zu texts, worst max abs error %.3g\n", n_img,
           n_txt, worst);
    free(px), free(ids), free(ie), free(te);
    npz_close(z);
    json_decref(g);
    clipdex_model_free(m);
}

/* --- model files that must be refused cleanly ---------------------------- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

static void write_str(const char *path, const char *s) { write_file(path, s, strlen(s)); }

static void write_st(const char *path, const char *header, size_t data_len)
{
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    uint8_t le[8];
    for (int i = 0; i < 8; i++) le[i] = (uint8_t)(n >> (8 * i));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_len; i++) fputc(0, f);
    fclose(f);
}

static int expect_fail(clipdex_ctx *ctx, const char *dir, int status, const char *needle)
{
    clipdex_model *m = NULL;
    int rc = clipdex_model_load(ctx, dir, NULL, &m);
    CHECK(rc == status && m == NULL, "expected status %d, got %d (%s)", status, rc, clipdex_ctx_errmsg(ctx));
    CHECK(strstr(clipdex_ctx_errmsg(ctx), needle) != NULL, "message '%s' should mention '%s'",
          clipdex_ctx_errmsg(ctx), needle);
    clipdex_model_free(m);
    return rc;
}

static void bad_models(clipdex_ctx *ctx, const char *tmp)
{
    char dir[512], st[600], cfg[600];
    snprintf(dir, sizeof dir, "%s/bad", tmp);
    mkdir(dir, 0755);
    snprintf(st, sizeof st, "%s/model.safetensors", dir);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    expect_fail(ctx, "/nonexistent/model", CLIPDEX_E_IO, "/nonexistent/model");
    expect_fail(ctx, dir, CLIPDEX_E_IO, "config.json");
    const char *tiny_cfg = "{\"projection_dim\":4,\"text_config\":{\"hidden_size\":4,\"intermediate_size\":8,"
                           "\"num_hidden_layers\":1,\"num_attention_heads\":1,\"vocab_size\":10,\"max_position_embeddings\":5},"
                           "\"vision_config\":{\"hidden_size\":4,\"intermediate_size\":8,\"num_hidden_layers\":1,"
                           "\"num_attention_heads\":1,\"image_size\":8,\"patch_size\":4}}";
    write_str(cfg, tiny_cfg);
    write_file(st, "abc", 3);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "too short");
    write_file(st, "\xff\xff\xff\xff\xff\xff\xff\x7f{}", 10);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "100 MB");
    write_file(st, "\x40\x00\x00\x00\x00\x00\x00\x00{}", 10);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "truncated");
    write_st(st, "{\"a\": [1,2", 0);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "bad JSON");
    write_st(st, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "outside");
    write_st(st, "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "'a'");
    write_st(st, "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,16]}}", 16);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "'a'");
    write_st(st, "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "bad shape");
    write_st(st, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4);
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "bad JSON");
    /* a valid file without the tensors */
    write_st(st, "{\"__metadata__\":{\"format\":\"pt\"},\"x\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16);
    expect_fail(ctx, dir, CLIPDEX_E_MODEL, "vision_model.embeddings.patch_embedding.weight");
    /* wrong shape and wrong dtype name the tensor and both shapes */
    write_st(st, "{\"vision_model.embeddings.patch_embedding.weight\":{\"dtype\":\"F32\",\"shape\":[4,3,4,5],\"data_offsets\":[0,960]}}", 960);
    expect_fail(ctx, dir, CLIPDEX_E_MODEL, "has shape [4,3,4,5], expected [4,3,4,4]");
    write_st(st, "{\"vision_model.embeddings.patch_embedding.weight\":{\"dtype\":\"I32\",\"shape\":[4,3,4,4],\"data_offsets\":[0,768]}}", 768);
    expect_fail(ctx, dir, CLIPDEX_E_MODEL, "dtype I32");
    /* bad configs */
    write_str(cfg, "{\"vision_config\":{\"hidden_size\":\"big\"}}");
    expect_fail(ctx, dir, CLIPDEX_E_MODEL, "hidden_size");
    write_str(cfg, "{\"vision_config\":{\"hidden_size\":10,\"num_attention_heads\":3}}");
    expect_fail(ctx, dir, CLIPDEX_E_MODEL, "not divisible");
    write_str(cfg, "{\"vision_config\":{\"hidden_act\":\"relu\"}}");
    expect_fail(ctx, dir, CLIPDEX_E_UNSUPPORTED, "relu");
    write_str(cfg, "[1,2]");
    expect_fail(ctx, dir, CLIPDEX_E_FORMAT, "config.json");
}

int main(void)
{
    clipdex_ctx *ctx;
    CHECK(clipdex_ctx_new(&ctx, NULL) == CLIPDEX_OK, "ctx");
    const char *shared = check_shared();
    if (shared) {
        known_answers(ctx, shared);
        shared_reference(ctx, shared);
    } else {
        SKIP("../shared is absent: known answers and the shared reference are not checked");
    }
    char tmp[] = "/tmp/clipdex-test-model-XXXXXX";
    CHECK(mkdtemp(tmp) != NULL, "mkdtemp");
    bad_models(ctx, tmp);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK(system(cmd) == 0, "cleanup");
    /* API misuse */
    CHECK(clipdex_model_load(ctx, NULL, NULL, NULL) == CLIPDEX_E_ARG, "NULL args");
    clipdex_model_free(NULL);
    clipdex_ctx_free(NULL);
    CHECK(strcmp(clipdex_status_str(CLIPDEX_E_MODEL), "invalid model") == 0, "status str");
    clipdex_ctx_free(ctx);
    for (size_t i = 0; i < n_allocs; i++) free(allocs[i]);
    return check_done("test_model");
}
