/*
 * cmd_prompts.c - `clipdex prompts`: runs the text tower once and saves the
 * text embeddings to a prompts.json (with the identity of the model), so
 * `classify`, `eval` and `search` can use them with --prompts without running
 * the text tower again: the cached-embeddings workflow. --interactive reads
 * one prompt per line from standard input and rewrites the file after each.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_zeroshot.h"
#include "util/json.h"
#include "zeroshot/zeroshot.h"

const char usage_prompts[] =
    "Usage: clipdex prompts [--model DIR] --out FILE [OPTIONS] [TEXT]...\n"
    "\n"
    "Embeds texts with the text tower and saves them to FILE (JSON, see\n"
    "docs/cli.md) with the model's name and hash; `classify`, `eval` and\n"
    "`search` take it with --prompts and then run no text tower. Each TEXT is\n"
    "one entry (its own label). With --labels or --labels-file, each label is\n"
    "one entry: the prompt ensemble over --templates (see `clipdex classify`).\n"
    "\n"
    "Options:\n"
    "  --model DIR         model directory (default: $CLIPDEX_MODEL)\n"
    "  --out FILE          the prompts file to write (replaced atomically)\n"
    "  --labels LIST       comma-separated labels\n"
    "  --labels-file F     one label per line\n"
    "  --templates F       one template per line, \"{}\" marks the label\n"
    "  --interactive       then read prompts from standard input, one per line,\n"
    "                      saving FILE after each (end with Ctrl-D)\n"
    "  --append            keep the entries FILE already holds (same model)\n"
    "  --format F          clipdex (default) or video-app: the original video app's\n"
    "                      JSON ({\"entries\":[{\"text\",\"embedding\",\"negative\"}]}),\n"
    "                      which `clipdex watch --prompts` also reads\n"
    "  --threads N         worker threads, 0 = all CPUs (default 0)\n"
    "  --vocab PATH        tokenizer vocabulary (default: the model's)\n"
    "  -h, --help          print this text\n";

typedef struct prompts_opts {
    const char *model, *vocab, *out, *format;
    zs_source src;
    long threads;
    int interactive, append;
    char **texts;
    size_t n_texts;
} prompts_opts;

static int prompts_parse(int argc, char **argv, prompts_opts *o)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_prompts, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            o->texts[o->n_texts++] = argv[a.i];
        } else if ((r = cli_args_value(&a, "--model", &o->model)) != 0 ||
                   (r = cli_args_value(&a, "--vocab", &o->vocab)) != 0 ||
                   (r = cli_args_value(&a, "--out", &o->out)) != 0 ||
                   (r = cli_args_value(&a, "--format", &o->format)) != 0 ||
                   (r = cli_args_value(&a, "--labels", &o->src.labels)) != 0 ||
                   (r = cli_args_value(&a, "--labels-file", &o->src.labels_file)) != 0 ||
                   (r = cli_args_value(&a, "--templates", &o->src.templates)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--threads", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--threads", val, 0, 1024, &o->threads))
                return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--interactive")) != 0) {
            if (r < 0) return APP_USAGE;
            o->interactive = 1;
        } else if ((r = cli_args_flag(&a, "--append")) != 0) {
            if (r < 0) return APP_USAGE;
            o->append = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    if (!o->out) return cli_usage_error(a.cmd, "give --out FILE");
    if (o->format && strcmp(o->format, "clipdex") != 0 && strcmp(o->format, "video-app") != 0)
        return cli_usage_error(a.cmd, "--format is clipdex or video-app, not '%s'", o->format);
    if (o->src.labels && o->src.labels_file)
        return cli_usage_error(a.cmd, "give --labels or --labels-file, not both");
    if (o->src.templates && !o->src.labels && !o->src.labels_file)
        return cli_usage_error(a.cmd, "--templates needs --labels or --labels-file");
    if (!o->n_texts && !o->src.labels && !o->src.labels_file && !o->interactive)
        return cli_usage_error(a.cmd, "nothing to embed: give TEXTs, labels or --interactive");
    return -1;
}

/* Appends n entries (label = labels[i], text = texts[i]) with vectors v. */
static int add_entries(zs_prompts *p, char *const *labels, char *const *texts, size_t n,
                       const float *v)
{
    float *e = realloc(p->emb, (p->n + n) * p->dim * sizeof *e);
    if (!e) goto nomem;
    p->emb = e;
    for (size_t i = 0; i < n; i++) {
        if (zs_list_add(&p->label, labels[i], strlen(labels[i])) ||
            zs_list_add(&p->text, texts[i], strlen(texts[i])))
            goto nomem;
        memcpy(p->emb + p->n * p->dim, v + i * p->dim, p->dim * sizeof *e);
        p->n++;
    }
    return 0;
nomem:
    cli_error("out of memory");
    return APP_FAIL;
}

/* Embeds texts (each its own label, no templates) and appends them. */
static int add_texts(clipdex_ctx *ctx, const clipdex_model *model, zs_prompts *p,
                     char *const *texts, size_t n)
{
    zs_list labels = {0}, one = {0};
    float *v = malloc((n ? n : 1) * p->dim * sizeof *v);
    int rc = v ? 0 : APP_FAIL;
    for (size_t i = 0; !rc && i < n; i++)
        if (zs_list_add(&labels, texts[i], strlen(texts[i]))) rc = APP_FAIL;
    if (!rc && zs_list_add(&one, "{}", 2)) rc = APP_FAIL;
    if (rc) cli_error("out of memory");
    if (!rc) rc = zs_class_embed(ctx, model, &labels, &one, p->dim, v);
    if (!rc) rc = add_entries(p, texts, texts, n, v);
    zs_list_free(&labels);
    zs_list_free(&one);
    free(v);
    return rc;
}

/* Writes p in the chosen format (the video app's: every entry positive). */
static int prompts_save(const prompts_opts *o, const zs_prompts *p)
{
    if (!o->format || strcmp(o->format, "video-app") != 0) return zs_prompts_save(o->out, p);
    zs_wprompts w = {p->n, p->dim, p->text, calloc(p->n + 1, sizeof(int)), malloc((p->n + 1) * sizeof(double)),
                     p->emb, NAN};
    int rc = w.negative && w.threshold ? 0 : APP_FAIL;
    for (size_t i = 0; !rc && i < p->n; i++) w.threshold[i] = NAN;
    if (rc) cli_error("out of memory");
    else rc = zs_wprompts_save_app(o->out, &w, NAN);
    free(w.negative);
    free(w.threshold);
    return rc;
}

static int prompts_run(const prompts_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    zs_prompts p;
    memset(&p, 0, sizeof p);
    zs_list labels = {0};
    float *cls = NULL;
    char *line = NULL;
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    store_model_id id;
    if (!rc) rc = store_model_identify(model, o->model, &id);
    if (rc) goto done;
    if (o->append && access(o->out, F_OK) == 0) {
        if ((rc = zs_prompts_load(o->out, &id, &p))) goto done;
    } else {
        p.id = id;
        p.dim = (size_t)id.dim;
    }
    if (o->src.labels || o->src.labels_file) {
        if ((rc = zs_classes_load(ctx, model, o->model, &o->src, p.dim, &labels, &cls))) goto done;
        if ((rc = add_entries(&p, labels.v, labels.v, labels.n, cls))) goto done;
    }
    if (o->n_texts && (rc = add_texts(ctx, model, &p, o->texts, o->n_texts))) goto done;
    if ((p.n || !o->interactive) && (rc = prompts_save(o, &p))) goto done;
    if (o->interactive) {
        size_t cap = 0;
        ssize_t len;
        int tty = isatty(STDIN_FILENO);
        if (tty) fprintf(stderr, "Type a prompt per line; Ctrl-D ends.\n> ");
        while ((len = getline(&line, &cap, stdin)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
            if (len > 0) {
                char *one[1] = {line};
                if ((rc = add_texts(ctx, model, &p, one, 1))) goto done;
                if ((rc = prompts_save(o, &p))) goto done;
                fprintf(stderr, "saved %zu prompt%s to '%s'\n", p.n, p.n == 1 ? "" : "s", o->out);
            }
            if (tty) fputs("> ", stderr);
        }
        if (ferror(stdin)) {
            cli_error("cannot read standard input: %s", strerror(errno));
            rc = APP_FAIL;
            goto done;
        }
        if (p.n == 0 && (rc = prompts_save(o, &p))) goto done;
    }
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "out");
    json_str(&j, o->out);
    json_key(&j, "prompts");
    json_uint(&j, p.n);
    json_key(&j, "model_name");
    json_str(&j, id.name);
    json_key(&j, "model_hash");
    json_str(&j, id.hash);
    json_obj_end(&j);
    json_newline(&j);
    rc = cli_flush_stdout();
done:
    free(line);
    free(cls);
    zs_list_free(&labels);
    zs_prompts_free(&p);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_prompts(int argc, char **argv)
{
    prompts_opts o;
    memset(&o, 0, sizeof o);
    o.texts = calloc((size_t)argc + 1, sizeof *o.texts);
    if (!o.texts) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = prompts_parse(argc, argv, &o);
    if (rc < 0) rc = prompts_run(&o);
    free(o.texts);
    return rc;
}
