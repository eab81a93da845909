/*
 * vecs.c - the public vector search (clipdex.h, "Vector search"): a
 * clipdex_vecs handle describes a borrowed matrix and its optional compact
 * copies (or owns copies it built), and clipdex_vecs_search picks the scan:
 * the float32 scan for small sets or when asked, else the 4-bit stage
 * cascading to the int8 stage (when present) and the scan. Every path
 * returns the float32 scan's hits exactly (vecscan.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipdex.h"
#include "core/core.h"
#include "search/vecscan.h"

#define VECS_MAX_DIM (1u << 17) /* int8 sums stay exact in int32 */
#define Q8_CANDIDATES 4096      /* rows re-ranked in float32 after the int8 scan */
#define Q4_CANDIDATES 16384     /* rows each thread keeps in the 4-bit scan */

struct clipdex_vecs {
    clipdex_vecs_data d;
    void *owned; /* the compact copies built by clipdex_vecs_new, or NULL */
};

static int data_check(clipdex_ctx *ctx, const clipdex_vecs_data *d)
{
    if (!d->rows && d->n) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: no rows");
    if (d->dim == 0 || d->dim >= VECS_MAX_DIM)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: dimension %zu (must be 1 to %u)", d->dim,
                         VECS_MAX_DIM - 1);
    if (d->n > UINT32_MAX) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: %zu rows (at most 2^32 - 1)", d->n);
    if (!d->q8 != !d->q8_scale)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: an int8 copy needs both codes and scales");
    if (d->q8 && !(d->q8_max_scale >= 0 && d->q8_max_l1 >= 0 && isfinite(d->q8_max_scale) && isfinite(d->q8_max_l1)))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: the int8 copy's bounds are not finite and >= 0");
    if (!d->q4 != !d->q4_info)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: a 4-bit copy needs both codes and infos");
    return CLIPDEX_OK;
}

/* The int8 copy of d's rows into scale [n] and c [n, dim], with its bounds. */
static void build_q8(clipdex_vecs_data *d, float *scale, int8_t *c)
{
    double max_l1 = 0;
    float max_scale = 0;
    for (size_t r = 0; r < d->n; r++) {
        const float *x = d->rows + r * d->dim;
        clipdex_vec_q8_row(x, d->dim, c + r * d->dim, &scale[r]);
        double l1 = 0;
        for (size_t i = 0; i < d->dim; i++) l1 += fabs((double)x[i]);
        if (l1 > max_l1) max_l1 = l1;
        if (scale[r] > max_scale) max_scale = scale[r];
    }
    d->q8 = c, d->q8_scale = scale;
    d->q8_max_scale = max_scale, d->q8_max_l1 = (float)(max_l1 * (1 + 1e-6));
}

/* Builds the copies d lacks into one allocation owned by v: the float
 * arrays first (scales, infos), then the byte codes. */
static int build_compact(clipdex_ctx *ctx, clipdex_vecs *v)
{
    clipdex_vecs_data *d = &v->d;
    size_t n = d->n, dim = d->dim, rb = clipdex_vec_q4_row_bytes(dim);
    size_t s8 = d->q8 ? 0 : n * sizeof(float), s4 = d->q4 ? 0 : n * sizeof(clipdex_vec_q4_info);
    size_t c8 = d->q8 ? 0 : n * dim, c4 = d->q4 ? 0 : n * rb;
    if (s8 + s4 + c8 + c4 == 0) return CLIPDEX_OK;
    char *buf = malloc(s8 + s4 + c8 + c4);
    if (!buf) return cdx_error(ctx, CLIPDEX_E_NOMEM, "clipdex_vecs_new: out of memory for %zu rows' copies", n);
    v->owned = buf;
    if (s8) build_q8(d, (float *)buf, (int8_t *)(buf + s8 + s4));
    if (s4) {
        clipdex_vec_q4_info *info = (clipdex_vec_q4_info *)(buf + s8);
        uint8_t *c = (uint8_t *)(buf + s8 + s4 + c8);
        for (size_t r = 0; r < n; r++) clipdex_vec_q4_row(d->rows + r * dim, dim, c + r * rb, &info[r]);
        d->q4 = c, d->q4_info = info;
    }
    return CLIPDEX_OK;
}

int clipdex_vecs_new(clipdex_ctx *ctx, const clipdex_vecs_data *data, int build, clipdex_vecs **out)
{
    cdx_clear_error(ctx);
    if (!data || !out) return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_new: NULL argument");
    *out = NULL;
    int rc = data_check(ctx, data);
    if (rc) return rc;
    clipdex_vecs *v = calloc(1, sizeof *v);
    if (!v) return cdx_error(ctx, CLIPDEX_E_NOMEM, "clipdex_vecs_new: out of memory");
    v->d = *data;
    if (build && (rc = build_compact(ctx, v))) {
        clipdex_vecs_free(v);
        return rc;
    }
    *out = v;
    return CLIPDEX_OK;
}

void clipdex_vecs_free(clipdex_vecs *v)
{
    if (!v) return;
    free(v->owned);
    free(v);
}

size_t clipdex_vecs_count(const clipdex_vecs *v) { return v ? v->d.n : 0; }

clipdex_search_params clipdex_search_params_default(void)
{
    clipdex_search_params p = {10, -INFINITY, CLIPDEX_SEARCH_AUTO, 0, 0};
    return p;
}

static size_t at_least(size_t dflt, size_t k) { return 4 * k > dflt ? 4 * k : dflt; }

int clipdex_vecs_search(clipdex_ctx *ctx, const clipdex_vecs *v, const float *q, const clipdex_search_params *params,
                        clipdex_hit *out, size_t *n_out, clipdex_search_stats *stats)
{
    cdx_clear_error(ctx);
    clipdex_search_params p = params ? *params : clipdex_search_params_default();
    clipdex_search_stats st = {32, 0, 0};
    if (!ctx || !v || !q || !n_out || (p.k && !out))
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_search: NULL argument");
    if (p.stage < CLIPDEX_SEARCH_AUTO || p.stage > CLIPDEX_SEARCH_STAGED)
        return cdx_error(ctx, CLIPDEX_E_ARG, "clipdex_vecs_search: unknown stage %d", p.stage);
    const clipdex_vecs_data *d = &v->d;
    size_t c8 = p.q8_candidates ? p.q8_candidates : at_least(Q8_CANDIDATES, p.k);
    size_t c4 = p.q4_candidates ? p.q4_candidates : at_least(Q4_CANDIDATES, p.k);
    cdx_q8_set q8 = {d->q8, d->q8_scale, d->q8_max_scale, d->q8_max_l1, c8};
    /* below ~8 x the candidates the float32 scan alone is as fast */
    int staged = d->q4 && (p.stage == CLIPDEX_SEARCH_STAGED || (p.stage == CLIPDEX_SEARCH_AUTO && d->n >= 8 * c8));
    int staged8 = !staged && d->q8 && p.stage != CLIPDEX_SEARCH_EXACT && (p.stage == CLIPDEX_SEARCH_STAGED || d->n >= 8 * c8);
    long got;
    if (staged) {
        got = cdx_vec_topk_q4(ctx, d->q4, d->q4_info, d->rows, d->n, d->dim, q, p.k, p.threshold, c4,
                              d->q8 ? &q8 : NULL, out, &st);
    } else if (staged8) {
        int fb;
        got = cdx_vec_topk_q8(ctx, &q8, d->rows, d->n, d->dim, q, p.k, p.threshold, out, &fb, &st.candidates);
        st.stage = fb ? 32 : 8;
    } else {
        got = cdx_vec_topk(ctx, d->rows, d->n, d->dim, q, p.k, p.threshold, out);
    }
    if (stats) *stats = st;
    if (got < 0) return cdx_error(ctx, CLIPDEX_E_NOMEM, "clipdex_vecs_search: out of memory for %zu candidates", c4 > c8 ? c4 : c8);
    *n_out = (size_t)got;
    return CLIPDEX_OK;
}
