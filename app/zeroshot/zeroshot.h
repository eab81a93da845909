/*
 * zeroshot.h - what `classify`, `prompts`, `eval` and `search --prompts`
 * share: label and template lists, OpenAI's prompt-ensemble class
 * embeddings, the prompts.json file of cached text embeddings (with the
 * identity of the model that made them), and softmax scoring over classes.
 * Four files, each calling only those before it: lists.c (lists, template
 * filling, normalization), prompts_load.c (reading prompts.json),
 * zeroshot.c (the rest), and wprompts.c (the prompts of `clipdex watch`).
 */
#ifndef CLIPDEX_APP_ZEROSHOT_H
#define CLIPDEX_APP_ZEROSHOT_H

#include <stddef.h>

#include "clipdex.h"
#include "store/store.h"

#define ZS_PROMPTS_FORMAT "clipdex-prompts-v1"
#ifndef ZS_MAX_LIST
#define ZS_MAX_LIST 100000 /* labels or templates per list */
#endif
#ifndef ZS_MAX_LINE
#define ZS_MAX_LINE 4096   /* bytes per label or template line */
#endif

/* A list of NUL-terminated strings (owned). */
typedef struct zs_list {
    char **v;
    size_t n, cap;
} zs_list;

void zs_list_free(zs_list *l);
/* Appends a copy of s[0..len); returns 0 or -1 (out of memory, too many). */
int zs_list_add(zs_list *l, const char *s, size_t len);
/* "a, b,c" -> {"a","b","c"}: split at commas, spaces around items trimmed,
 * empty items dropped. Returns 0 or APP_USAGE/APP_FAIL (reported). */
int zs_list_split(const char *csv, zs_list *out);
/* One item per line ('\r' and surrounding spaces trimmed, empty lines and
 * lines starting with '#' skipped). Returns 0 or APP_FAIL (reported). */
int zs_list_file(const char *path, zs_list *out);

/* A malloc'd copy of `tmpl` with every "{}" replaced by `label` (a template
 * without "{}" is used as is). NULL when memory ran out. */
char *zs_fill(const char *tmpl, const char *label);

/* OpenAI's prompt ensemble: for each label, embeds every template filled
 * with it, L2-normalizes each, averages and normalizes again.
 * out: [n_labels, dim]. Texts go through the text tower in batches.
 * Returns 0 or APP_FAIL/APP_MODEL (reported). */
int zs_class_embed(clipdex_ctx *ctx, const clipdex_model *model, const zs_list *labels,
                   const zs_list *templates, size_t dim, float *out);

/* Cached text embeddings (prompts.json). Entry i has a label (the class it
 * stands for), the text it was made from, and an L2-normalized vector. */
typedef struct zs_prompts {
    store_model_id id;
    size_t n, dim;
    zs_list label, text;
    float *emb; /* [n, dim] */
} zs_prompts;

void zs_prompts_free(zs_prompts *p);
/* Writes p as prompts.json (a temporary file renamed over `path`).
 * Returns 0 or APP_FAIL (reported). */
int zs_prompts_save(const char *path, const zs_prompts *p);
/* Reads prompts.json and checks it was made by the model `id` (hash and
 * dimension). Returns 0 or APP_FAIL (reported). */
int zs_prompts_load(const char *path, const store_model_id *id, zs_prompts *out);
/* Classes of a prompts file: consecutive entries with the same label form
 * one class, whose vector is the normalized mean of theirs. labels gets
 * copies of the class names; emb [n_classes, dim] is malloc'd. */
int zs_prompts_classes(const zs_prompts *p, zs_list *labels, float **emb);
/* The entry whose text (else label) equals s; -1 if none. */
long zs_prompts_find(const zs_prompts *p, const char *s);

/* cos[c] = <x, cls[c]> (double), logit = scale * cos, prob = softmax(logit). */
void zs_scores(const float *x, const float *cls, size_t n_classes, size_t dim, double scale,
               double *cos, double *logit, double *prob);
/* The indexes of the k largest values of v[0..n), best first (ties: lower
 * index first). Writes min(k, n) indexes. */
size_t zs_topk(const double *v, size_t n, size_t k, size_t *idx);

/* Where the classes come from: labels (a comma list or a file) with
 * optional templates run through the text tower, or a prompts file. */
typedef struct zs_source {
    const char *labels, *labels_file, *templates, *prompts;
} zs_source;

/* Builds the class names and vectors [n, dim] (malloc'd) from `src`.
 * Returns 0 or APP_FAIL/APP_MODEL (reported). */
int zs_classes_load(clipdex_ctx *ctx, const clipdex_model *model, const char *model_path,
                    const zs_source *src, size_t dim, zs_list *labels, float **emb);

/* Prompts of `clipdex watch` (wprompts.c): texts with a negative flag and
 * an optional own threshold (NAN: the global one), and their L2-normalized
 * vectors. Set dim before adding. */
typedef struct zs_wprompts {
    size_t n, dim;
    zs_list text;
    int *negative;
    double *threshold;
    float *emb;            /* [n, dim] */
    double file_threshold; /* the video app file's "threshold" (NAN: none) */
} zs_wprompts;
void zs_wprompts_free(zs_wprompts *p);
/* Appends texts (each alone, or with templates the ensemble over them).
 * Returns 0 or APP_FAIL/APP_MODEL (reported). */
int zs_wprompts_add_texts(clipdex_ctx *ctx, const clipdex_model *model, const char *const *texts, size_t n,
                          int negative, const zs_list *templates, zs_wprompts *p);
/* Appends the prompts of a file: the original video app's JSON
 * ({"entries": [...]}) or a clipdex prompts.json (checked against `id`).
 * Returns 0 or APP_FAIL/APP_MODEL (reported). */
int zs_wprompts_load(clipdex_ctx *ctx, const clipdex_model *model, const store_model_id *id, const char *path,
                     zs_wprompts *p);
/* Writes p in the video app's format (threshold NAN: none). */
int zs_wprompts_save_app(const char *path, const zs_wprompts *p, double threshold);

/* L2-normalizes v in place (a zero vector is left as is). */
void zs_normalize(float *v, size_t dim);

#endif
