/*
 * cmd_info.c - `clipdex info`: describes a model (architecture, parameter
 * counts, dtype, weight file, layout, logit scale) as text or, with --json,
 * as one JSON object.
 */
#include <string.h>

#include "cli/cli.h"
#include "util/json.h"

const char usage_info[] =
    "Usage: clipdex info [--model DIR] [--json]\n"
    "\n"
    "Describes a model: architecture (widths, layers, heads, patch, image size,\n"
    "context, vocabulary, embedding dimension, activation), parameter counts\n"
    "(total, vision, text), dtype, weight file and size, layout, logit scale.\n"
    "\n"
    "Options:\n"
    "  --model DIR      model directory (default: $CLIPDEX_MODEL)\n"
    "  --json           print one JSON object instead of text\n"
    "  -h, --help       print this text\n";

static const char *activation_name(int act)
{
    switch (act) {
    case CLIPDEX_ACT_QUICK_GELU: return "quick_gelu";
    case CLIPDEX_ACT_GELU: return "gelu";
    default: return "unknown";
    }
}

/* "151,277,313" */
static const char *group_digits(unsigned long long v, char *buf, size_t cap)
{
    char tmp[32];
    int n = snprintf(tmp, sizeof tmp, "%llu", v);
    size_t o = 0;
    for (int i = 0; i < n && o + 2 < cap; i++) {
        if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
        buf[o++] = tmp[i];
    }
    buf[o] = '\0';
    return buf;
}

static void info_print_json(const clipdex_ctx *ctx, const char *path, const clipdex_model_info *m)
{
    json_out j;
    json_init(&j, stdout);
    json_obj_begin(&j);
    json_key(&j, "model");
    json_str(&j, path);
    json_key(&j, "weights_path");
    json_str(&j, m->weights_path);
    json_key(&j, "layout");
    json_str(&j, m->layout);
    json_key(&j, "dtype");
    json_str(&j, m->dtype);
    json_key(&j, "file_size");
    json_uint(&j, m->file_size);
    json_key(&j, "params");
    json_obj_begin(&j);
    json_key(&j, "total");
    json_uint(&j, m->n_params);
    json_key(&j, "vision");
    json_uint(&j, m->n_params_vision);
    json_key(&j, "text");
    json_uint(&j, m->n_params_text);
    json_obj_end(&j);
    json_key(&j, "embed_dim");
    json_int(&j, m->embed_dim);
    json_key(&j, "vision");
    json_obj_begin(&j);
    json_key(&j, "image_size");
    json_int(&j, m->image_size);
    json_key(&j, "patch_size");
    json_int(&j, m->patch_size);
    json_key(&j, "width");
    json_int(&j, m->vision_width);
    json_key(&j, "layers");
    json_int(&j, m->vision_layers);
    json_key(&j, "heads");
    json_int(&j, m->vision_heads);
    json_key(&j, "mlp");
    json_int(&j, m->vision_mlp);
    json_key(&j, "activation");
    json_str(&j, activation_name(m->vision_activation));
    json_obj_end(&j);
    json_key(&j, "text");
    json_obj_begin(&j);
    json_key(&j, "context_length");
    json_int(&j, m->context_length);
    json_key(&j, "vocab_size");
    json_int(&j, m->vocab_size);
    json_key(&j, "width");
    json_int(&j, m->text_width);
    json_key(&j, "layers");
    json_int(&j, m->text_layers);
    json_key(&j, "heads");
    json_int(&j, m->text_heads);
    json_key(&j, "mlp");
    json_int(&j, m->text_mlp);
    json_key(&j, "activation");
    json_str(&j, activation_name(m->text_activation));
    json_obj_end(&j);
    json_key(&j, "layer_norm_eps");
    json_num(&j, m->layer_norm_eps);
    json_key(&j, "logit_scale");
    json_num(&j, m->logit_scale);
    json_key(&j, "mean");
    json_floats(&j, m->mean, 3);
    json_key(&j, "std");
    json_floats(&j, m->std, 3);
    json_key(&j, "has_tokenizer");
    json_bool(&j, m->has_tokenizer);
    json_key(&j, "isa");
    json_str(&j, clipdex_ctx_isa(ctx));
    json_key(&j, "kernels");
    json_str(&j, clipdex_ctx_kernels(ctx));
    json_key(&j, "cpu_features");
    json_str(&j, clipdex_cpu_features());
    json_obj_end(&j);
    json_newline(&j);
}

static void info_print_text(const clipdex_ctx *ctx, const char *path, const clipdex_model_info *m)
{
    char a[32], b[32], c[32];
    printf("model          %s\n", path);
    printf("weights        %s\n", m->weights_path ? m->weights_path : "?");
    printf("layout         %s\n", m->layout ? m->layout : "?");
    printf("dtype          %s\n", m->dtype ? m->dtype : "?");
    printf("file size      %s bytes (%.1f MiB)\n", group_digits(m->file_size, a, sizeof a),
           (double)m->file_size / (1024.0 * 1024.0));
    printf("parameters     %s total (%.1f M): %s vision, %s text\n",
           group_digits(m->n_params, a, sizeof a), (double)m->n_params / 1e6,
           group_digits(m->n_params_vision, b, sizeof b), group_digits(m->n_params_text, c, sizeof c));
    printf("embed dim      %d\n", m->embed_dim);
    printf("vision         image %d, patch %d, width %d, %d layers, %d heads, mlp %d, %s\n",
           m->image_size, m->patch_size, m->vision_width, m->vision_layers, m->vision_heads,
           m->vision_mlp, activation_name(m->vision_activation));
    printf("text           context %d, vocab %d, width %d, %d layers, %d heads, mlp %d, %s\n",
           m->context_length, m->vocab_size, m->text_width, m->text_layers, m->text_heads,
           m->text_mlp, activation_name(m->text_activation));
    printf("logit scale    %.9g\n", m->logit_scale);
    printf("layer norm eps %.9g\n", m->layer_norm_eps);
    printf("mean           %.9g %.9g %.9g\n", m->mean[0], m->mean[1], m->mean[2]);
    printf("std            %.9g %.9g %.9g\n", m->std[0], m->std[1], m->std[2]);
    printf("tokenizer      %s\n", m->has_tokenizer ? "yes" : "no");
    printf("kernels        %s (%s)\n", clipdex_ctx_isa(ctx), clipdex_ctx_kernels(ctx));
    printf("cpu features   %s\n", clipdex_cpu_features()[0] ? clipdex_cpu_features() : "none used");
}

int cmd_info(int argc, char **argv)
{
    const char *model_opt = NULL;
    int as_json = 0, r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_info, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a))
            return cli_usage_error(a.cmd, "unexpected argument '%s'", argv[a.i]);
        if ((r = cli_args_value(&a, "--model", &model_opt)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--json")) != 0) {
            if (r < 0) return APP_USAGE;
            as_json = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    const char *path = cli_model_path(model_opt);
    if (!path) return cli_model_error();

    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_model_info info;
    int rc = cli_ctx_new(1, &ctx);
    if (!rc) rc = cli_model_load(ctx, path, NULL, &model);
    if (!rc) {
        memset(&info, 0, sizeof info);
        int st = clipdex_model_get_info(model, &info);
        if (st != CLIPDEX_OK) {
            cli_error("cannot describe the model '%s': %s", path, clipdex_status_str(st));
            rc = APP_MODEL;
        } else {
            if (as_json)
                info_print_json(ctx, path, &info);
            else
                info_print_text(ctx, path, &info);
            rc = cli_flush_stdout();
        }
    }
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}
