/*
 * cmd_compare.c - `clipdex compare`: scores one image or text against
 * prompts the way OpenAI's README does: cosine similarity of the normalized
 * embeddings, logit = logit_scale x cosine, and a numerically stable softmax
 * of the logits over the prompts. Prints one JSON object.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/json.h"

#define COMPARE_TEXT_BATCH 32

const char usage_compare[] =
    "Usage: clipdex compare [--model DIR] (--image PATH | --text STRING) PROMPT...\n"
    "\n"
    "Scores one image or text against the prompts and prints one JSON object:\n"
    "  {\"subject\":...,\"subject_type\":\"image\",\"logit_scale\":...,\"results\":[\n"
    "    {\"prompt\":...,\"cosine\":...,\"logit\":...,\"probability\":...},...]}\n"
    "cosine is the cosine similarity of the embeddings, logit = logit_scale x\n"
    "cosine, probability the softmax of the logits over the prompts.\n"
    "\n"
    "Options:\n"
    "  --model DIR      model directory (default: $CLIPDEX_MODEL)\n"
    "  --image PATH     the image to score\n"
    "  --text STRING    the text to score (instead of an image)\n"
    "  --threads N      worker threads, 0 = all CPUs (default 0)\n"
    "  --no-exif        ignore the EXIF orientation tag\n"
    "  --vocab PATH     tokenizer vocabulary (default: the model's, then $CLIPDEX_VOCAB)\n"
    "  -h, --help       print this text\n"
    "Use -- before prompts that start with '-'.\n";

typedef struct compare_opts {
    const char *model, *vocab, *subject;
    int subject_is_image;
    long threads;
    int no_exif;
    char **prompts;
    size_t n_prompts;
} compare_opts;

static int compare_parse(int argc, char **argv, compare_opts *o)
{
    const char *val = NULL;
    int r, n_subjects = 0;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_compare, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            o->prompts[o->n_prompts++] = argv[a.i];
        } else if ((r = cli_args_shared(&a, &o->model, &o->vocab, &o->threads, &o->no_exif)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--image", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->subject = val;
            o->subject_is_image = 1;
            n_subjects++;
        } else if ((r = cli_args_value(&a, "--text", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->subject = val;
            o->subject_is_image = 0;
            n_subjects++;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    if (n_subjects != 1)
        return cli_usage_error(a.cmd, "give exactly one --image PATH or --text STRING to compare");
    if (o->n_prompts == 0) return cli_usage_error(a.cmd, "no prompts to compare with");
    return -1;
}

/* Tokenizes texts[0..n) into ids [n, ctx_len] and embeds them into out
 * [n, dim], in chunks. Returns a clipdex status (message on ctx). */
static int embed_texts(clipdex_ctx *ctx, const clipdex_model *model, const clipdex_tokenizer *tok,
                       char *const *texts, size_t n, int32_t *ids, size_t ctx_len, float *out,
                       size_t dim)
{
    for (size_t i = 0; i < n; i++) {
        int st = clipdex_text_tokenize(ctx, tok, texts[i], strlen(texts[i]), ids + i * ctx_len,
                                       ctx_len, NULL, NULL);
        if (st != CLIPDEX_OK) return st;
    }
    for (size_t i = 0; i < n; i += COMPARE_TEXT_BATCH) {
        size_t m = n - i < COMPARE_TEXT_BATCH ? n - i : COMPARE_TEXT_BATCH;
        int st = clipdex_tokens_embed(ctx, model, ids + i * ctx_len, m, out + i * dim, m * dim, 0);
        if (st != CLIPDEX_OK) return st;
    }
    return CLIPDEX_OK;
}

/* Embeds the subject into out [dim]. Returns a clipdex status. */
static int embed_subject(clipdex_ctx *ctx, const clipdex_model *model, const clipdex_tokenizer *tok,
                         const compare_opts *o, int32_t *ids, size_t ctx_len, float *out,
                         size_t dim)
{
    if (!o->subject_is_image) {
        char *texts[1] = {(char *)o->subject};
        return embed_texts(ctx, model, tok, texts, 1, ids, ctx_len, out, dim);
    }
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = o->no_exif;
    clipdex_image *img = NULL;
    int st = clipdex_image_load(ctx, o->subject, &ip, &img);
    if (st == CLIPDEX_OK) {
        const clipdex_image *imgs[1] = {img};
        st = clipdex_image_embed(ctx, model, imgs, 1, out, dim, 0);
    }
    clipdex_image_free(img);
    return st;
}

/* Cosine similarity in double precision (0 if either vector is zero). */
static double cosine_f64(const float *a, const float *b, size_t n)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0.0 && bb > 0.0 ? ab / sqrt(aa * bb) : 0.0;
}

static void compare_print(const compare_opts *o, float logit_scale, const double *cosine,
                          const double *logit, const double *prob)
{
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "subject");
    json_str(&j, o->subject);
    json_key(&j, "subject_type");
    json_str(&j, o->subject_is_image ? "image" : "text");
    json_key(&j, "logit_scale");
    json_num(&j, logit_scale);
    json_key(&j, "results");
    json_arr_begin(&j);
    for (size_t i = 0; i < o->n_prompts; i++) {
        json_obj_begin(&j);
        json_key(&j, "prompt");
        json_str(&j, o->prompts[i]);
        json_key(&j, "cosine");
        json_num(&j, cosine[i]);
        json_key(&j, "logit");
        json_num(&j, logit[i]);
        json_key(&j, "probability");
        json_num(&j, prob[i]);
        json_obj_end(&j);
    }
    json_arr_end(&j);
    json_obj_end(&j);
    json_newline(&j);
}

static int compare_run(const compare_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    float *emb = NULL;
    int32_t *ids = NULL;
    double *scores = NULL;
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    if (rc) goto done;
    int st = clipdex_model_get_info(model, &info);
    if (st != CLIPDEX_OK || info.embed_dim <= 0 || info.context_length <= 0) {
        cli_error("cannot describe the model '%s': %s", o->model, clipdex_status_str(st));
        rc = APP_MODEL;
        goto done;
    }
    const clipdex_tokenizer *tok = clipdex_model_tokenizer(model);
    if (!tok) {
        cli_error("the model '%s' has no tokenizer (give --vocab or set CLIPDEX_VOCAB)", o->model);
        rc = APP_MODEL;
        goto done;
    }
    size_t dim = (size_t)info.embed_dim, ctx_len = (size_t)info.context_length;
    size_t n = o->n_prompts;
    emb = calloc((n + 1) * dim, sizeof *emb);       /* subject, then the prompts */
    ids = calloc(n * ctx_len, sizeof *ids);
    scores = calloc(3 * n, sizeof *scores);         /* cosine, logit, probability */
    if (!emb || !ids || !scores) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    st = embed_subject(ctx, model, tok, o, ids, ctx_len, emb, dim);
    if (st != CLIPDEX_OK) {
        char *msg = cli_errdup(ctx, st);
        cli_error("%s", msg);
        cli_msg_free(msg);
        rc = APP_FAIL;
        goto done;
    }
    st = embed_texts(ctx, model, tok, o->prompts, n, ids, ctx_len, emb + dim, dim);
    if (st != CLIPDEX_OK) {
        char *msg = cli_errdup(ctx, st);
        cli_error("%s", msg);
        cli_msg_free(msg);
        rc = APP_FAIL;
        goto done;
    }
    double *cosine = scores, *logit = scores + n, *prob = scores + 2 * n;
    double max = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cosine[i] = cosine_f64(emb, emb + (i + 1) * dim, dim);
        logit[i] = (double)info.logit_scale * cosine[i];
        if (logit[i] > max) max = logit[i];
    }
    for (size_t i = 0; i < n; i++) {
        prob[i] = exp(logit[i] - max); /* the largest term is exp(0) = 1: no overflow */
        sum += prob[i];
    }
    for (size_t i = 0; i < n; i++) prob[i] /= sum;
    compare_print(o, info.logit_scale, cosine, logit, prob);
    rc = cli_flush_stdout();
done:
    free(scores);
    free(ids);
    free(emb);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    compare_opts o;
    memset(&o, 0, sizeof o);
    o.prompts = calloc((size_t)argc + 1, sizeof *o.prompts);
    if (!o.prompts) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = compare_parse(argc, argv, &o);
    if (rc < 0) rc = compare_run(&o);
    free(o.prompts);
    return rc;
}
