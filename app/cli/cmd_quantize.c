/*
 * cmd_quantize.c - `clipdex quantize`: loads a model (any format the engine
 * reads) and writes it as one GGUF file with F32, F16, Q8_0, Q5_0, Q5_1,
 * Q4_0 or Q4_1 weight matrices (clipdex_model_quantize), then reports the
 * output size.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cmd_quantize.h"

const char usage_quantize[] =
    "Usage: clipdex quantize [--model DIR] --type TYPE [--layout L] --out FILE\n"
    "\n"
    "Writes the model as one GGUF file (docs/quantized.md) that `--model FILE`\n"
    "loads with no conversion at start-up. The linear layers, projections and\n"
    "token embedding take TYPE; LayerNorms, biases and the class/position\n"
    "embeddings stay F32, the patch convolution F16 (F32 with --type f32).\n"
    "The tokenizer is not stored: keep vocab.json + merges.txt (or\n"
    "bpe_simple_vocab_16e6.txt.gz) beside FILE, or use --vocab/CLIPDEX_VOCAB.\n"
    "\n"
    "Types (bits per weight): f32 (32), f16 (16), bf16 (16), q8 = q8_0 (8.5), i8 (8:\n"
    "int8 with one scale per output row, the fastest int8 type; packed layout only),\n"
    "q5 = q5_0 (5.5), q5_1 (6), q4 = q4_0 (4.5), q4_1 (5).\n"
    "\n"
    "Options:\n"
    "  --model DIR      model directory or weight file (default: $CLIPDEX_MODEL)\n"
    "  --type TYPE      weight type (required)\n"
    "  --layout L       packed (default): f32/f16/q8/q4 matrices as 16-wide\n"
    "                   panels that the kernels read in place (q8/q4 with int8\n"
    "                   arithmetic); rows: ggml's row layout, readable by\n"
    "                   clip.cpp (and slower here)\n"
    "  --out FILE       output file, e.g. model-q8_0.gguf (required; replaced\n"
    "                   atomically)\n"
    "  -h, --help       print this text\n";

static const struct {
    const char *name;
    int type;
} type_names[] = {
    {"f32", CLIPDEX_TYPE_F32},   {"f16", CLIPDEX_TYPE_F16},   {"bf16", CLIPDEX_TYPE_BF16},   {"q8", CLIPDEX_TYPE_Q8_0},
    {"q8_0", CLIPDEX_TYPE_Q8_0}, {"q5", CLIPDEX_TYPE_Q5_0},   {"q5_0", CLIPDEX_TYPE_Q5_0},
    {"q5_1", CLIPDEX_TYPE_Q5_1}, {"q4", CLIPDEX_TYPE_Q4_0},   {"q4_0", CLIPDEX_TYPE_Q4_0},
    {"q4_1", CLIPDEX_TYPE_Q4_1}, {"i8", CLIPDEX_TYPE_I8},
};

int cmd_quantize(int argc, char **argv)
{
    const char *model_opt = NULL, *type_opt = NULL, *out = NULL, *layout_opt = "packed";
    int r, type = -1, layout;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_quantize, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a))
            return cli_usage_error(a.cmd, "unexpected argument '%s'", argv[a.i]);
        if ((r = cli_args_value(&a, "--model", &model_opt)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--type", &type_opt)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--layout", &layout_opt)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--out", &out)) != 0) {
            if (r < 0) return APP_USAGE;
        } else {
            return cli_unknown_option(&a);
        }
    }
    if (!type_opt) return cli_usage_error(a.cmd, "--type is required (f32, f16, bf16, q8, i8, q5, q5_1, q4, q4_1)");
    for (size_t i = 0; i < sizeof type_names / sizeof type_names[0]; i++)
        if (strcasecmp(type_opt, type_names[i].name) == 0) type = type_names[i].type;
    if (type < 0)
        return cli_usage_error(a.cmd, "unknown --type '%s' (f32, f16, bf16, q8, i8, q5, q5_1, q4, q4_1)", type_opt);
    if (strcasecmp(layout_opt, "packed") == 0) layout = CLIPDEX_LAYOUT_PACKED;
    else if (strcasecmp(layout_opt, "rows") == 0) layout = CLIPDEX_LAYOUT_ROWS;
    else return cli_usage_error(a.cmd, "unknown --layout '%s' (packed, rows)", layout_opt);
    if (!out || !*out) return cli_usage_error(a.cmd, "--out FILE is required");
    const char *path = cli_model_path(model_opt);
    if (!path) return cli_model_error();

    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    int rc = cli_ctx_new(1, &ctx);
    if (!rc) rc = cli_model_load(ctx, path, NULL, &model);
    if (!rc) {
        int st = clipdex_model_quantize_layout(ctx, model, type, layout, out);
        if (st != CLIPDEX_OK) {
            char *msg = cli_errdup(ctx, st);
            cli_error("%s", msg);
            cli_msg_free(msg);
            rc = APP_FAIL;
        } else {
            struct stat sb;
            clipdex_model_info info;
            clipdex_model_get_info(model, &info);
            long long sz = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
            printf("wrote %s: %s (%s layout), %lld bytes (from %s, %llu bytes)\n", out, type_opt,
                   layout == CLIPDEX_LAYOUT_PACKED ? "packed" : "rows", sz, info.weights_path,
                   (unsigned long long)info.file_size);
            rc = cli_flush_stdout();
        }
    }
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}
