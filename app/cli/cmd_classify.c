/*
 * cmd_classify.c - `clipdex classify`: zero-shot classification of images
 * over a set of labels. Each label's text vector is OpenAI's prompt
 * ensemble over the templates (or comes cached from a prompts.json); each
 * image gets its top labels with softmax probabilities, one JSON line.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_zeroshot.h"
#include "util/json.h"
#include "zeroshot/zeroshot.h"

#define CLASSIFY_TOP_DEFAULT 5

const char usage_classify[] =
    "Usage: clipdex classify [--model DIR] (--labels \"a,b,c\" | --labels-file F | --prompts P)\n"
    "                        [--templates F] [OPTIONS] IMAGE...\n"
    "\n"
    "Zero-shot classification: prints one JSON line per image with its top\n"
    "labels, best first:\n"
    "  {\"image\":\"cat.jpg\",\"results\":[{\"label\":\"cat\",\"probability\":0.93,\n"
    "    \"cosine\":0.31,\"logit\":31.2},...]}\n"
    "A label's vector is the prompt ensemble of OpenAI's zero-shot recipe: every\n"
    "template with \"{}\" replaced by the label is embedded and normalized, the\n"
    "vectors are averaged and normalized again. probability is the softmax of\n"
    "logit = logit_scale x cosine over all labels.\n"
    "\n"
    "Options:\n"
    "  --model DIR         model directory (default: $CLIPDEX_MODEL)\n"
    "  --labels LIST       comma-separated labels (\"cat, dog, a red car\")\n"
    "  --labels-file F     one label per line (empty lines and #comments skipped)\n"
    "  --templates F       one template per line, \"{}\" marks the label\n"
    "                      (default: the label alone)\n"
    "  --prompts P         cached class vectors from `clipdex prompts` instead of\n"
    "                      labels and templates (no text tower is run)\n"
    "  -k, --top N         labels per image, 1..1000 (default 5)\n"
    "  --threads N         worker threads, 0 = all CPUs (default 0)\n"
    "  --no-exif           ignore the EXIF orientation tag\n"
    "  --vocab PATH        tokenizer vocabulary (default: the model's)\n"
    "  -h, --help          print this text\n";

typedef struct classify_opts {
    const char *model, *vocab;
    zs_source src;
    long top, threads;
    int no_exif;
    char **images;
    size_t n_images;
} classify_opts;

static int classify_parse(int argc, char **argv, classify_opts *o)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_classify, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            o->images[o->n_images++] = argv[a.i];
        } else if ((r = cli_args_shared(&a, &o->model, &o->vocab, &o->threads, &o->no_exif)) != 0 ||
                   (r = cli_args_value(&a, "--labels", &o->src.labels)) != 0 ||
                   (r = cli_args_value(&a, "--labels-file", &o->src.labels_file)) != 0 ||
                   (r = cli_args_value(&a, "--templates", &o->src.templates)) != 0 ||
                   (r = cli_args_value(&a, "--prompts", &o->src.prompts)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "-k", &val)) != 0 ||
                   (r = cli_args_value(&a, "--top", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--top", val, 1, 1000, &o->top)) return APP_USAGE;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_path(o->model);
    if (!o->model) return cli_model_error();
    int n_src = !!o->src.labels + !!o->src.labels_file + !!o->src.prompts;
    if (n_src != 1)
        return cli_usage_error(a.cmd, "give exactly one of --labels, --labels-file or --prompts");
    if (o->src.prompts && o->src.templates)
        return cli_usage_error(a.cmd, "--templates does not apply to --prompts (the vectors are made)");
    if (o->n_images == 0) return cli_usage_error(a.cmd, "no images to classify");
    return -1;
}

static void print_error(const char *image, const char *msg)
{
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "image");
    json_str(&j, image);
    json_key(&j, "error");
    json_str(&j, msg);
    json_obj_end(&j);
    json_newline(&j);
}

static int classify_run(const classify_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    zs_list labels = {0};
    float *cls = NULL, *x = NULL;
    double *sc = NULL;
    size_t *top = NULL;
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &model);
    if (rc) goto done;
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || info.embed_dim <= 0) {
        cli_error("cannot describe the model '%s'", o->model);
        rc = APP_MODEL;
        goto done;
    }
    size_t dim = (size_t)info.embed_dim;
    if ((rc = zs_classes_load(ctx, model, o->model, &o->src, dim, &labels, &cls))) goto done;
    size_t nc = labels.n;
    x = malloc(dim * sizeof *x);
    sc = malloc(3 * nc * sizeof *sc);
    top = malloc(nc * sizeof *top);
    if (!x || !sc || !top) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    clipdex_image_params ip = clipdex_image_params_default();
    ip.ignore_exif_orientation = o->no_exif;
    int any_failed = 0;
    for (size_t i = 0; i < o->n_images; i++) {
        clipdex_image *img = NULL;
        int st = clipdex_image_load(ctx, o->images[i], &ip, &img);
        if (st == CLIPDEX_OK) {
            const clipdex_image *one = img;
            st = clipdex_image_embed(ctx, model, &one, 1, x, dim, 0);
        }
        clipdex_image_free(img);
        if (st != CLIPDEX_OK) {
            char *m = cli_errdup(ctx, st);
            print_error(o->images[i], m);
            cli_msg_free(m);
            any_failed = 1;
            continue;
        }
        double *cos = sc, *logit = sc + nc, *prob = sc + 2 * nc;
        zs_scores(x, cls, nc, dim, info.logit_scale, cos, logit, prob);
        size_t nt = zs_topk(prob, nc, (size_t)o->top, top);
        json_out j;
        json_init(&j, stdout);
        json_obj_begin(&j);
        json_key(&j, "image");
        json_str(&j, o->images[i]);
        json_key(&j, "results");
        json_arr_begin(&j);
        for (size_t t = 0; t < nt; t++) {
            size_t c = top[t];
            json_obj_begin(&j);
            json_key(&j, "label");
            json_str(&j, labels.v[c]);
            json_key(&j, "probability");
            json_num(&j, prob[c]);
            json_key(&j, "cosine");
            json_num(&j, cos[c]);
            json_key(&j, "logit");
            json_num(&j, logit[c]);
            json_obj_end(&j);
        }
        json_arr_end(&j);
        json_obj_end(&j);
        json_newline(&j);
        if ((rc = cli_flush_stdout())) goto done;
    }
    rc = cli_flush_stdout();
    if (!rc && any_failed) rc = APP_FAIL;
done:
    zs_list_free(&labels);
    free(cls);
    free(x);
    free(sc);
    free(top);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_classify(int argc, char **argv)
{
    classify_opts o;
    memset(&o, 0, sizeof o);
    o.top = CLASSIFY_TOP_DEFAULT;
    o.images = calloc((size_t)argc + 1, sizeof *o.images);
    if (!o.images) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = classify_parse(argc, argv, &o);
    if (rc < 0) rc = classify_run(&o);
    free(o.images);
    return rc;
}
