/*
 * embed.c - the public embedding entry points: argument checks, chunking of
 * large batches (results never depend on the chunk size), preprocessing and
 * tokenization for the convenience calls, projection output and L2
 * normalization.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "tensor/ops.h"

#define VISION_CHUNK 16
#define TEXT_CHUNK 64

static int check_out(clipdex_ctx *ctx, const clipdex_model *m, size_t n, size_t out_len, const char *fn)
{
    size_t need;
    if (cdx_mul(n, (size_t)m->embed_dim, &need) || out_len < need)
        return cdx_error(ctx, CLIPDEX_E_ARG, "%s: output holds %zu floats, %zu images/texts need %zu x %d",
                         fn, out_len, n, n, m->embed_dim);
    return CLIPDEX_OK;
}

static void finish(float *out, size_t n, size_t e, unsigned flags)
{
    if (flags & CLIPDEX_EMBED_RAW) return;
    for (size_t i = 0; i < n; i++) cdx_l2_normalize(out + i * e, e);
}

int clipdex_pixels_embed(clipdex_ctx *ctx, const clipdex_model *m, const float *pixels, size_t n,
                         float *out, size_t out_len, unsigned flags)
{
    cdx_clear_error(ctx);
    if (!ctx || !m || (!pixels && n) || (!out && n))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_pixels_embed: NULL argument");
    int rc = check_out(ctx, m, n, out_len, "clipdex_pixels_embed");
    if (rc) return rc;
    size_t px = 3 * (size_t)m->vision.image_size * m->vision.image_size, e = (size_t)m->embed_dim;
    for (size_t i = 0; i < n; i += VISION_CHUNK) {
        size_t c = n - i < VISION_CHUNK ? n - i : VISION_CHUNK;
        if ((rc = cdx_vision_forward(ctx, &m->vision, pixels + i * px, c, out + i * e))) return rc;
    }
    finish(out, n, e, flags);
    return CLIPDEX_OK;
}

int clipdex_image_embed(clipdex_ctx *ctx, const clipdex_model *m, const clipdex_image *const *images,
                        size_t n, float *out, size_t out_len, unsigned flags)
{
    cdx_clear_error(ctx);
    if (!ctx || !m || (!images && n) || (!out && n))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_embed: NULL argument");
    int rc = check_out(ctx, m, n, out_len, "clipdex_image_embed");
    if (rc) return rc;
    int S = m->vision.image_size;
    size_t px = 3 * (size_t)S * S, e = (size_t)m->embed_dim;
    size_t chunk = n < VISION_CHUNK ? n : VISION_CHUNK;
    float *buf = malloc((chunk ? chunk : 1) * px * sizeof *buf);
    if (!buf) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory for %zu preprocessed images", chunk);
    for (size_t i = 0; i < n && !rc; i += chunk) {
        size_t c = n - i < chunk ? n - i : chunk;
        for (size_t j = 0; j < c && !rc; j++) {
            if (!images[i + j]) rc = cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_image_embed: image %zu is NULL", i + j);
            else rc = clipdex_image_preprocess(ctx, images[i + j], S, m->mean, m->std, buf + j * px, px);
        }
        if (!rc) rc = cdx_vision_forward(ctx, &m->vision, buf, c, out + i * e);
    }
    free(buf);
    if (!rc) finish(out, n, e, flags);
    return rc;
}

int clipdex_tokens_embed(clipdex_ctx *ctx, const clipdex_model *m, const int32_t *ids, size_t n,
                         float *out, size_t out_len, unsigned flags)
{
    cdx_clear_error(ctx);
    if (!ctx || !m || (!ids && n) || (!out && n))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_tokens_embed: NULL argument");
    int rc = check_out(ctx, m, n, out_len, "clipdex_tokens_embed");
    if (rc) return rc;
    size_t C = (size_t)m->text.ctx_len, e = (size_t)m->embed_dim;
    for (size_t i = 0; i < n; i += TEXT_CHUNK) {
        size_t c = n - i < TEXT_CHUNK ? n - i : TEXT_CHUNK;
        if ((rc = cdx_text_forward(ctx, &m->text, ids + i * C, c, out + i * e))) return rc;
    }
    finish(out, n, e, flags);
    return CLIPDEX_OK;
}

int clipdex_text_embed(clipdex_ctx *ctx, const clipdex_model *m, const char *const *texts, size_t n,
                       float *out, size_t out_len, unsigned flags)
{
    cdx_clear_error(ctx);
    if (!ctx || !m || (!texts && n) || (!out && n))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_text_embed: NULL argument");
    if (!m->tok)
        return cdx_error(ctx, CLIPDEX_E_MODEL,
                         "the model has no tokenizer: put vocab.json + merges.txt or bpe_simple_vocab_16e6.txt.gz "
                         "in its directory, or set CLIPDEX_VOCAB");
    int rc = check_out(ctx, m, n, out_len, "clipdex_text_embed");
    if (rc) return rc;
    size_t C = (size_t)m->text.ctx_len, chunk = n < TEXT_CHUNK ? n : TEXT_CHUNK;
    int32_t *ids = malloc((chunk ? chunk : 1) * C * sizeof *ids);
    if (!ids) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i += chunk) {
        size_t c = n - i < chunk ? n - i : chunk;
        for (size_t j = 0; j < c && !rc; j++) {
            const char *s = texts[i + j];
            if (!s) rc = cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_text_embed: text %zu is NULL", i + j);
            else rc = clipdex_text_tokenize(ctx, m->tok, s, strlen(s), ids + j * C, C, NULL, NULL);
        }
        if (!rc) rc = clipdex_tokens_embed(ctx, m, ids, c, out + i * (size_t)m->embed_dim,
                                           c * (size_t)m->embed_dim, flags);
    }
    free(ids);
    return rc;
}

float clipdex_cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    if (aa <= 0 || bb <= 0) return 0.0f;
    return (float)(ab / sqrt(aa * bb));
}
