/*
 * zeroshot.c - zero-shot classification helpers: prompt-ensemble class
 * embeddings (OpenAI's recipe), prompts.json written with the JSON writer
 * (read in prompts_load.c), class vectors from a prompts file, and
 * softmax/top-k scoring. The label and template lists are lists.c's.
 */
#include "zeroshot/zeroshot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/json.h"
#include "util/report.h"

#define ZS_TEXT_BATCH 64 /* texts per text-tower call */

int zs_class_embed(clipdex_ctx *ctx, const clipdex_model *model, const zs_list *labels,
                   const zs_list *templates, size_t dim, float *out)
{
    if (!clipdex_model_tokenizer(model)) {
        report_error(
            "the model has no tokenizer (give --vocab, set CLIPDEX_VOCAB, or use --prompts)");
        return APP_MODEL;
    }
    size_t nt = templates->n, total = labels->n * nt;
    char *texts[ZS_TEXT_BATCH];
    float *e = malloc(ZS_TEXT_BATCH * dim * sizeof *e);
    double *acc = calloc(dim, sizeof *acc);
    int rc = 0;
    if (!e || !acc) {
        report_error("out of memory");
        rc = APP_FAIL;
    }
    /* texts in (label, template) order; a label's sum is finished when its
     * last template is done */
    for (size_t i0 = 0; !rc && i0 < total; i0 += ZS_TEXT_BATCH) {
        size_t m = total - i0 < ZS_TEXT_BATCH ? total - i0 : ZS_TEXT_BATCH;
        size_t made = 0;
        for (; made < m; made++) {
            size_t t = i0 + made;
            texts[made] = zs_fill(templates->v[t % nt], labels->v[t / nt]);
            if (!texts[made]) break;
        }
        int st = CLIPDEX_OK;
        if (made < m) {
            report_error("out of memory");
            rc = APP_FAIL;
        } else {
            st = clipdex_text_embed(ctx, model, (const char *const *)texts, m, e, m * dim, 0);
            if (st != CLIPDEX_OK) {
                const char *msg = clipdex_ctx_errmsg(ctx);
                report_error("cannot embed the prompt '%s': %s", texts[0],
                             msg && msg[0] ? msg : clipdex_status_str(st));
                rc = APP_FAIL;
            }
        }
        for (size_t k = 0; k < made; k++) free(texts[k]);
        for (size_t k = 0; !rc && k < m; k++) {
            size_t t = i0 + k;
            const float *v = e + k * dim; /* already L2-normalized */
            for (size_t d = 0; d < dim; d++) acc[d] += v[d];
            if (t % nt == nt - 1) {
                float *o = out + (t / nt) * dim;
                for (size_t d = 0; d < dim; d++) o[d] = (float)(acc[d] / (double)nt);
                zs_normalize(o, dim);
                memset(acc, 0, dim * sizeof *acc);
            }
        }
    }
    free(e);
    free(acc);
    return rc;
}

/* ---- prompts.json --------------------------------------------------------- */

int zs_prompts_save(const char *path, const zs_prompts *p)
{
    size_t tl = strlen(path) + 32;
    char *tmp = malloc(tl);
    if (!tmp) {
        report_error("out of memory");
        return APP_FAIL;
    }
    snprintf(tmp, tl, "%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        report_error("cannot create '%s': %s", tmp, strerror(errno));
        free(tmp);
        return APP_FAIL;
    }
    json_out j;
    json_init(&j, f);
    json_obj_begin(&j);
    json_key(&j, "format");
    json_str(&j, ZS_PROMPTS_FORMAT);
    json_key(&j, "model_name");
    json_str(&j, p->id.name);
    json_key(&j, "model_hash");
    json_str(&j, p->id.hash);
    json_key(&j, "embed_dim");
    json_uint(&j, p->dim);
    json_key(&j, "prompts");
    json_arr_begin(&j);
    for (size_t i = 0; i < p->n; i++) {
        fputs("\n", f);
        json_obj_begin(&j);
        json_key(&j, "label");
        json_str(&j, p->label.v[i]);
        json_key(&j, "text");
        json_str(&j, p->text.v[i]);
        json_key(&j, "embedding");
        json_floats(&j, p->emb + i * p->dim, p->dim);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_newline(&j);
    int bad = ferror(f) != 0;
    if (fflush(f) || fsync(fileno(f))) bad = 1;
    if (fclose(f)) bad = 1;
    if (bad || rename(tmp, path)) {
        report_error("cannot write '%s': %s", bad ? tmp : path, strerror(errno));
        unlink(tmp);
        free(tmp);
        return APP_FAIL;
    }
    free(tmp);
    return 0;
}

int zs_prompts_classes(const zs_prompts *p, zs_list *labels, float **emb)
{
    size_t dim = p->dim;
    *emb = malloc((p->n ? p->n : 1) * dim * sizeof **emb);
    double *acc = calloc(dim, sizeof *acc);
    if (!*emb || !acc) goto nomem;
    size_t cnt = 0;
    for (size_t i = 0; i < p->n; i++) {
        const float *v = p->emb + i * dim;
        for (size_t d = 0; d < dim; d++) acc[d] += v[d];
        cnt++;
        if (i + 1 == p->n || strcmp(p->label.v[i + 1], p->label.v[i]) != 0) {
            float *o = *emb + labels->n * dim;
            for (size_t d = 0; d < dim; d++) o[d] = (float)(acc[d] / (double)cnt);
            zs_normalize(o, dim);
            if (zs_list_add(labels, p->label.v[i], strlen(p->label.v[i]))) goto nomem;
            memset(acc, 0, dim * sizeof *acc);
            cnt = 0;
        }
    }
    free(acc);
    return 0;
nomem:
    free(acc);
    free(*emb);
    *emb = NULL;
    report_error("out of memory");
    return APP_FAIL;
}

long zs_prompts_find(const zs_prompts *p, const char *s)
{
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->text.v[i], s) == 0) return (long)i;
    for (size_t i = 0; i < p->n; i++)
        if (strcmp(p->label.v[i], s) == 0) return (long)i;
    return -1;
}

/* ---- scoring ----------------------------------------------------------------- */

void zs_scores(const float *x, const float *cls, size_t n_classes, size_t dim, double scale,
               double *cos, double *logit, double *prob)
{
    double max = -INFINITY, sum = 0;
    for (size_t c = 0; c < n_classes; c++) {
        const float *w = cls + c * dim;
        double s = 0;
        for (size_t d = 0; d < dim; d++) s += (double)x[d] * w[d];
        cos[c] = s;
        logit[c] = scale * s;
        if (logit[c] > max) max = logit[c];
    }
    for (size_t c = 0; c < n_classes; c++) {
        prob[c] = exp(logit[c] - max); /* the largest term is 1: no overflow */
        sum += prob[c];
    }
    for (size_t c = 0; c < n_classes; c++) prob[c] /= sum;
}

size_t zs_topk(const double *v, size_t n, size_t k, size_t *idx)
{
    if (k > n) k = n;
    if (k == 0) return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) { /* insertion into a sorted list of k: k is small */
        if (m == k && !(v[i] > v[idx[k - 1]])) continue;
        size_t j = m < k ? m++ : k - 1;
        while (j > 0 && v[i] > v[idx[j - 1]]) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return m;
}

int zs_classes_load(clipdex_ctx *ctx, const clipdex_model *model, const char *model_path,
                    const zs_source *src, size_t dim, zs_list *labels, float **emb)
{
    *emb = NULL;
    if (src->prompts) {
        store_model_id id;
        zs_prompts p;
        int rc = store_model_identify(model, model_path, &id);
        if (rc) return rc;
        if ((rc = zs_prompts_load(src->prompts, &id, &p))) return rc;
        if (p.n == 0) {
            report_error("prompts '%s' hold no entries", src->prompts);
            rc = APP_FAIL;
        } else {
            rc = zs_prompts_classes(&p, labels, emb);
        }
        zs_prompts_free(&p);
        return rc;
    }
    zs_list templates = {0};
    int rc = src->labels_file ? zs_list_file(src->labels_file, labels)
                              : zs_list_split(src->labels ? src->labels : "", labels);
    if (!rc && labels->n == 0) {
        report_error("no labels to classify with");
        rc = APP_FAIL;
    }
    if (!rc) rc = src->templates ? zs_list_file(src->templates, &templates)
                                 : zs_list_add(&templates, "{}", 2) ? APP_FAIL : 0;
    if (!rc) {
        *emb = malloc(labels->n * dim * sizeof **emb);
        if (!*emb) {
            report_error("out of memory");
            rc = APP_FAIL;
        }
    }
    if (!rc) rc = zs_class_embed(ctx, model, labels, &templates, dim, *emb);
    zs_list_free(&templates);
    if (rc) {
        free(*emb);
        *emb = NULL;
    }
    return rc;
}
