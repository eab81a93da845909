/*
 * cmd_embed.c - `clipdex embed`: embeds images and texts in command-line
 * order and prints one JSON line per input. Inputs are processed in windows
 * of --batch: the window's images are decoded and embedded in one
 * clipdex_image_embed call, its texts tokenized and embedded in one
 * clipdex_tokens_embed call, then the window is printed in order. A bad input
 * becomes an error object in its place and makes the exit code 1.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/json.h"

#define EMBED_BATCH_DEFAULT 8
#define EMBED_BATCH_MAX 1024

const char usage_embed[] =
    "Usage: clipdex embed [--model DIR] [--image PATH]... [--text STRING]... [OPTIONS]\n"
    "\n"
    "Embeds images and texts and prints one JSON object per input, one per line,\n"
    "in the order the --image and --text options were given:\n"
    "  {\"kind\":\"image\",\"input\":PATH,\"embedding\":[...]}\n"
    "  {\"kind\":\"text\",\"input\":STRING,\"tokens\":[...],\"embedding\":[...]}\n"
    "Embeddings are L2-normalized. An input that fails prints\n"
    "  {\"kind\":...,\"input\":...,\"error\":MESSAGE}\n"
    "in its place; the others are still embedded and the exit code is 1.\n"
    "\n"
    "Options:\n"
    "  --model DIR      model directory (default: $CLIPDEX_MODEL)\n"
    "  --image PATH     an image file (JPEG, PNG, WebP, GIF, BMP, TIFF, PNM)\n"
    "  --text STRING    a text\n"
    "  --batch N        inputs per batch, 1..1024 (default 8)\n"
    "  --threads N      worker threads, 0 = all CPUs (default 0)\n"
    "  --no-exif        ignore the EXIF orientation tag (as OpenAI's reference does)\n"
    "  --vocab PATH     tokenizer vocabulary (default: the model's, then $CLIPDEX_VOCAB)\n"
    "  -h, --help       print this text\n";

enum { INPUT_IMAGE, INPUT_TEXT };

typedef struct embed_input {
    int kind;
    const char *arg;
} embed_input;

/* The per-window state, allocated once for `batch` inputs. */
typedef struct embed_window {
    size_t batch, dim, ctx_len;
    clipdex_image **images;  /* [batch] decoded images of the window */
    size_t *image_slot;      /* [batch] window slot of each image */
    float *image_emb;        /* [batch, dim] */
    int32_t *ids;            /* [batch, ctx_len] token ids of the window's texts */
    size_t *text_slot;       /* [batch] window slot of each text */
    float *text_emb;         /* [batch, dim] */
    const float **emb;       /* [batch] embedding of each slot (NULL: failed) */
    const int32_t **tokens;  /* [batch] token ids of each text slot */
    size_t *n_tokens;        /* [batch] */
    int *truncated;          /* [batch] */
    char **err;              /* [batch] error message of each slot */
} embed_window;

static void window_free(embed_window *w)
{
    free(w->images);
    free(w->image_slot);
    free(w->image_emb);
    free(w->ids);
    free(w->text_slot);
    free(w->text_emb);
    free(w->emb);
    free(w->tokens);
    free(w->n_tokens);
    free(w->truncated);
    free(w->err);
}

static int window_alloc(embed_window *w, size_t batch, size_t dim, size_t ctx_len)
{
    memset(w, 0, sizeof *w);
    w->batch = batch;
    w->dim = dim;
    w->ctx_len = ctx_len;
    w->images = calloc(batch, sizeof *w->images);
    w->image_slot = calloc(batch, sizeof *w->image_slot);
    w->image_emb = calloc(batch * dim, sizeof *w->image_emb);
    w->ids = calloc(batch * ctx_len, sizeof *w->ids);
    w->text_slot = calloc(batch, sizeof *w->text_slot);
    w->text_emb = calloc(batch * dim, sizeof *w->text_emb);
    w->emb = calloc(batch, sizeof *w->emb);
    w->tokens = calloc(batch, sizeof *w->tokens);
    w->n_tokens = calloc(batch, sizeof *w->n_tokens);
    w->truncated = calloc(batch, sizeof *w->truncated);
    w->err = calloc(batch, sizeof *w->err);
    if (!w->images || !w->image_slot || !w->image_emb || !w->ids || !w->text_slot ||
        !w->text_emb || !w->emb || !w->tokens || !w->n_tokens || !w->truncated || !w->err) {
        window_free(w);
        return -1;
    }
    return 0;
}

/* Embeds the window's n decoded images; on a batch failure, retries them
 * one by one so only the images that fail get an error. */
static void embed_images(clipdex_ctx *ctx, const clipdex_model *model, embed_window *w, size_t n)
{
    if (n == 0) return;
    const clipdex_image *const *imgs = (const clipdex_image *const *)w->images;
    int st = clipdex_image_embed(ctx, model, imgs, n, w->image_emb, n * w->dim, 0);
    for (size_t k = 0; k < n; k++) {
        size_t slot = w->image_slot[k];
        if (st != CLIPDEX_OK && n > 1) {
            int st1 = clipdex_image_embed(ctx, model, imgs + k, 1, w->image_emb + k * w->dim,
                                          w->dim, 0);
            if (st1 != CLIPDEX_OK) {
                w->err[slot] = cli_errdup(ctx, st1);
                continue;
            }
        } else if (st != CLIPDEX_OK) {
            w->err[slot] = cli_errdup(ctx, st);
            continue;
        }
        w->emb[slot] = w->image_emb + k * w->dim;
    }
}

/* The same for the window's n tokenized texts. */
static void embed_texts(clipdex_ctx *ctx, const clipdex_model *model, embed_window *w, size_t n)
{
    if (n == 0) return;
    int st = clipdex_tokens_embed(ctx, model, w->ids, n, w->text_emb, n * w->dim, 0);
    for (size_t k = 0; k < n; k++) {
        size_t slot = w->text_slot[k];
        if (st != CLIPDEX_OK && n > 1) {
            int st1 = clipdex_tokens_embed(ctx, model, w->ids + k * w->ctx_len, 1,
                                           w->text_emb + k * w->dim, w->dim, 0);
            if (st1 != CLIPDEX_OK) {
                w->err[slot] = cli_errdup(ctx, st1);
                continue;
            }
        } else if (st != CLIPDEX_OK) {
            w->err[slot] = cli_errdup(ctx, st);
            continue;
        }
        w->emb[slot] = w->text_emb + k * w->dim;
    }
}

static void print_result(json_out *j, const embed_input *in, const embed_window *w, size_t slot)
{
    json_obj_begin(j);
    json_key(j, "kind");
    json_str(j, in->kind == INPUT_IMAGE ? "image" : "text");
    json_key(j, "input");
    json_str(j, in->arg);
    if (w->err[slot]) {
        json_key(j, "error");
        json_str(j, w->err[slot]);
    } else {
        if (in->kind == INPUT_TEXT) {
            json_key(j, "tokens");
            json_ints(j, w->tokens[slot], w->n_tokens[slot]);
        }
        json_key(j, "embedding");
        json_floats(j, w->emb[slot], w->dim);
    }
    json_obj_end(j);
    json_newline(j);
}

/* Embeds and prints inputs[0..n), which start at input number index0 (for
 * messages); returns the number that failed. */
static size_t embed_window_run(clipdex_ctx *ctx, const clipdex_model *model,
                               const clipdex_tokenizer *tok, const clipdex_image_params *ip,
                               embed_window *w, const embed_input *inputs, size_t index0, size_t n,
                               json_out *j)
{
    size_t n_img = 0, n_txt = 0, failed = 0;
    for (size_t s = 0; s < n; s++) {
        w->emb[s] = NULL;
        w->tokens[s] = NULL;
        w->err[s] = NULL;
        const embed_input *in = &inputs[s];
        if (in->kind == INPUT_IMAGE) {
            clipdex_image *img = NULL;
            int st = clipdex_image_load(ctx, in->arg, ip, &img);
            if (st != CLIPDEX_OK) {
                w->err[s] = cli_errdup(ctx, st);
                continue;
            }
            w->images[n_img] = img;
            w->image_slot[n_img++] = s;
        } else if (!tok) {
            w->err[s] = cli_strdup("the model has no tokenizer (give --vocab or set CLIPDEX_VOCAB)");
        } else {
            int32_t *ids = w->ids + n_txt * w->ctx_len;
            int st = clipdex_text_tokenize(ctx, tok, in->arg, strlen(in->arg), ids, w->ctx_len,
                                           &w->n_tokens[s], &w->truncated[s]);
            if (st != CLIPDEX_OK) {
                w->err[s] = cli_errdup(ctx, st);
                continue;
            }
            if (w->truncated[s])
                fprintf(stderr, "clipdex: warning: input %zu: text cut to %zu tokens\n", index0 + s + 1,
                        w->n_tokens[s]);
            w->tokens[s] = ids;
            w->text_slot[n_txt++] = s;
        }
    }
    embed_images(ctx, model, w, n_img);
    embed_texts(ctx, model, w, n_txt);
    for (size_t k = 0; k < n_img; k++) {
        clipdex_image_free(w->images[k]);
        w->images[k] = NULL;
    }
    for (size_t s = 0; s < n; s++) {
        print_result(j, &inputs[s], w, s);
        if (w->err[s]) {
            failed++;
            cli_msg_free(w->err[s]);
            w->err[s] = NULL;
        }
    }
    fflush(stdout);
    return failed;
}

typedef struct embed_opts {
    const char *model, *vocab;
    long batch, threads;
    int no_exif;
    embed_input *inputs; /* [argc] */
    size_t n_inputs;
} embed_opts;

/* Parses the command line into *o; returns -1 to go on, else an exit code. */
static int embed_parse(int argc, char **argv, embed_opts *o)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_embed, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a))
            return cli_usage_error(a.cmd, "unexpected argument '%s' (give inputs with --image or --text)",
                                   argv[a.i]);
        if ((r = cli_args_shared(&a, &o->model, &o->vocab, &o->threads, &o->no_exif)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--image", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->inputs[o->n_inputs].kind = INPUT_IMAGE;
            o->inputs[o->n_inputs++].arg = val;
        } else if ((r = cli_args_value(&a, "--text", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            o->inputs[o->n_inputs].kind = INPUT_TEXT;
            o->inputs[o->n_inputs++].arg = val;
        } else if ((r = cli_args_value(&a, "--batch", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--batch", val, 1, EMBED_BATCH_MAX, &o->batch))
                return APP_USAGE;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    if (o->n_inputs == 0)
        return cli_usage_error(a.cmd, "nothing to embed: give --image PATH or --text STRING");
    return -1;
}

/* Loads the model and embeds every input; returns the exit code. */
static int embed_run(const embed_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    embed_window w;
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    if (rc) goto done;
    int st = clipdex_model_get_info(model, &info);
    if (st != CLIPDEX_OK || info.embed_dim <= 0 || info.context_length <= 0) {
        cli_error("cannot describe the model '%s': %s", o->model, clipdex_status_str(st));
        rc = APP_MODEL;
        goto done;
    }
    size_t batch = (size_t)o->batch < o->n_inputs ? (size_t)o->batch : o->n_inputs;
    if (window_alloc(&w, batch, (size_t)info.embed_dim, (size_t)info.context_length)) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = o->no_exif;
    const clipdex_tokenizer *tok = clipdex_model_tokenizer(model);
    json_out j;
    json_init(&j, stdout);
    size_t failed = 0;
    for (size_t start = 0; start < o->n_inputs; start += batch) {
        size_t n = o->n_inputs - start < batch ? o->n_inputs - start : batch;
        failed += embed_window_run(ctx, model, tok, &ip, &w, o->inputs + start, start, n, &j);
    }
    window_free(&w);
    rc = cli_flush_stdout();
    if (!rc && failed) rc = APP_FAIL;
done:
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_embed(int argc, char **argv)
{
    embed_opts o;
    memset(&o, 0, sizeof o);
    o.batch = EMBED_BATCH_DEFAULT;
    o.inputs = calloc((size_t)argc + 1, sizeof *o.inputs);
    if (!o.inputs) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = embed_parse(argc, argv, &o);
    if (rc < 0) rc = embed_run(&o);
    free(o.inputs);
    return rc;
}
