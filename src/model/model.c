/*
 * model.c - load a CLIP checkpoint: find the weight file and its config, read
 * the config (Hugging Face CLIPModel or OpenCLIP), then bind every tensor the
 * towers need, checking presence, dtype and shape against the config. F32
 * tensors are used in place from the read-only mapping; F16/BF16 tensors and
 * the OpenCLIP projections (stored [width, embed], used as [embed, width]) are
 * converted once into owned buffers. Unused tensors (e.g. int64 position_ids)
 * are ignored. No dimension is hard-coded: all come from the config.
 */
#include "model/model.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>

#include "core/cpu.h"
#include "tensor/ops.h"
#include "text/text.h"

enum { LAYOUT_HF = 1, LAYOUT_OPENCLIP = 2 };

#define MAX_CONFIG_BYTES (4u << 20)
#define MAX_DIM (1 << 20)   /* sanity bound on any width/size from a config */
#define MAX_LAYERS 1024

static const float clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

clipdex_model_params clipdex_model_params_default(void)
{
    clipdex_model_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* ---------------------------------------------------------------- config */

struct cfg {
    int layout, embed;
    struct cdx_tower_cfg v, t;
    int image_size, patch, vocab, ctx_len, has_ln_pre;
    float mean[3], std[3];
};

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int load_json(clipdex_ctx *ctx, const char *path, json_t **out)
{
    char *buf;
    size_t len;
    int rc = cdx_read_file(ctx, path, MAX_CONFIG_BYTES, &buf, &len);
    if (rc) return rc;
    json_error_t e;
    *out = json_loadb(buf, len, 0, &e);
    free(buf);
    if (!*out || !json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': bad JSON: %s (line %d)", path,
                         e.text, e.line);
    }
    return CLIPDEX_OK;
}

/* An integer field with a default; error if present but not a sane integer. */
static int get_int(clipdex_ctx *ctx, const char *path, json_t *obj, const char *key, int def, int *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        *out = def;
        return CLIPDEX_OK;
    }
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) d = json_real_value(v);
    else if (json_is_array(v) && json_array_size(v) == 2 && json_is_integer(json_array_get(v, 0)) &&
             json_integer_value(json_array_get(v, 0)) == json_integer_value(json_array_get(v, 1)))
        d = (double)json_integer_value(json_array_get(v, 0)); /* square [n, n] sizes */
    else
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': '%s' is not an integer", path, key);
    if (d < 1 || d > MAX_DIM)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': '%s' = %g is out of range", path, key, d);
    *out = (int)d;
    return CLIPDEX_OK;
}

static int get_num(clipdex_ctx *ctx, const char *path, json_t *obj, const char *key, double def, double *out)
{
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    if (!v || json_is_null(v)) {
        *out = def;
        return CLIPDEX_OK;
    }
    if (!json_is_number(v))
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': '%s' is not a number", path, key);
    *out = json_number_value(v);
    return CLIPDEX_OK;
}

static int get_act(clipdex_ctx *ctx, const char *path, json_t *obj, int *out)
{
    json_t *v = obj ? json_object_get(obj, "hidden_act") : NULL;
    const char *s = v ? json_string_value(v) : "quick_gelu";
    if (!s) return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': 'hidden_act' is not a string", path);
    if (strcmp(s, "quick_gelu") == 0) *out = CDX_ACT_QUICK_GELU;
    else if (strcmp(s, "gelu") == 0) *out = CDX_ACT_GELU;
    else
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED,
                         "config '%s': activation '%s' is not supported (quick_gelu or gelu)", path, s);
    return CLIPDEX_OK;
}

static int get_mean_std(clipdex_ctx *ctx, const char *path, json_t *obj, const char *mkey,
                        const char *skey, struct cfg *c)
{
    const char *keys[2] = {mkey, skey};
    float *dst[2] = {c->mean, c->std};
    for (int k = 0; k < 2; k++) {
        json_t *a = obj ? json_object_get(obj, keys[k]) : NULL;
        if (!a) continue;
        if (!json_is_array(a) || json_array_size(a) != 3)
            return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': '%s' is not a list of 3 numbers", path, keys[k]);
        for (int i = 0; i < 3; i++) {
            json_t *x = json_array_get(a, (size_t)i);
            if (!json_is_number(x) || !(json_number_value(x) > -1e6 && json_number_value(x) < 1e6) ||
                (k == 1 && !(json_number_value(x) > 0)))
                return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': '%s' holds a bad value", path, keys[k]);
            dst[k][i] = (float)json_number_value(x);
        }
    }
    return CLIPDEX_OK;
}

/* transformers' CLIPConfig; absent fields take transformers' defaults. */
static int parse_hf_config(clipdex_ctx *ctx, const char *path, json_t *root, struct cfg *c)
{
    json_t *tc = json_object_get(root, "text_config");
    if (!json_is_object(tc)) tc = json_object_get(root, "text_config_dict");
    json_t *vc = json_object_get(root, "vision_config");
    if (!json_is_object(vc)) vc = json_object_get(root, "vision_config_dict");
    if (!json_is_object(tc)) tc = NULL;
    if (!json_is_object(vc)) vc = NULL;
    int rc, ch;
    double ve, te;
    if ((rc = get_int(ctx, path, root, "projection_dim", 512, &c->embed)) ||
        (rc = get_int(ctx, path, vc, "hidden_size", 768, &c->v.width)) ||
        (rc = get_int(ctx, path, vc, "intermediate_size", 3072, &c->v.mlp)) ||
        (rc = get_int(ctx, path, vc, "num_hidden_layers", 12, &c->v.layers)) ||
        (rc = get_int(ctx, path, vc, "num_attention_heads", 12, &c->v.heads)) ||
        (rc = get_int(ctx, path, vc, "image_size", 224, &c->image_size)) ||
        (rc = get_int(ctx, path, vc, "patch_size", 32, &c->patch)) ||
        (rc = get_int(ctx, path, vc, "num_channels", 3, &ch)) ||
        (rc = get_num(ctx, path, vc, "layer_norm_eps", 1e-5, &ve)) ||
        (rc = get_act(ctx, path, vc, &c->v.act)) ||
        (rc = get_int(ctx, path, tc, "hidden_size", 512, &c->t.width)) ||
        (rc = get_int(ctx, path, tc, "intermediate_size", 2048, &c->t.mlp)) ||
        (rc = get_int(ctx, path, tc, "num_hidden_layers", 12, &c->t.layers)) ||
        (rc = get_int(ctx, path, tc, "num_attention_heads", 8, &c->t.heads)) ||
        (rc = get_int(ctx, path, tc, "max_position_embeddings", 77, &c->ctx_len)) ||
        (rc = get_int(ctx, path, tc, "vocab_size", 49408, &c->vocab)) ||
        (rc = get_num(ctx, path, tc, "layer_norm_eps", 1e-5, &te)) ||
        (rc = get_act(ctx, path, tc, &c->t.act)))
        return rc;
    if (ch != 3)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "config '%s': num_channels = %d, only 3 is supported", path, ch);
    c->v.eps = (float)ve;
    c->t.eps = (float)te;
    c->has_ln_pre = 1;
    return CLIPDEX_OK;
}

/* OpenCLIP's model config ({"model_cfg": {...}, "preprocess_cfg": {...}}). */
static int parse_openclip_config(clipdex_ctx *ctx, const char *path, json_t *root, struct cfg *c)
{
    json_t *mc = json_object_get(root, "model_cfg");
    if (!json_is_object(mc)) mc = root;
    json_t *vc = json_object_get(mc, "vision_cfg"), *tc = json_object_get(mc, "text_cfg");
    if (!json_is_object(vc) || !json_is_object(tc))
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': model_cfg needs vision_cfg and text_cfg objects", path);
    static const char *const unsupported_v[] = {"timm_model_name", "hf_model_name"};
    for (size_t i = 0; i < 2; i++) {
        json_t *x = json_object_get(vc, unsupported_v[i]);
        json_t *y = json_object_get(tc, unsupported_v[i]);
        if ((x && !json_is_null(x)) || (y && !json_is_null(y)))
            return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED,
                             "config '%s': towers built from '%s' are not supported (ViT + transformer text only)",
                             path, unsupported_v[i]);
    }
    json_t *vl = json_object_get(vc, "layers");
    if (vl && !json_is_integer(vl))
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED,
                         "config '%s': vision 'layers' is not an integer (ResNet towers are not supported)", path);
    const char *pt;
    json_t *p = json_object_get(vc, "pool_type");
    if (p && (pt = json_string_value(p)) && strcmp(pt, "tok") != 0)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "config '%s': vision pool_type '%s' is not supported", path, pt);
    p = json_object_get(tc, "pool_type");
    if (p && (pt = json_string_value(p)) && strcmp(pt, "argmax") != 0)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "config '%s': text pool_type '%s' is not supported", path, pt);
    int rc, head_width;
    double vr, tr;
    if ((rc = get_int(ctx, path, mc, "embed_dim", 512, &c->embed)) ||
        (rc = get_int(ctx, path, vc, "image_size", 224, &c->image_size)) ||
        (rc = get_int(ctx, path, vc, "layers", 12, &c->v.layers)) ||
        (rc = get_int(ctx, path, vc, "width", 768, &c->v.width)) ||
        (rc = get_int(ctx, path, vc, "patch_size", 16, &c->patch)) ||
        (rc = get_int(ctx, path, vc, "head_width", 64, &head_width)) ||
        (rc = get_num(ctx, path, vc, "mlp_ratio", 4.0, &vr)) ||
        (rc = get_int(ctx, path, tc, "context_length", 77, &c->ctx_len)) ||
        (rc = get_int(ctx, path, tc, "vocab_size", 49408, &c->vocab)) ||
        (rc = get_int(ctx, path, tc, "width", 512, &c->t.width)) ||
        (rc = get_int(ctx, path, tc, "heads", 8, &c->t.heads)) ||
        (rc = get_int(ctx, path, tc, "layers", 12, &c->t.layers)) ||
        (rc = get_num(ctx, path, tc, "mlp_ratio", 4.0, &tr)))
        return rc;
    if (c->v.width % head_width)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': vision width %d is not a multiple of head_width %d",
                         path, c->v.width, head_width);
    c->v.heads = c->v.width / head_width;
    if (!(vr > 0 && vr < 64 && tr > 0 && tr < 64))
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': bad mlp_ratio", path);
    c->v.mlp = (int)(c->v.width * vr);
    c->t.mlp = (int)(c->t.width * tr);
    json_t *qg = json_object_get(mc, "quick_gelu");
    int quick = qg && json_is_true(qg);
    c->v.act = c->t.act = quick ? CDX_ACT_QUICK_GELU : CDX_ACT_GELU;
    c->v.eps = c->t.eps = 1e-5f;
    json_t *nlp = json_object_get(vc, "no_ln_pre");
    c->has_ln_pre = !(nlp && json_is_true(nlp));
    return get_mean_std(ctx, path, json_object_get(root, "preprocess_cfg"), "mean", "std", c);
}

/* A positive integer key of a GGUF file (absent: `def`, or an error if def is 0). */
static int gguf_int(clipdex_ctx *ctx, const struct cdx_gguf_file *f, const char *key, int def, int *out)
{
    uint32_t v;
    int r = cdx_gguf_get_u32(f, key, &v);
    if (r == 0) {
        if (!def) return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' is missing", f->path, key);
        *out = def;
        return CLIPDEX_OK;
    }
    if (r < 0 || v < 1 || v > MAX_DIM)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' is not an integer in [1, %d]", f->path,
                         key, MAX_DIM);
    *out = (int)v;
    return CLIPDEX_OK;
}

static int gguf_flag(clipdex_ctx *ctx, const struct cdx_gguf_file *f, const char *key, int def, int *out)
{
    int r = cdx_gguf_get_bool(f, key, out);
    if (r < 0) return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' is not a bool", f->path, key);
    if (r == 0) *out = def;
    return CLIPDEX_OK;
}

static int gguf_eps(clipdex_ctx *ctx, const struct cdx_gguf_file *f, const char *key, float *out)
{
    int r = cdx_gguf_get_f32(f, key, out);
    if (r < 0) return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' is not a number", f->path, key);
    if (r == 0) *out = 1e-5f;
    return CLIPDEX_OK;
}

/* The hyperparameters of a GGUF file, under clip.cpp's keys (docs/quantized.md). */
static int parse_gguf_config(clipdex_ctx *ctx, const clipdex_model *m, struct cfg *c)
{
    const struct cdx_gguf_file *f = &m->gguf;
    const char *arch;
    size_t alen;
    if (cdx_gguf_get_str(f, "general.architecture", &arch, &alen) != 1 || alen != 4 || memcmp(arch, "clip", 4) != 0)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': not a CLIP GGUF file (general.architecture is not 'clip')",
                         f->path);
    int has_t, has_v, vgelu, tgelu, ep_t = 0, ep_v = 0, rc;
    if ((rc = gguf_flag(ctx, f, "clip.has_text_encoder", 1, &has_t)) ||
        (rc = gguf_flag(ctx, f, "clip.has_vision_encoder", 1, &has_v)))
        return rc;
    if (!has_t || !has_v)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': a %s-only CLIP file; clipdex needs both towers",
                         f->path, has_t ? "text" : "vision");
    if ((rc = gguf_int(ctx, f, "clip.text.context_length", 0, &c->ctx_len)) ||
        (rc = gguf_int(ctx, f, "clip.text.embedding_length", 0, &c->t.width)) ||
        (rc = gguf_int(ctx, f, "clip.text.feed_forward_length", 0, &c->t.mlp)) ||
        (rc = gguf_int(ctx, f, "clip.text.attention.head_count", 0, &c->t.heads)) ||
        (rc = gguf_int(ctx, f, "clip.text.block_count", 0, &c->t.layers)) ||
        (rc = gguf_eps(ctx, f, "clip.text.attention.layer_norm_epsilon", &c->t.eps)) ||
        (rc = gguf_int(ctx, f, "clip.vision.image_size", 0, &c->image_size)) ||
        (rc = gguf_int(ctx, f, "clip.vision.patch_size", 0, &c->patch)) ||
        (rc = gguf_int(ctx, f, "clip.vision.embedding_length", 0, &c->v.width)) ||
        (rc = gguf_int(ctx, f, "clip.vision.feed_forward_length", 0, &c->v.mlp)) ||
        (rc = gguf_int(ctx, f, "clip.vision.attention.head_count", 0, &c->v.heads)) ||
        (rc = gguf_int(ctx, f, "clip.vision.block_count", 0, &c->v.layers)) ||
        (rc = gguf_eps(ctx, f, "clip.vision.attention.layer_norm_epsilon", &c->v.eps)) ||
        (rc = gguf_int(ctx, f, "clip.text.projection_dim", -1, &ep_t)) ||
        (rc = gguf_int(ctx, f, "clip.vision.projection_dim", -1, &ep_v)) ||
        (rc = gguf_flag(ctx, f, "clip.use_gelu", 0, &vgelu)) ||
        (rc = gguf_flag(ctx, f, "clipdex.text.use_gelu", vgelu, &tgelu)))
        return rc;
    if (ep_t < 0 && ep_v < 0)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key 'clip.text.projection_dim' is missing", f->path);
    if (ep_t > 0 && ep_v > 0 && ep_t != ep_v)
        return cdx_error(ctx, CLIPDEX_E_UNSUPPORTED, "cannot load '%s': text and vision projection dims differ (%d, %d)",
                         f->path, ep_t, ep_v);
    c->embed = ep_t > 0 ? ep_t : ep_v;
    c->v.act = vgelu ? CDX_ACT_GELU : CDX_ACT_QUICK_GELU;
    c->t.act = tgelu ? CDX_ACT_GELU : CDX_ACT_QUICK_GELU;
    c->has_ln_pre = cdx_gguf_find(f, "v.pre_ln.weight") != NULL;
    const struct cdx_gguf_tensor *te = cdx_gguf_find(f, "t.token_embd.weight");
    c->vocab = te && te->ndim == 2 && te->ne[1] >= 1 && te->ne[1] <= MAX_DIM ? (int)te->ne[1] : 49408;
    const char *keys[2] = {"clip.vision.image_mean", "clip.vision.image_std"};
    float *dst[2] = {c->mean, c->std};
    for (int k = 0; k < 2; k++) {
        float v[3];
        int r = cdx_gguf_get_f32s(f, keys[k], v, 3);
        if (r < 0) return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' is not 3 numbers", f->path, keys[k]);
        if (r == 0) continue;
        for (int i = 0; i < 3; i++)
            if (!(v[i] > -1e6f && v[i] < 1e6f) || (k == 1 && !(v[i] > 0)))
                return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': key '%s' holds a bad value", f->path, keys[k]);
        memcpy(dst[k], v, sizeof v);
    }
    return CLIPDEX_OK;
}

static int check_cfg(clipdex_ctx *ctx, const char *path, const struct cfg *c)
{
    const struct cdx_tower_cfg *tw[2] = {&c->v, &c->t};
    const char *nm[2] = {"vision", "text"};
    for (int i = 0; i < 2; i++) {
        if (tw[i]->layers > MAX_LAYERS)
            return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': %s tower has %d layers", path, nm[i], tw[i]->layers);
        if (tw[i]->width % tw[i]->heads)
            return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': %s width %d is not divisible by %d heads",
                             path, nm[i], tw[i]->width, tw[i]->heads);
        if (!(tw[i]->eps > 0 && tw[i]->eps < 1))
            return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': %s layer_norm_eps is out of range", path, nm[i]);
    }
    if (c->patch > c->image_size)
        return cdx_error(ctx, CLIPDEX_E_MODEL, "config '%s': patch size %d exceeds image size %d", path,
                         c->patch, c->image_size);
    if (c->image_size > 4096 || c->ctx_len > 65536)
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "config '%s': image size %d or context %d is too large",
                         path, c->image_size, c->ctx_len);
    return CLIPDEX_OK;
}

/* --------------------------------------------------------------- binding */

#define SRC_BF16 30 /* ggml's number for bfloat16; safetensors BF16 maps here */

/* A tensor of either container, shape in PyTorch order (outermost first). */
struct src_tensor {
    const char *name;       /* the name in the file */
    int type;               /* enum cdx_wtype, SRC_BF16, or -1 (a dtype clipdex cannot use) */
    const char *type_name;
    int ndim;
    int64_t shape[CDX_ST_MAX_DIMS];
    uint64_t numel;
    const uint8_t *data;
};

/* The GGUF name clip.cpp's converter gives a Hugging Face tensor name. */
void cdx_clip_gguf_name(const char *hf, char *out, size_t len)
{
    static const char *const rep[][2] = {
        {"text_model", "t"}, {"vision_model", "v"}, {"encoder.layers", "blk"}, {"embeddings.", ""},
        {"_proj", ""}, {"self_attn.", "attn_"}, {"layer_norm", "ln"}, {"layernorm", "ln"},
        {"mlp.fc1", "ffn_down"}, {"mlp.fc2", "ffn_up"}, {"embedding", "embd"}, {"final", "post"},
        {"layrnorm", "ln"},
    };
    snprintf(out, len, "%s", hf);
    if (strstr(hf, "projection")) return;
    char tmp[256];
    for (size_t r = 0; r < sizeof rep / sizeof rep[0]; r++) {
        size_t o = 0, fl = strlen(rep[r][0]), tl = strlen(rep[r][1]);
        for (const char *p = out; *p && o + 1 < sizeof tmp;) {
            if (strncmp(p, rep[r][0], fl) == 0 && o + tl + 1 < sizeof tmp) {
                memcpy(tmp + o, rep[r][1], tl);
                o += tl;
                p += fl;
            } else {
                tmp[o++] = *p++;
            }
        }
        tmp[o] = '\0';
        snprintf(out, len, "%s", tmp);
    }
}

/* Looks up a tensor by its Hugging Face / OpenCLIP name (GGUF files: the
 * clip.cpp name of its HF name). `fname` receives the name in the file. */
static int find_src(const clipdex_model *m, const char *name, struct src_tensor *t, char *fname, size_t flen)
{
    memset(t, 0, sizeof *t);
    if (m->is_gguf) {
        cdx_clip_gguf_name(name, fname, flen);
        const struct cdx_gguf_tensor *g = cdx_gguf_find(&m->gguf, fname);
        if (!g) return 0;
        t->type = g->type;
        t->type_name = cdx_wtype_name(g->type);
        t->ndim = g->ndim;
        for (int i = 0; i < g->ndim; i++) t->shape[i] = (int64_t)g->ne[g->ndim - 1 - i];
        t->numel = g->numel;
        t->data = m->gguf.data + g->offset;
    } else {
        snprintf(fname, flen, "%s", name);
        const struct cdx_st_tensor *s = cdx_st_find(&m->file, name);
        if (!s) return 0;
        t->type = s->dtype == CDX_F32 ? CDX_W_F32 : s->dtype == CDX_F16 ? CDX_W_F16
                : s->dtype == CDX_BF16 ? SRC_BF16 : -1;
        t->type_name = cdx_dtype_name(s->dtype);
        t->ndim = s->ndim;
        memcpy(t->shape, s->shape, sizeof t->shape);
        t->numel = s->numel;
        t->data = m->file.data + s->offset;
    }
    t->name = fname;
    return 1;
}

struct binder {
    clipdex_ctx *ctx;
    clipdex_model *m;
    uint64_t *count; /* parameter counter of the tower being bound */
};

static int own(struct binder *B, void *p)
{
    clipdex_model *m = B->m;
    if (m->n_owned == m->cap_owned) {
        size_t nc = m->cap_owned ? m->cap_owned * 2 : 64;
        void **no = realloc(m->owned, nc * sizeof *no);
        if (!no) {
            free(p);
            return cdx_error(B->ctx, CLIPDEX_E_NOMEM, "out of memory");
        }
        m->owned = no;
        m->cap_owned = nc;
    }
    m->owned[m->n_owned++] = p;
    return CLIPDEX_OK;
}

/* Finds tensor `name` and checks its shape (ndim dims; ndim 0 = scalar,
 * which also accepts [1]). transpose2d: the file holds [s1, s0]. */
static int lookup(struct binder *B, const char *name, int ndim, const int64_t *shape, int transpose2d,
                  struct src_tensor *t, char *fname, size_t flen)
{
    const char *path = B->m->wpath;
    char want[128], got[128];
    int64_t fshape[CDX_ST_MAX_DIMS];
    for (int i = 0; i < ndim; i++) fshape[i] = shape[i];
    if (transpose2d) {
        fshape[0] = shape[1];
        fshape[1] = shape[0];
    }
    cdx_shape_str(fshape, ndim, want, sizeof want);
    if (!find_src(B->m, name, t, fname, flen))
        return cdx_error(B->ctx, CLIPDEX_E_MODEL, "cannot load '%s': tensor '%s' is missing (expected shape %s)",
                         path, fname, want);
    if (t->type < 0)
        return cdx_error(B->ctx, CLIPDEX_E_MODEL, "cannot load '%s': tensor '%s' has dtype %s, expected F32, F16 or BF16",
                         path, fname, t->type_name);
    int ok = t->ndim == ndim;
    for (int i = 0; ok && i < ndim; i++) ok = t->shape[i] == fshape[i];
    if (ndim == 0 && t->ndim == 1 && t->shape[0] == 1) ok = 1;
    if (!ok)
        return cdx_error(B->ctx, CLIPDEX_E_MODEL, "cannot load '%s': tensor '%s' has shape %s, expected %s",
                         path, fname, cdx_shape_str(t->shape, t->ndim, got, sizeof got), want);
    *B->count += t->numel;
    return CLIPDEX_OK;
}

/* A float32 copy of t (transposed if asked), owned by the model. */
static int to_f32(struct binder *B, const struct src_tensor *t, const int64_t *shape, int transpose2d,
                  const float **out)
{
    size_t n = (size_t)t->numel;
    float *dst = malloc((n ? n : 1) * sizeof *dst), *tmp = NULL;
    if (transpose2d && dst) tmp = malloc((n ? n : 1) * sizeof *tmp);
    if (!dst || (transpose2d && !tmp)) {
        free(dst);
        return cdx_error(B->ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory for '%s'", B->m->wpath, t->name);
    }
    int rc = own(B, dst);
    if (rc) {
        free(tmp);
        return rc;
    }
    float *lin = transpose2d ? tmp : dst;
    if (t->type == SRC_BF16) {
        for (size_t i = 0; i < n; i++) lin[i] = cdx_bf16_to_float((uint16_t)(t->data[2 * i] | t->data[2 * i + 1] << 8));
    } else {
        cdx_dequant_row(t->type, t->data, 0, n, lin); /* Q types: n is a multiple of the block */
    }
    if (transpose2d) {
        /* file element i is (r, c) of [cols, rows]; engine wants (c, r) of [rows, cols] */
        size_t rows = (size_t)shape[0], cols = (size_t)shape[1];
        for (size_t i = 0; i < n; i++) dst[(i % rows) * cols + i / rows] = tmp[i];
        free(tmp);
    }
    *out = dst;
    return CLIPDEX_OK;
}

/* Binds a float tensor (LayerNorm, bias, embedding tables other than the
 * token embedding, logit_scale): in place if F32 and aligned, else
 * converted once. */
static int bind(struct binder *B, const char *name, const float **out, int ndim, const int64_t *shape,
                int transpose2d)
{
    struct src_tensor t;
    char fname[256];
    int rc = lookup(B, name, ndim, shape, transpose2d, &t, fname, sizeof fname);
    if (rc) return rc;
    if (cdx_wtype_is_packed(t.type))
        return cdx_error(B->ctx, CLIPDEX_E_MODEL, "'%s': tensor '%s' is %s; only linear-layer weights may be packed",
                         B->m->wpath, fname, t.type_name);
    if (t.type == CDX_W_F32 && !transpose2d && ((uintptr_t)t.data & 3) == 0) {
        *out = (const float *)(const void *)t.data;
        return CLIPDEX_OK;
    }
    return to_f32(B, &t, shape, transpose2d, out);
}

/* A BF16 weight matrix (n rows) kept in bfloat16 on CPUs with AVX512_BF16:
 * its rows copied once into BF16P panels (the same values, laid out for
 * vdpbf16ps), owned by the model. */
static int bf16_panels(struct binder *B, const struct src_tensor *t, size_t n, struct cdx_wmat *out)
{
    size_t k = (size_t)t->numel / n, bytes = cdx_wmat_bytes(CDX_W_BF16P, n, k);
    void *p = bytes ? aligned_alloc(64, (bytes + 63) / 64 * 64) : NULL;
    if (!p) return cdx_error(B->ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory for '%s'", B->m->wpath, t->name);
    int rc = own(B, p);
    if (rc) return rc;
    struct cdx_wmat rows = {CDX_W_BF16, t->data};
    cdx_wmat_pack(CDX_W_BF16P, &rows, n, k, p);
    out->type = CDX_W_BF16P;
    out->data = p;
    return CLIPDEX_OK;
}

/* Binds a weight matrix [shape[0], product of the rest]: F32 (aligned), F16
 * and the Q types are used in place from the mapping; BF16 matrices become
 * BF16P panels on CPUs with AVX512_BF16 (bf16_panels), else, like transposed
 * matrices, F32 once. `matrix`: counts toward the dtype
 * the model reports. */
static int bind_w(struct binder *B, const char *name, struct cdx_wmat *out, int ndim, const int64_t *shape,
                  int transpose2d, int matrix)
{
    struct src_tensor t;
    char fname[256];
    int rc = lookup(B, name, ndim, shape, transpose2d, &t, fname, sizeof fname);
    if (rc) return rc;
    int base = cdx_wtype_base(t.type);
    if (matrix) {
        B->m->mat_types |= 1u << base;
        if (base >= 0 && base < 16) B->m->mat_params[base] += t.numel;
        if (cdx_wtype_is_packed(t.type)) B->m->n_packed++;
    }
    if (cdx_wtype_is_packed(t.type)) {
        /* the kernels load whole panels with aligned 32-byte loads */
        if (transpose2d || ((uintptr_t)t.data & 31))
            return cdx_error(B->ctx, CLIPDEX_E_FORMAT, "'%s': packed tensor '%s' is not 32-byte aligned in the file",
                             B->m->wpath, fname);
        out->type = t.type;
        out->data = t.data;
        return CLIPDEX_OK;
    }
    if (t.type == CDX_W_BF16 && !transpose2d && matrix && cdx_cpu()->avx512_bf16 && shape[0] % CDX_PANEL == 0 &&
        !strstr(fname, "token_embd") && !strstr(fname, "token_embedding"))
        return bf16_panels(B, &t, (size_t)shape[0], out);
    if (!transpose2d && t.type != SRC_BF16 && (t.type != CDX_W_F32 || ((uintptr_t)t.data & 3) == 0)) {
        out->type = t.type;
        out->data = t.data;
        return CLIPDEX_OK;
    }
    const float *f;
    if ((rc = to_f32(B, &t, shape, transpose2d, &f))) return rc;
    *out = cdx_wmat_f32(f);
    return CLIPDEX_OK;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})

static int bind_lin(struct binder *B, const char *w, const char *b, struct cdx_lin *l, int out, int in)
{
    l->in = in;
    l->out = out;
    l->b = NULL;
    int rc = bind_w(B, w, &l->w, 2, SHAPE(out, in), 0, 1);
    if (!rc && b) rc = bind(B, b, &l->b, 1, SHAPE(out), 0);
    return rc;
}

static int bind_ln(struct binder *B, const char *prefix, const char *wname, const char *bname,
                   struct cdx_ln *ln, int n)
{
    char w[256], b[256];
    snprintf(w, sizeof w, "%s.%s", prefix, wname);
    snprintf(b, sizeof b, "%s.%s", prefix, bname);
    int rc = bind(B, w, &ln->w, 1, SHAPE(n), 0);
    return rc ? rc : bind(B, b, &ln->b, 1, SHAPE(n), 0);
}

/* Sub-views of OpenCLIP's stacked in_proj [3W, W]: q, k, v rows in order. */
static int bind_in_proj(struct binder *B, const char *p, struct cdx_block *blk, int W)
{
    char w[256], b[256];
    struct cdx_wmat ipw;
    const float *ipb;
    snprintf(w, sizeof w, "%s.attn.in_proj_weight", p);
    snprintf(b, sizeof b, "%s.attn.in_proj_bias", p);
    int rc = bind_w(B, w, &ipw, 2, SHAPE(3 * W, W), 0, 1);
    if (!rc) rc = bind(B, b, &ipb, 1, SHAPE(3 * W), 0);
    if (rc) return rc;
    struct cdx_lin *qkv[3] = {&blk->q, &blk->k, &blk->v};
    for (int i = 0; i < 3; i++) {
        qkv[i]->w.type = ipw.type;
        qkv[i]->w.data = cdx_wmat_sub(&ipw, (size_t)W, (size_t)i * W).data; /* packed: W % 16 == 0 */
        qkv[i]->b = ipb + (size_t)i * W;
        qkv[i]->in = qkv[i]->out = W;
    }
    return CLIPDEX_OK;
}

static int bind_blocks(struct binder *B, const char *prefix, const struct cdx_tower_cfg *c,
                       struct cdx_block **out)
{
    *out = calloc((size_t)c->layers, sizeof **out);
    if (!*out) return cdx_error(B->ctx, CLIPDEX_E_NOMEM, "out of memory");
    int W = c->width, M = c->mlp, rc = 0;
    for (int l = 0; l < c->layers && !rc; l++) {
        struct cdx_block *k = &(*out)[l];
        char p[192], w[256], b[256];
        if (B->m->layout == LAYOUT_HF) {
            snprintf(p, sizeof p, "%s.encoder.layers.%d", prefix, l);
            const char *names[4] = {"q_proj", "k_proj", "v_proj", "out_proj"};
            struct cdx_lin *lins[4] = {&k->q, &k->k, &k->v, &k->o};
            for (int i = 0; i < 4 && !rc; i++) {
                snprintf(w, sizeof w, "%s.self_attn.%s.weight", p, names[i]);
                snprintf(b, sizeof b, "%s.self_attn.%s.bias", p, names[i]);
                rc = bind_lin(B, w, b, lins[i], W, W);
            }
            char q[224];
            snprintf(q, sizeof q, "%s.layer_norm1", p);
            if (!rc) rc = bind_ln(B, q, "weight", "bias", &k->ln1, W);
            snprintf(q, sizeof q, "%s.layer_norm2", p);
            if (!rc) rc = bind_ln(B, q, "weight", "bias", &k->ln2, W);
            snprintf(w, sizeof w, "%s.mlp.fc1.weight", p);
            snprintf(b, sizeof b, "%s.mlp.fc1.bias", p);
            if (!rc) rc = bind_lin(B, w, b, &k->fc1, M, W);
            snprintf(w, sizeof w, "%s.mlp.fc2.weight", p);
            snprintf(b, sizeof b, "%s.mlp.fc2.bias", p);
            if (!rc) rc = bind_lin(B, w, b, &k->fc2, W, M);
        } else {
            snprintf(p, sizeof p, "%s.resblocks.%d", prefix, l);
            rc = bind_in_proj(B, p, k, W);
            snprintf(w, sizeof w, "%s.attn.out_proj.weight", p);
            snprintf(b, sizeof b, "%s.attn.out_proj.bias", p);
            if (!rc) rc = bind_lin(B, w, b, &k->o, W, W);
            char q[224];
            snprintf(q, sizeof q, "%s.ln_1", p);
            if (!rc) rc = bind_ln(B, q, "weight", "bias", &k->ln1, W);
            snprintf(q, sizeof q, "%s.ln_2", p);
            if (!rc) rc = bind_ln(B, q, "weight", "bias", &k->ln2, W);
            snprintf(w, sizeof w, "%s.mlp.c_fc.weight", p);
            snprintf(b, sizeof b, "%s.mlp.c_fc.bias", p);
            if (!rc) rc = bind_lin(B, w, b, &k->fc1, M, W);
            snprintf(w, sizeof w, "%s.mlp.c_proj.weight", p);
            snprintf(b, sizeof b, "%s.mlp.c_proj.bias", p);
            if (!rc) rc = bind_lin(B, w, b, &k->fc2, W, M);
        }
    }
    return rc;
}

static int bind_model(clipdex_ctx *ctx, clipdex_model *m, const struct cfg *c)
{
    struct cdx_vision *v = &m->vision;
    struct cdx_text *t = &m->text;
    v->cfg = c->v;
    t->cfg = c->t;
    v->image_size = c->image_size;
    v->patch = c->patch;
    v->grid = c->image_size / c->patch;
    v->n_pos = v->grid * v->grid + 1;
    v->has_ln_pre = c->has_ln_pre;
    t->vocab = c->vocab;
    t->ctx_len = c->ctx_len;
    int W = c->v.width, P = c->patch, Wt = c->t.width, E = c->embed, rc;
    struct binder B = {ctx, m, &m->n_params_vision};
    const float *scale = NULL;
    v->proj.in = W;
    v->proj.out = E;
    v->proj.b = NULL;
    t->proj.in = Wt;
    t->proj.out = E;
    t->proj.b = NULL;
    if (m->layout == LAYOUT_HF) {
        if ((rc = bind_w(&B, "vision_model.embeddings.patch_embedding.weight", &v->patch_w, 4, SHAPE(W, 3, P, P), 0, 0)) ||
            (rc = bind(&B, "vision_model.embeddings.class_embedding", &v->class_emb, 1, SHAPE(W), 0)) ||
            (rc = bind(&B, "vision_model.embeddings.position_embedding.weight", &v->pos_emb, 2, SHAPE(v->n_pos, W), 0)) ||
            (v->has_ln_pre && (rc = bind_ln(&B, "vision_model.pre_layrnorm", "weight", "bias", &v->ln_pre, W))) ||
            (rc = bind_blocks(&B, "vision_model", &v->cfg, &v->blocks)) ||
            (rc = bind_ln(&B, "vision_model.post_layernorm", "weight", "bias", &v->ln_post, W)) ||
            (rc = bind_w(&B, "visual_projection.weight", &v->proj.w, 2, SHAPE(E, W), 0, 1)))
            return rc;
        B.count = &m->n_params_text;
        if ((rc = bind_w(&B, "text_model.embeddings.token_embedding.weight", &t->tok_emb, 2, SHAPE(c->vocab, Wt), 0, 1)) ||
            (rc = bind(&B, "text_model.embeddings.position_embedding.weight", &t->pos_emb, 2, SHAPE(c->ctx_len, Wt), 0)) ||
            (rc = bind_blocks(&B, "text_model", &t->cfg, &t->blocks)) ||
            (rc = bind_ln(&B, "text_model.final_layer_norm", "weight", "bias", &t->ln_final, Wt)) ||
            (rc = bind_w(&B, "text_projection.weight", &t->proj.w, 2, SHAPE(E, Wt), 0, 1)))
            return rc;
        struct src_tensor ls;
        char lname[64];
        /* clip.cpp's GGUF files carry no logit_scale: ln 100 then */
        if ((!m->is_gguf || find_src(m, "logit_scale", &ls, lname, sizeof lname)) &&
            (rc = bind(&B, "logit_scale", &scale, 0, NULL, 0)))
            return rc;
    } else {
        if ((rc = bind_w(&B, "visual.conv1.weight", &v->patch_w, 4, SHAPE(W, 3, P, P), 0, 0)) ||
            (rc = bind(&B, "visual.class_embedding", &v->class_emb, 1, SHAPE(W), 0)) ||
            (rc = bind(&B, "visual.positional_embedding", &v->pos_emb, 2, SHAPE(v->n_pos, W), 0)) ||
            (v->has_ln_pre && (rc = bind_ln(&B, "visual.ln_pre", "weight", "bias", &v->ln_pre, W))) ||
            (rc = bind_blocks(&B, "visual.transformer", &v->cfg, &v->blocks)) ||
            (rc = bind_ln(&B, "visual.ln_post", "weight", "bias", &v->ln_post, W)) ||
            (rc = bind_w(&B, "visual.proj", &v->proj.w, 2, SHAPE(E, W), 1, 1)))
            return rc;
        B.count = &m->n_params_text;
        if ((rc = bind_w(&B, "token_embedding.weight", &t->tok_emb, 2, SHAPE(c->vocab, Wt), 0, 1)) ||
            (rc = bind(&B, "positional_embedding", &t->pos_emb, 2, SHAPE(c->ctx_len, Wt), 0)) ||
            (rc = bind_blocks(&B, "transformer", &t->cfg, &t->blocks)) ||
            (rc = bind_ln(&B, "ln_final", "weight", "bias", &t->ln_final, Wt)) ||
            (rc = bind_w(&B, "text_projection", &t->proj.w, 2, SHAPE(E, Wt), 1, 1)) ||
            (rc = bind(&B, "logit_scale", &scale, 0, NULL, 0)))
            return rc;
    }
    /* the patch conv [W,3,P,P] is already [W, 3*P*P] row-major */
    m->logit_scale_raw = scale ? scale[0] : logf(100.0f);
    m->logit_scale = scale ? expf(scale[0]) : 100.0f;
    if (!isfinite(m->logit_scale))
        return cdx_error(ctx, CLIPDEX_E_MODEL, "cannot load '%s': logit_scale %g is not usable", m->wpath,
                         (double)scale[0]);
    m->n_params = m->n_params_vision + m->n_params_text;
    return CLIPDEX_OK;
}

/* ---------------------------------------------------------------- public */

static int join(clipdex_ctx *ctx, char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= len) return cdx_error(ctx, CLIPDEX_E_ARG, "path '%s' is too long", dir);
    return CLIPDEX_OK;
}

/* The tokenizer a GGUF file carries (tokenizer.ggml.tokens and .merges, as
 * `clipdex quantize` writes them): 1 loaded, 0 none in the file (clip.cpp's
 * files carry the tokens but no merges), or an error status. */
static int gguf_tokenizer(clipdex_ctx *ctx, clipdex_model *m)
{
    char **tokens = NULL, **merges = NULL;
    size_t nt = 0, nm = 0;
    int rt = cdx_gguf_get_strs(&m->gguf, "tokenizer.ggml.tokens", &tokens, &nt);
    int rm = cdx_gguf_get_strs(&m->gguf, "tokenizer.ggml.merges", &merges, &nm);
    int rc = 0;
    if (rt < 0 || rm < 0)
        rc = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot load '%s': tokenizer.ggml.%s is not a list of strings",
                       m->gguf.path, rt < 0 ? "tokens" : "merges");
    else if (rt > 0 && rm > 0) {
        m->tok = calloc(1, sizeof *m->tok);
        if (!m->tok) rc = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot load '%s': out of memory", m->gguf.path);
        else if (!(rc = cdx_vocab_from_strings(ctx, m->gguf.path, tokens, nt, merges, nm, m->tok))) rc = 1;
    }
    cdx_gguf_strs_free(tokens, nt);
    cdx_gguf_strs_free(merges, nm);
    return rc;
}

static int load_tokenizer(clipdex_ctx *ctx, clipdex_model *m, const char *dir,
                          const clipdex_model_params *p)
{
    if (p->vocab_path && *p->vocab_path) return clipdex_tokenizer_load(ctx, p->vocab_path, &m->tok);
    if (m->gguf.map) {
        int r = gguf_tokenizer(ctx, m);
        if (r < 0) return r;
        if (r == 1) return CLIPDEX_OK;
    }
    char a[4096], b[4096], g[4096];
    if (join(ctx, a, sizeof a, dir, "vocab.json") || join(ctx, b, sizeof b, dir, "merges.txt") ||
        join(ctx, g, sizeof g, dir, "bpe_simple_vocab_16e6.txt.gz"))
        return CLIPDEX_E_ARG;
    if ((file_exists(a) && file_exists(b)) || file_exists(g)) return clipdex_tokenizer_load(ctx, dir, &m->tok);
    const char *env = getenv("CLIPDEX_VOCAB");
    if (env && *env) return clipdex_tokenizer_load(ctx, env, &m->tok);
    return CLIPDEX_OK; /* no tokenizer: text functions will say so */
}

/* 1 if the file at `path` starts with the GGUF magic. */
static int is_gguf_file(const char *path)
{
    unsigned char b[4];
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t n = fread(b, 1, 4, f);
    fclose(f);
    return cdx_gguf_sniff(b, n);
}

/* The one `*.gguf` file of a directory: 1 found (path in out), 0 none,
 * -1 several (an error is set). */
static int find_gguf(clipdex_ctx *ctx, const char *dir, char *out, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    char first[256] = "";
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l < 6 || strcmp(e->d_name + l - 5, ".gguf") != 0) continue;
        char p[4096];
        if (join(ctx, p, sizeof p, dir, e->d_name) || !file_exists(p)) continue;
        if (n++ == 0) {
            snprintf(first, sizeof first, "%s", e->d_name);
            snprintf(out, len, "%s", p);
        } else {
            cdx_error(ctx, CLIPDEX_E_IO, "cannot open model '%s': the directory holds several .gguf files ('%s', '%s', ...); "
                      "name the one to load", dir, first, e->d_name);
        }
    }
    closedir(d);
    return n > 1 ? -1 : n;
}

int clipdex_model_load(clipdex_ctx *ctx, const char *path, const clipdex_model_params *params,
                       clipdex_model **out)
{
    cdx_clear_error(ctx);
    if (!path || !out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_model_load: NULL argument");
    *out = NULL;
    clipdex_model_params p = params ? *params : clipdex_model_params_default();
    char dir[4096], wpath[4096], cpath[4096];
    struct stat st;
    if (stat(path, &st) != 0)
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot open model '%s': no such file or directory", path);
    int rc = CLIPDEX_OK, layout = 0, gguf = 0;
    if (S_ISDIR(st.st_mode)) {
        if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
            return cdx_error(ctx, CLIPDEX_E_ARG, "path '%s' is too long", path);
        char a[4096], b[4096], c2[4096], d[4096];
        if (join(ctx, a, sizeof a, dir, "model.safetensors") || join(ctx, b, sizeof b, dir, "config.json") ||
            join(ctx, c2, sizeof c2, dir, "open_clip_model.safetensors") ||
            join(ctx, d, sizeof d, dir, "open_clip_config.json"))
            return CLIPDEX_E_ARG;
        if (file_exists(a) && file_exists(b)) {
            layout = LAYOUT_HF;
            snprintf(wpath, sizeof wpath, "%s", a);
            snprintf(cpath, sizeof cpath, "%s", b);
        } else if (file_exists(c2) && file_exists(d)) {
            layout = LAYOUT_OPENCLIP;
            snprintf(wpath, sizeof wpath, "%s", c2);
            snprintf(cpath, sizeof cpath, "%s", d);
        } else {
            int g = find_gguf(ctx, dir, wpath, sizeof wpath);
            if (g < 0) return CLIPDEX_E_IO;
            if (g == 0)
                return cdx_error(ctx, CLIPDEX_E_IO,
                                 "cannot open model '%s': the directory holds neither config.json + model.safetensors "
                                 "nor open_clip_config.json + open_clip_model.safetensors nor one .gguf file", path);
            gguf = 1;
        }
    } else {
        if (snprintf(wpath, sizeof wpath, "%s", path) >= (int)sizeof wpath)
            return cdx_error(ctx, CLIPDEX_E_ARG, "path '%s' is too long", path);
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        gguf = is_gguf_file(wpath);
    }
    clipdex_model *m = calloc(1, sizeof *m);
    if (!m) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    struct cfg c;
    memset(&c, 0, sizeof c);
    memcpy(c.mean, clip_mean, sizeof c.mean);
    memcpy(c.std, clip_std, sizeof c.std);
    if (gguf) {
        if ((rc = cdx_gguf_open(ctx, wpath, &m->gguf))) goto fail;
        m->is_gguf = 1;
        m->wpath = m->gguf.path;
        m->file_size = m->gguf.map_len;
        m->layout = LAYOUT_HF; /* clip.cpp names are Hugging Face names renamed */
        if ((rc = parse_gguf_config(ctx, m, &c)) || (rc = check_cfg(ctx, wpath, &c))) goto fail;
    } else {
        if ((rc = cdx_st_open(ctx, wpath, &m->file))) goto fail;
        m->wpath = m->file.path;
        m->file_size = m->file.map_len;
        if (!layout) { /* a bare weight file: its tensor names decide the layout */
            if (cdx_st_find(&m->file, "visual.conv1.weight")) layout = LAYOUT_OPENCLIP;
            else if (cdx_st_find(&m->file, "vision_model.embeddings.patch_embedding.weight")) layout = LAYOUT_HF;
            else {
                rc = cdx_error(ctx, CLIPDEX_E_MODEL,
                               "cannot load '%s': neither 'vision_model.embeddings.patch_embedding.weight' (Hugging Face) "
                               "nor 'visual.conv1.weight' (OpenCLIP) is in the file", wpath);
                goto fail;
            }
            if (join(ctx, cpath, sizeof cpath, dir, layout == LAYOUT_HF ? "config.json" : "open_clip_config.json")) {
                rc = CLIPDEX_E_ARG;
                goto fail;
            }
        }
        m->layout = layout;
        json_t *root = NULL;
        if ((rc = load_json(ctx, cpath, &root))) goto fail;
        rc = layout == LAYOUT_HF ? parse_hf_config(ctx, cpath, root, &c) : parse_openclip_config(ctx, cpath, root, &c);
        json_decref(root);
        root = NULL;
        if (rc || (rc = check_cfg(ctx, cpath, &c))) goto fail;
        if (layout == LAYOUT_HF) { /* preprocessor_config.json may override mean/std */
            char pp[4096];
            if (!join(ctx, pp, sizeof pp, dir, "preprocessor_config.json") && file_exists(pp)) {
                if ((rc = load_json(ctx, pp, &root))) goto fail;
                rc = get_mean_std(ctx, pp, root, "image_mean", "image_std", &c);
                json_decref(root);
                if (rc) goto fail;
            }
        }
    }
    memcpy(m->mean, c.mean, sizeof m->mean);
    memcpy(m->std, c.std, sizeof m->std);
    m->embed_dim = c.embed;
    if ((rc = bind_model(ctx, m, &c))) goto fail;
    if ((rc = load_tokenizer(ctx, m, dir, &p))) goto fail;
    *out = m;
    return CLIPDEX_OK;
fail:
    clipdex_model_free(m);
    return rc;
}

void clipdex_model_free(clipdex_model *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n_owned; i++) free(m->owned[i]);
    free(m->owned);
    free(m->vision.blocks);
    free(m->text.blocks);
    cdx_st_close(&m->file);
    cdx_gguf_close(&m->gguf);
    clipdex_tokenizer_free(m->tok);
    free(m);
}

/* The type of the matrix weights: the one type; else the quantized type
 * holding the most parameters (a Q4_0 file keeps some tensors Q8_0, rows
 * that are not a multiple of 32 stay F16); else "mixed". */
static const char *dtype_name(const clipdex_model *m)
{
    unsigned mask = m->mat_types;
    if (mask == 1u << SRC_BF16) return "BF16";
    for (int t = 0; t < 16; t++)
        if (mask == 1u << t && cdx_wtype_name(t)) return cdx_wtype_name(t);
    int best = -1;
    for (int t = 2; t < 16; t++)
        if (m->mat_params[t] && cdx_wtype_name(t) && (best < 0 || m->mat_params[t] > m->mat_params[best])) best = t;
    return best >= 0 ? cdx_wtype_name(best) : "mixed";
}

int clipdex_model_get_info(const clipdex_model *m, clipdex_model_info *o)
{
    if (!m || !o) return CLIPDEX_E_ARG;
    memset(o, 0, sizeof *o);
    o->layout = m->is_gguf ? "gguf" : m->layout == LAYOUT_HF ? "hf" : "openclip";
    o->dtype = dtype_name(m);
    o->weights_path = m->wpath;
    o->file_size = m->file_size;
    o->n_params = m->n_params;
    o->n_params_vision = m->n_params_vision;
    o->n_params_text = m->n_params_text;
    o->embed_dim = m->embed_dim;
    const struct cdx_vision *v = &m->vision;
    const struct cdx_text *t = &m->text;
    o->image_size = v->image_size;
    o->patch_size = v->patch;
    o->vision_width = v->cfg.width;
    o->vision_layers = v->cfg.layers;
    o->vision_heads = v->cfg.heads;
    o->vision_mlp = v->cfg.mlp;
    o->vision_activation = v->cfg.act == CDX_ACT_GELU ? CLIPDEX_ACT_GELU : CLIPDEX_ACT_QUICK_GELU;
    o->context_length = t->ctx_len;
    o->vocab_size = t->vocab;
    o->text_width = t->cfg.width;
    o->text_layers = t->cfg.layers;
    o->text_heads = t->cfg.heads;
    o->text_mlp = t->cfg.mlp;
    o->text_activation = t->cfg.act == CDX_ACT_GELU ? CLIPDEX_ACT_GELU : CLIPDEX_ACT_QUICK_GELU;
    o->layer_norm_eps = v->cfg.eps;
    o->logit_scale = m->logit_scale;
    memcpy(o->mean, m->mean, sizeof o->mean);
    memcpy(o->std, m->std, sizeof o->std);
    o->has_tokenizer = m->tok != NULL;
    return CLIPDEX_OK;
}

const clipdex_tokenizer *clipdex_model_tokenizer(const clipdex_model *m) { return m ? m->tok : NULL; }
int clipdex_model_embed_dim(const clipdex_model *m) { return m ? m->embed_dim : 0; }
