/*
 * prompts_load.c - reads a prompts.json (written by zs_prompts_save) with
 * jansson, checks the model identity it records, and frees what it read.
 * Kept apart from zeroshot.c because jansson.h and the app's util/json.h
 * both name json_null; it calls only lists.c below it.
 */
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/report.h"
#include "zeroshot/zeroshot.h"

void zs_prompts_free(zs_prompts *p)
{
    zs_list_free(&p->label);
    zs_list_free(&p->text);
    free(p->emb);
    memset(p, 0, sizeof *p);
}

int zs_prompts_load(const char *path, const store_model_id *id, zs_prompts *out)
{
    memset(out, 0, sizeof *out);
    json_error_t err;
    json_t *root = json_load_file(path, 0, &err);
    if (!root) {
        report_error("cannot read prompts '%s': %s (line %d)", path, err.text, err.line);
        return APP_FAIL;
    }
    const char *why = NULL;
    const char *fmt = json_string_value(json_object_get(root, "format"));
    const char *name = json_string_value(json_object_get(root, "model_name"));
    const char *hash = json_string_value(json_object_get(root, "model_hash"));
    json_t *jd = json_object_get(root, "embed_dim");
    json_t *arr = json_object_get(root, "prompts");
    if (!fmt || strcmp(fmt, ZS_PROMPTS_FORMAT) != 0) {
        why = "not a clipdex prompts file (\"format\" is not \"" ZS_PROMPTS_FORMAT "\")";
    } else if (!hash || !json_is_integer(jd) || !json_is_array(arr)) {
        why = "\"model_hash\", \"embed_dim\" or \"prompts\" missing";
    }
    if (why) {
        report_error("cannot read prompts '%s': %s", path, why);
        json_decref(root);
        return APP_FAIL;
    }
    if (strcmp(hash, id->hash) != 0 || json_integer_value(jd) != id->dim) {
        report_error("prompts '%s' were made with model '%s' (hash %.16s..., %lld dimensions), "
                     "not with '%s' (hash %.16s..., %d dimensions); run `clipdex prompts` again",
                     path, name ? name : "?", hash, (long long)json_integer_value(jd), id->name,
                     id->hash, id->dim);
        json_decref(root);
        return APP_FAIL;
    }
    out->id = *id;
    out->dim = (size_t)id->dim;
    size_t n = json_array_size(arr);
    out->emb = malloc((n ? n : 1) * out->dim * sizeof *out->emb);
    int rc = 0;
    if (!out->emb) {
        report_error("out of memory");
        rc = APP_FAIL;
    }
    for (size_t i = 0; !rc && i < n; i++) {
        json_t *e = json_array_get(arr, i);
        const char *label = json_string_value(json_object_get(e, "label"));
        const char *text = json_string_value(json_object_get(e, "text"));
        json_t *v = json_object_get(e, "embedding");
        if (!text && !label) {
            report_error("prompts '%s': entry %zu has neither \"text\" nor \"label\"", path, i + 1);
            rc = APP_FAIL;
            break;
        }
        if (!label) label = text;
        if (!text) text = label;
        if (!json_is_array(v) || json_array_size(v) != out->dim) {
            report_error("prompts '%s': entry %zu ('%s') has no embedding of %zu numbers", path,
                         i + 1, label, out->dim);
            rc = APP_FAIL;
            break;
        }
        float *o = out->emb + i * out->dim;
        for (size_t d = 0; d < out->dim; d++) {
            json_t *x = json_array_get(v, d);
            if (!json_is_number(x) || !isfinite(json_number_value(x))) {
                report_error("prompts '%s': entry %zu ('%s'): embedding[%zu] is not a number", path,
                             i + 1, label, d);
                rc = APP_FAIL;
                break;
            }
            o[d] = (float)json_number_value(x);
        }
        if (rc) break;
        zs_normalize(o, out->dim);
        if (zs_list_add(&out->label, label, strlen(label)) ||
            zs_list_add(&out->text, text, strlen(text))) {
            report_error("out of memory");
            rc = APP_FAIL;
            break;
        }
        out->n++;
    }
    json_decref(root);
    if (rc) zs_prompts_free(out);
    return rc;
}
