/*
 * forward.c - the two CLIP towers in float32.
 *   block:  x += Wo·attn(LN1(x));  x += fc2(act(fc1(LN2(x))))       (pre-LN)
 *   vision: patches (n·g², 3P²) @ conv^T -> [class; patches] + pos -> ln_pre
 *           -> blocks -> ln_post(class row) -> proj
 *   text:   tok_emb[ids] + pos -> causal blocks -> ln_final(end-token row) -> proj
 * Weight matrices may be of any cdx_wtype (cdx_linear_w); token embedding
 * rows are dequantized for the ids of the batch only.
 * All activations live in the context scratch (sized by the *_scratch
 * functions); the forward pass itself allocates nothing. The text tower runs
 * only the positions up to the last end token of the batch: with the causal
 * mask the pooled row depends on nothing later, so the result is identical to
 * running all context_length positions. The last block computes q, the
 * attention output and the MLP for the pooled rows only (the class row, the
 * end token), again with bitwise the same result.
 */
#include <stdint.h>
#include <string.h>

#include "model/model.h"
#include "tensor/ops.h"

size_t cdx_block_scratch(const struct cdx_tower_cfg *c, size_t n_seq, size_t seq_len)
{
    size_t rows = n_seq * seq_len;
    return rows * (size_t)c->width * 4 + rows * (size_t)c->mlp +
           cdx_attention_scratch(n_seq, (size_t)c->heads, seq_len, (size_t)c->width) +
           n_seq * ((size_t)c->width * 2 + (size_t)c->mlp); /* cdx_block_forward_sel's rows */
}

void cdx_block_forward(clipdex_ctx *ctx, const struct cdx_tower_cfg *c, const struct cdx_block *b,
                       float *x, size_t n_seq, size_t seq_len, int causal, float *scratch)
{
    size_t W = (size_t)c->width, M = (size_t)c->mlp, R = n_seq * seq_len;
    float *h = scratch;      /* (R, W) */
    float *q = h + R * W;    /* (R, W) */
    float *k = q + R * W;    /* (R, W) */
    float *v = k + R * W;    /* (R, W) */
    float *f = v + R * W;    /* (R, M) */
    float *att = f + R * M;  /* attention scores */

    cdx_layernorm(ctx, x, W, h, W, R, W, b->ln1.w, b->ln1.b, c->eps);
    const struct cdx_lin_out qkv[3] = {{&b->q.w, b->q.b, q, W, W}, {&b->k.w, b->k.b, k, W, W},
                                       {&b->v.w, b->v.b, v, W, W}};
    cdx_linear_multi(ctx, h, W, R, W, qkv, 3, CDX_ACT_NONE, 0);
    cdx_attention(ctx, q, k, v, h, W, n_seq, seq_len, W, (size_t)c->heads, causal, att);
    cdx_linear_w(ctx, h, W, &b->o.w, b->o.b, x, W, R, W, W, CDX_ACT_NONE, CDX_LIN_ACCUM);
    cdx_layernorm(ctx, x, W, h, W, R, W, b->ln2.w, b->ln2.b, c->eps);
    cdx_linear_w(ctx, h, W, &b->fc1.w, b->fc1.b, f, M, R, M, W, c->act, 0);
    cdx_linear_w(ctx, f, M, &b->fc2.w, b->fc2.b, x, W, R, W, M, CDX_ACT_NONE, CDX_LIN_ACCUM);
}

/* The last block when only one row per sequence is pooled (the class row of
 * an image, the end token of a text): k and v need every row, but q, the
 * attention output, the output projection and the MLP only the kept row.
 * out (n_seq, W) = the kept rows after the block, bitwise the rows
 * cdx_block_forward gives (every kernel computes a row the same way alone). */
void cdx_block_forward_sel(clipdex_ctx *ctx, const struct cdx_tower_cfg *c, const struct cdx_block *b,
                           const float *x, size_t n_seq, size_t seq_len, int causal, const size_t *sel, float *out,
                           float *scratch)
{
    size_t W = (size_t)c->width, M = (size_t)c->mlp, R = n_seq * seq_len;
    float *h = scratch;      /* (R, W) */
    float *k = h + R * W;    /* (R, W) */
    float *v = k + R * W;    /* (R, W) */
    float *att = v + 2 * R * W + R * M; /* as in cdx_block_forward */
    float *hq = att + cdx_attention_scratch(n_seq, (size_t)c->heads, seq_len, (size_t)c->width); /* (n_seq, W) */
    float *qa = hq + n_seq * W;  /* (n_seq, W): q, then the attention output */
    float *f = qa + n_seq * W;   /* (n_seq, M) */
    float *q = v + R * W;        /* (n_seq, W) within the (R, W) q slot */

    cdx_layernorm(ctx, x, W, h, W, R, W, b->ln1.w, b->ln1.b, c->eps);
    const struct cdx_lin_out kv[2] = {{&b->k.w, b->k.b, k, W, W}, {&b->v.w, b->v.b, v, W, W}};
    cdx_linear_multi(ctx, h, W, R, W, kv, 2, CDX_ACT_NONE, 0);
    for (size_t s = 0; s < n_seq; s++) memcpy(hq + s * W, h + (s * seq_len + sel[s]) * W, W * sizeof *hq);
    cdx_linear_w(ctx, hq, W, &b->q.w, b->q.b, q, W, n_seq, W, W, CDX_ACT_NONE, 0);
    cdx_attention_sel(ctx, q, k, v, qa, W, n_seq, seq_len, W, (size_t)c->heads, causal, sel, att);
    for (size_t s = 0; s < n_seq; s++) memcpy(out + s * W, x + (s * seq_len + sel[s]) * W, W * sizeof *out);
    cdx_linear_w(ctx, qa, W, &b->o.w, b->o.b, out, W, n_seq, W, W, CDX_ACT_NONE, CDX_LIN_ACCUM);
    cdx_layernorm(ctx, out, W, hq, W, n_seq, W, b->ln2.w, b->ln2.b, c->eps);
    cdx_linear_w(ctx, hq, W, &b->fc1.w, b->fc1.b, f, M, n_seq, M, W, c->act, 0);
    cdx_linear_w(ctx, f, M, &b->fc2.w, b->fc2.b, out, W, n_seq, W, M, CDX_ACT_NONE, CDX_LIN_ACCUM);
}

size_t cdx_vision_scratch(const struct cdx_vision *v, size_t n)
{
    size_t W = (size_t)v->cfg.width, T = (size_t)v->n_pos, g2 = (size_t)v->grid * v->grid;
    size_t pp = 3 * (size_t)v->patch * v->patch;
    size_t pre = n * g2 * pp + n * g2 * W;               /* patches + their embeddings */
    size_t blk = cdx_block_scratch(&v->cfg, n, T) + 2 * n * W + n * (sizeof(size_t) / sizeof(float) + 1);
    return n * T * W + (pre > blk ? pre : blk);
}

int cdx_vision_forward(clipdex_ctx *ctx, const struct cdx_vision *v, const float *pixels, size_t n,
                       float *out)
{
    size_t W = (size_t)v->cfg.width, T = (size_t)v->n_pos, G = (size_t)v->grid;
    size_t P = (size_t)v->patch, S = (size_t)v->image_size, pp = 3 * P * P;
    int rc = cdx_ctx_reserve(ctx, cdx_vision_scratch(v, n));
    if (rc) return rc;
    float *x = ctx->scratch;            /* (n*T, W) */
    float *work = x + n * T * W;
    float *patches = work;              /* (n*G*G, 3*P*P) */
    float *pe = patches + n * G * G * pp; /* (n*G*G, W) */

    /* im2col: patch (gy,gx) of image b -> row, element (c, ky, kx) */
    for (size_t b = 0; b < n; b++)
        for (size_t gy = 0; gy < G; gy++)
            for (size_t gx = 0; gx < G; gx++) {
                float *row = patches + ((b * G + gy) * G + gx) * pp;
                for (size_t c = 0; c < 3; c++)
                    for (size_t ky = 0; ky < P; ky++)
                        memcpy(row + (c * P + ky) * P,
                               pixels + ((b * 3 + c) * S + gy * P + ky) * S + gx * P, P * sizeof(float));
            }
    cdx_linear_w(ctx, patches, pp, &v->patch_w, NULL, pe, W, n * G * G, W, pp, CDX_ACT_NONE, 0);
    for (size_t b = 0; b < n; b++) {
        float *xb = x + b * T * W;
        for (size_t i = 0; i < W; i++) xb[i] = v->class_emb[i] + v->pos_emb[i];
        for (size_t t = 1; t < T; t++) {
            const float *src = pe + (b * G * G + t - 1) * W;
            for (size_t i = 0; i < W; i++) xb[t * W + i] = src[i] + v->pos_emb[t * W + i];
        }
    }
    if (v->has_ln_pre) cdx_layernorm(ctx, x, W, x, W, n * T, W, v->ln_pre.w, v->ln_pre.b, v->cfg.eps);
    for (int l = 0; l + 1 < v->cfg.layers; l++)
        cdx_block_forward(ctx, &v->cfg, &v->blocks[l], x, n, T, 0, work);
    /* last block: only the class rows are pooled */
    float *cls = work + cdx_block_scratch(&v->cfg, n, T); /* (n, W) */
    float *pooled = cls + n * W;                         /* (n, W): LayerNorm of each class row */
    size_t *sel = (size_t *)(((uintptr_t)(pooled + n * W) + 7) & ~(uintptr_t)7); /* (n) zeros: the class row */
    memset(sel, 0, n * sizeof *sel);
    if (v->cfg.layers > 0)
        cdx_block_forward_sel(ctx, &v->cfg, &v->blocks[v->cfg.layers - 1], x, n, T, 0, sel, cls, work);
    else
        for (size_t b = 0; b < n; b++) memcpy(cls + b * W, x + b * T * W, W * sizeof *cls);
    cdx_layernorm(ctx, cls, W, pooled, W, n, W, v->ln_post.w, v->ln_post.b, v->cfg.eps);
    cdx_linear_w(ctx, pooled, W, &v->proj.w, NULL, out, (size_t)v->proj.out, n, (size_t)v->proj.out, W,
               CDX_ACT_NONE, 0);
    return CLIPDEX_OK;
}

size_t cdx_text_scratch(const struct cdx_text *t, size_t n)
{
    size_t W = (size_t)t->cfg.width, C = (size_t)t->ctx_len;
    return n * C * W + cdx_block_scratch(&t->cfg, n, C) + 2 * n * W + n * (sizeof(size_t) / sizeof(float) + 1);
}

int cdx_text_forward(clipdex_ctx *ctx, const struct cdx_text *t, const int32_t *ids, size_t n,
                     float *out)
{
    size_t W = (size_t)t->cfg.width, C = (size_t)t->ctx_len;
    /* pooling position = first argmax of the ids; run positions [0, L) */
    size_t L = 1;
    for (size_t b = 0; b < n; b++) {
        const int32_t *r = ids + b * C;
        size_t am = 0;
        for (size_t i = 0; i < C; i++) {
            if (r[i] < 0 || r[i] >= t->vocab)
                return cdx_error(ctx, CLIPDEX_E_ARG, "token id %d at position %zu of text %zu is outside the vocabulary of %d",
                                 (int)r[i], i, b, t->vocab);
            if (r[i] > r[am]) am = i;
        }
        if (am + 1 > L) L = am + 1;
    }
    int rc = cdx_ctx_reserve(ctx, cdx_text_scratch(t, n));
    if (rc) return rc;
    float *x = ctx->scratch;           /* (n*L, W) */
    float *work = x + n * C * W;
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < L; i++) {
            const float *pe = t->pos_emb + i * W;
            float *xr = x + (b * L + i) * W;
            cdx_wmat_dequant(&t->tok_emb, W, (size_t)ids[b * C + i], 0, W, xr);
            for (size_t e = 0; e < W; e++) xr[e] = xr[e] + pe[e];
        }
    float *eot = work + cdx_block_scratch(&t->cfg, n, L); /* (n, W) */
    float *pooled = eot + n * W;                          /* (n, W) */
    size_t *sel = (size_t *)(((uintptr_t)(pooled + n * W) + 7) & ~(uintptr_t)7); /* (n): end-token positions */
    for (size_t b = 0; b < n; b++) {
        const int32_t *r = ids + b * C;
        size_t am = 0;
        for (size_t i = 0; i < C; i++)
            if (r[i] > r[am]) am = i;
        sel[b] = am;
    }
    for (int l = 0; l + 1 < t->cfg.layers; l++)
        cdx_block_forward(ctx, &t->cfg, &t->blocks[l], x, n, L, 1, work);
    /* last block: only the end-token rows are pooled */
    if (t->cfg.layers > 0)
        cdx_block_forward_sel(ctx, &t->cfg, &t->blocks[t->cfg.layers - 1], x, n, L, 1, sel, eot, work);
    else
        for (size_t b = 0; b < n; b++) memcpy(eot + b * W, x + (b * L + sel[b]) * W, W * sizeof *eot);
    cdx_layernorm(ctx, eot, W, pooled, W, n, W, t->ln_final.w, t->ln_final.b, t->cfg.eps);
    cdx_linear_w(ctx, pooled, W, &t->proj.w, NULL, out, (size_t)t->proj.out, n, (size_t)t->proj.out, W,
               CDX_ACT_NONE, 0);
    return CLIPDEX_OK;
}
