/*
 * wprompts.c - the prompts of `clipdex watch` (zeroshot.h, zs_wprompts):
 * texts given on the command line (each alone, or with templates an
 * OpenAI-style ensemble: every template filled, embedded, averaged and
 * normalized), a prompts.json of `clipdex prompts` (checked against the
 * model), or the JSON file of the original video app:
 *   {"threshold": T, "text_prefix": "a photo of ", "ensemble_template": [...],
 *    "entries": [{"text", "embedding", "negative", "ensemble", "threshold"}]}
 * where an entry's "embedding" is used as given (normalized; its length must
 * be the model's), else its text is embedded (prefixed, or as an ensemble
 * over the file's templates when "ensemble" is true). Writing that format is
 * here too. Uses jansson only (see prompts_load.c on util/json.h).
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"
#include "zeroshot/zeroshot.h"

void zs_wprompts_free(zs_wprompts *p)
{
    zs_list_free(&p->text);
    free(p->negative);
    free(p->threshold);
    free(p->emb);
    memset(p, 0, sizeof *p);
}

/* Room for one more prompt; returns its index or -1 (reported). */
static long grow(zs_wprompts *p, const char *text)
{
    size_t n = p->n + 1;
    int *neg = realloc(p->negative, n * sizeof *neg);
    if (neg) p->negative = neg;
    double *thr = realloc(p->threshold, n * sizeof *thr);
    if (thr) p->threshold = thr;
    float *emb = realloc(p->emb, n * p->dim * sizeof *emb);
    if (emb) p->emb = emb;
    if (!neg || !thr || !emb || zs_list_add(&p->text, text, strlen(text))) {
        report_error("out of memory");
        return -1;
    }
    return (long)p->n++;
}

/* Embeds `text` into slot i: alone ("{}"), or over `templates`. */
static int embed_text(clipdex_ctx *ctx, const clipdex_model *model, const char *text, const zs_list *templates,
                      zs_wprompts *p, size_t i)
{
    zs_list label = {0}, alone = {0};
    int rc = zs_list_add(&label, text, strlen(text)) || zs_list_add(&alone, "{}", 2) ? APP_FAIL : 0;
    if (rc) report_error("out of memory");
    else rc = zs_class_embed(ctx, model, &label, templates && templates->n ? templates : &alone, p->dim,
                             p->emb + i * p->dim);
    zs_list_free(&label);
    zs_list_free(&alone);
    return rc;
}

int zs_wprompts_add_texts(clipdex_ctx *ctx, const clipdex_model *model, const char *const *texts, size_t n,
                          int negative, const zs_list *templates, zs_wprompts *p)
{
    for (size_t k = 0; k < n; k++) {
        long i = grow(p, texts[k]);
        if (i < 0) return APP_FAIL;
        p->negative[i] = negative;
        p->threshold[i] = NAN;
        int rc = embed_text(ctx, model, texts[k], templates, p, (size_t)i);
        if (rc) return rc;
    }
    return 0;
}

/* An entry's given embedding into slot i (normalized): 1 used, 0 absent, -1 bad. */
static int given_embedding(json_t *e, zs_wprompts *p, size_t i)
{
    json_t *a = json_object_get(e, "embedding");
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a) || json_array_size(a) != p->dim) return -1;
    float *v = p->emb + i * p->dim;
    for (size_t d = 0; d < p->dim; d++) {
        json_t *x = json_array_get(a, d);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) return -1;
        v[d] = (float)json_number_value(x);
    }
    zs_normalize(v, p->dim);
    return 1;
}

/* The file's templates ("ensemble_template": a list or one string). */
static int app_templates(json_t *root, zs_list *out)
{
    json_t *t = json_object_get(root, "ensemble_template");
    if (json_is_string(t)) return zs_list_add(out, json_string_value(t), strlen(json_string_value(t)));
    size_t k;
    json_t *v;
    json_array_foreach(t, k, v)
        if (json_is_string(v) && zs_list_add(out, json_string_value(v), strlen(json_string_value(v)))) return -1;
    return 0;
}

static int load_app_entry(clipdex_ctx *ctx, const clipdex_model *model, const char *path, json_t *e, size_t k,
                          const char *prefix, const zs_list *templates, zs_wprompts *p)
{
    const char *text = json_string_value(json_object_get(e, "text"));
    if (!json_is_object(e) || !text) {
        report_error("prompts '%s': entry %zu has no \"text\"", path, k + 1);
        return APP_FAIL;
    }
    long i = grow(p, text);
    if (i < 0) return APP_FAIL;
    p->negative[i] = json_is_true(json_object_get(e, "negative"));
    json_t *thr = json_object_get(e, "threshold");
    p->threshold[i] = json_is_number(thr) ? json_number_value(thr) : NAN;
    int g = given_embedding(e, p, (size_t)i);
    if (g < 0) {
        report_error("prompts '%s': entry %zu (\"%s\"): \"embedding\" is not %zu finite numbers", path, k + 1, text,
                     p->dim);
        return APP_FAIL;
    }
    if (g) return 0;
    if (json_is_true(json_object_get(e, "ensemble")) && templates->n)
        return embed_text(ctx, model, text, templates, p, (size_t)i);
    size_t len = strlen(prefix) + strlen(text) + 1;
    char *full = malloc(len);
    if (!full) {
        report_error("out of memory");
        return APP_FAIL;
    }
    snprintf(full, len, "%s%s", prefix, text);
    int rc = embed_text(ctx, model, full, NULL, p, (size_t)i);
    free(full);
    return rc;
}

static int load_app(clipdex_ctx *ctx, const clipdex_model *model, const char *path, json_t *root, zs_wprompts *p)
{
    json_t *entries = json_object_get(root, "entries"), *thr = json_object_get(root, "threshold");
    const char *prefix = json_string_value(json_object_get(root, "text_prefix"));
    if (!json_is_array(entries) || json_array_size(entries) == 0) {
        report_error("prompts '%s': \"entries\" is not a non-empty list", path);
        return APP_FAIL;
    }
    p->file_threshold = json_is_number(thr) ? json_number_value(thr) : NAN;
    zs_list templates = {0};
    int rc = app_templates(root, &templates) ? APP_FAIL : 0;
    if (rc) report_error("out of memory");
    size_t k;
    json_t *e;
    json_array_foreach(entries, k, e) {
        if (rc) break;
        rc = load_app_entry(ctx, model, path, e, k, prefix ? prefix : "", &templates, p);
    }
    zs_list_free(&templates);
    return rc;
}

int zs_wprompts_load(clipdex_ctx *ctx, const clipdex_model *model, const store_model_id *id, const char *path,
                     zs_wprompts *p)
{
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) {
        report_error("cannot read prompts '%s': %s (line %d)", path, err.text, err.line);
        return APP_FAIL;
    }
    int app = json_is_object(root) && json_object_get(root, "entries") != NULL;
    int rc = app ? load_app(ctx, model, path, root, p) : 0;
    json_decref(root);
    if (app) return rc;
    zs_prompts cp; /* clipdex's prompts.json: every entry a positive prompt */
    if ((rc = zs_prompts_load(path, id, &cp))) return rc;
    for (size_t k = 0; !rc && k < cp.n; k++) {
        long i = grow(p, cp.text.v[k]);
        if (i < 0) rc = APP_FAIL;
        else {
            p->negative[i] = 0;
            p->threshold[i] = NAN;
            memcpy(p->emb + (size_t)i * p->dim, cp.emb + k * cp.dim, p->dim * sizeof *p->emb);
        }
    }
    zs_prompts_free(&cp);
    return rc;
}

int zs_wprompts_save_app(const char *path, const zs_wprompts *p, double threshold)
{
    json_t *root = json_object(), *entries = json_array();
    int bad = !root || !entries;
    if (!bad && isfinite(threshold)) bad |= json_object_set_new(root, "threshold", json_real(threshold));
    bad |= !root || json_object_set_new(root, "text_prefix", json_string(""));
    for (size_t i = 0; !bad && i < p->n; i++) {
        json_t *e = json_object(), *v = json_array();
        bad |= !e || !v;
        for (size_t d = 0; !bad && d < p->dim; d++) bad |= json_array_append_new(v, json_real(p->emb[i * p->dim + d]));
        bad |= json_object_set_new(e, "text", json_string(p->text.v[i])) ||
               json_object_set_new(e, "embedding", v) || json_object_set_new(e, "negative", json_boolean(p->negative[i])) ||
               json_object_set_new(e, "ensemble", json_false()) || json_array_append_new(entries, e);
        if (!bad && isfinite(p->threshold[i])) bad |= json_object_set_new(e, "threshold", json_real(p->threshold[i]));
    }
    if (!bad) {
        bad = json_object_set_new(root, "entries", entries) != 0; /* the root owns it now */
        entries = NULL;
    }
    json_decref(entries);
    if (bad || json_dump_file(root, path, JSON_COMPACT | JSON_REAL_PRECISION(9))) {
        report_error("cannot write prompts '%s'", path);
        json_decref(root);
        return APP_FAIL;
    }
    json_decref(root);
    return 0;
}
