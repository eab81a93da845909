/*
 * model.h - the in-memory CLIP model: configuration and float32 weight views.
 * Weight pointers point into the mmapped safetensors file (F32, aligned) or
 * into buffers converted once at load (F16/BF16, transposed projections);
 * nothing changes after load, so a model is shareable across threads.
 */
#ifndef CDX_MODEL_H
#define CDX_MODEL_H

#include "core/core.h"
#include "model/safetensors.h"

/* y = x W^T + b */
struct cdx_lin {
    const float *w; /* [out, in] */
    const float *b; /* [out] or NULL */
    int in, out;
};

struct cdx_ln {
    const float *w, *b; /* [n] */
};

struct cdx_block {
    struct cdx_ln ln1, ln2;
    struct cdx_lin q, k, v, o; /* [W, W] each */
    struct cdx_lin fc1;        /* [mlp, W] */
    struct cdx_lin fc2;        /* [W, mlp] */
};

struct cdx_tower_cfg {
    int width, layers, heads, mlp, act; /* act: enum cdx_act */
    float eps;
};

struct cdx_vision {
    struct cdx_tower_cfg cfg;
    int image_size, patch, grid, n_pos;  /* n_pos = grid*grid + 1 */
    int has_ln_pre;
    const float *patch_w;                 /* [W, 3*P*P] (conv weight [W,3,P,P] flattened) */
    const float *class_emb;               /* [W] */
    const float *pos_emb;                 /* [n_pos, W] */
    struct cdx_ln ln_pre, ln_post;
    struct cdx_block *blocks;             /* [layers] */
    struct cdx_lin proj;                  /* [embed, W], no bias */
};

struct cdx_text {
    struct cdx_tower_cfg cfg;
    int vocab, ctx_len;
    const float *tok_emb;                 /* [vocab, W] */
    const float *pos_emb;                 /* [ctx_len, W] */
    struct cdx_ln ln_final;
    struct cdx_block *blocks;
    struct cdx_lin proj;                  /* [embed, W], no bias */
};

struct clipdex_model {
    int layout;                           /* 1 hf, 2 openclip */
    int embed_dim;
    float logit_scale;                    /* exp(logit_scale) */
    float mean[3], std[3];
    struct cdx_vision vision;
    struct cdx_text text;
    struct cdx_st_file file;
    uint64_t file_size, n_params, n_params_vision, n_params_text;
    int dtype_mask;                       /* bit per cdx_dtype seen among used tensors */
    void **owned;                         /* converted buffers */
    size_t n_owned, cap_owned;
    clipdex_tokenizer *tok;
};

/* Forward passes (vision.c, text.c). `out` gets [n, embed_dim] raw embeddings. */
CDX_INTERNAL size_t cdx_vision_scratch(const struct cdx_vision *v, size_t n);
CDX_INTERNAL int cdx_vision_forward(clipdex_ctx *ctx, const struct cdx_vision *v, const float *pixels,
                                    size_t n, float *out);
CDX_INTERNAL size_t cdx_text_scratch(const struct cdx_text *t, size_t n);
CDX_INTERNAL int cdx_text_forward(clipdex_ctx *ctx, const struct cdx_text *t, const int32_t *ids,
                                  size_t n, float *out);

/* One pre-LN residual block over rows x (rows, W) in place (tower.c).
 * seq_len tokens per sequence; rows = n_seq * seq_len; causal mask if set.
 * scratch: cdx_block_scratch(cfg, n_seq, seq_len) floats. */
CDX_INTERNAL size_t cdx_block_scratch(const struct cdx_tower_cfg *c, size_t n_seq, size_t seq_len);
CDX_INTERNAL void cdx_block_forward(clipdex_ctx *ctx, const struct cdx_tower_cfg *c,
                                    const struct cdx_block *b, float *x, size_t n_seq,
                                    size_t seq_len, int causal, float *scratch);

#endif
