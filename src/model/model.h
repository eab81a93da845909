/*
 * model.h - the in-memory CLIP model: configuration and weight views.
 * Weights point into the mmapped weight file (safetensors or GGUF): matrices
 * (linear layers, projections, patch conv, token embedding) as typed views
 * (F32, F16 or a Q type, used in place by the kernels); LayerNorms, biases
 * and the other embeddings as float32. Only what the kernels cannot use in
 * place (BF16, transposed OpenCLIP projections, non-F32 small tensors) is
 * converted once at load; nothing changes after load, so a model is
 * shareable across threads.
 */
#ifndef CDX_MODEL_H
#define CDX_MODEL_H

#include "core/core.h"
#include "model/gguf.h"
#include "model/safetensors.h"
#include "tensor/ops.h"

/* y = x W^T + b */
struct cdx_lin {
    struct cdx_wmat w; /* [out, in] */
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
    struct cdx_wmat patch_w;              /* [W, 3*P*P] (conv weight [W,3,P,P] flattened) */
    const float *class_emb;               /* [W] */
    const float *pos_emb;                 /* [n_pos, W] */
    struct cdx_ln ln_pre, ln_post;
    struct cdx_block *blocks;             /* [layers] */
    struct cdx_lin proj;                  /* [embed, W], no bias */
};

struct cdx_text {
    struct cdx_tower_cfg cfg;
    int vocab, ctx_len;
    struct cdx_wmat tok_emb;              /* [vocab, W]; rows dequantized per token */
    const float *pos_emb;                 /* [ctx_len, W] */
    struct cdx_ln ln_final;
    struct cdx_block *blocks;
    struct cdx_lin proj;                  /* [embed, W], no bias */
};

struct clipdex_model {
    int layout;                           /* 1 hf (GGUF files too), 2 openclip */
    int embed_dim;
    float logit_scale;                    /* exp(logit_scale) */
    float logit_scale_raw;                /* the logit_scale tensor (ln 100 if a GGUF file has none) */
    float mean[3], std[3];
    struct cdx_vision vision;
    struct cdx_text text;
    struct cdx_st_file file;              /* safetensors weights, or */
    struct cdx_gguf_file gguf;            /* GGUF weights (is_gguf) */
    int is_gguf;
    const char *wpath;                    /* the weight file's path */
    uint64_t file_size, n_params, n_params_vision, n_params_text;
    unsigned mat_types;                   /* bit per source type (cdx_wtype; 30 BF16) of the matrix weights */
    uint64_t mat_params[16];              /* matrix parameters per cdx_wtype (packed: its row type) */
    int n_packed;                         /* matrices stored panel-packed (GGUF, cdx_wtype_is_packed) */
    void **owned;                         /* converted buffers */
    size_t n_owned, cap_owned;
    clipdex_tokenizer *tok;
};

/* The GGUF name clip.cpp's converter (models/convert_hf_to_gguf.py) gives a
 * Hugging Face tensor name: text_model -> t, vision_model -> v,
 * encoder.layers -> blk, "embeddings." and "_proj" dropped, self_attn. ->
 * attn_, layer_norm/layernorm/layrnorm -> ln, mlp.fc1 -> ffn_down, mlp.fc2
 * -> ffn_up, embedding -> embd, final -> post; names holding "projection"
 * are kept (model.c). */
CDX_INTERNAL void cdx_clip_gguf_name(const char *hf, char *out, size_t len);

/* Forward passes (forward.c). `out` gets [n, embed_dim] raw embeddings. */
CDX_INTERNAL size_t cdx_vision_scratch(const struct cdx_vision *v, size_t n);
CDX_INTERNAL int cdx_vision_forward(clipdex_ctx *ctx, const struct cdx_vision *v, const float *pixels,
                                    size_t n, float *out);
CDX_INTERNAL size_t cdx_text_scratch(const struct cdx_text *t, size_t n);
CDX_INTERNAL int cdx_text_forward(clipdex_ctx *ctx, const struct cdx_text *t, const int32_t *ids,
                                  size_t n, float *out);

/* One pre-LN residual block over rows x (rows, W) in place (forward.c).
 * seq_len tokens per sequence; rows = n_seq * seq_len; causal mask if set.
 * scratch: cdx_block_scratch(cfg, n_seq, seq_len) floats. */
CDX_INTERNAL size_t cdx_block_scratch(const struct cdx_tower_cfg *c, size_t n_seq, size_t seq_len);
CDX_INTERNAL void cdx_block_forward(clipdex_ctx *ctx, const struct cdx_tower_cfg *c,
                                    const struct cdx_block *b, float *x, size_t n_seq,
                                    size_t seq_len, int causal, float *scratch);
/* The block for one kept row per sequence (row sel[s] of sequence s):
 * out (n_seq, W) = those rows after the block, bitwise the rows
 * cdx_block_forward gives; x is not modified. Same scratch size. */
CDX_INTERNAL void cdx_block_forward_sel(clipdex_ctx *ctx, const struct cdx_tower_cfg *c,
                                        const struct cdx_block *b, const float *x, size_t n_seq,
                                        size_t seq_len, int causal, const size_t *sel, float *out,
                                        float *scratch);

#endif
