/*
 * cmd_tokenize.c - `clipdex tokenize`: prints the CLIP token ids of each
 * string, one JSON line per string. The vocabulary comes from --vocab, else
 * the tokenizer of --model, else $CLIPDEX_VOCAB, else the tokenizer of
 * $CLIPDEX_MODEL.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "util/json.h"

#define TOKENIZE_CONTEXT_DEFAULT 77
#define TOKENIZE_CONTEXT_MAX 65536

const char usage_tokenize[] =
    "Usage: clipdex tokenize [--vocab FILE|DIR] [--model DIR] [--context N] STRING...\n"
    "\n"
    "Tokenizes each string like OpenAI's clip.tokenize and prints one JSON line\n"
    "per string:\n"
    "  {\"input\":STRING,\"ids\":[...],\"n_tokens\":N,\"truncated\":false}\n"
    "ids run from the start token through the end token (n_tokens ids); a string\n"
    "too long for the context is cut and has \"truncated\":true.\n"
    "\n"
    "Options:\n"
    "  --vocab PATH     bpe_simple_vocab_16e6.txt[.gz], vocab.json, merges.txt, or\n"
    "                   a directory holding them\n"
    "  --model DIR      use the model's tokenizer (when --vocab is not given)\n"
    "  --context N      context length, 2..65536 (default: the model's, else 77)\n"
    "  -h, --help       print this text\n"
    "Without --vocab or --model the vocabulary is $CLIPDEX_VOCAB, then the\n"
    "tokenizer of the model in $CLIPDEX_MODEL. Use -- before strings that\n"
    "start with '-'.\n";

typedef struct tokenize_opts {
    const char *vocab, *model;
    long context; /* 0: the default */
    char **strings;
    size_t n_strings;
} tokenize_opts;

static int tokenize_parse(int argc, char **argv, tokenize_opts *o)
{
    const char *val = NULL;
    int r;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_tokenize, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a)) {
            o->strings[o->n_strings++] = argv[a.i];
        } else if ((r = cli_args_value(&a, "--vocab", &o->vocab)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--model", &o->model)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--context", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--context", val, 2, TOKENIZE_CONTEXT_MAX, &o->context))
                return APP_USAGE;
        } else {
            return cli_unknown_option(&a);
        }
    }
    if (!o->vocab && !o->model) {
        const char *env = getenv("CLIPDEX_VOCAB");
        if (env && env[0])
            o->vocab = env;
        else
            o->model = cli_model_path(NULL);
    }
    if (!o->vocab && !o->model)
        return cli_usage_error(a.cmd, "no vocabulary: give --vocab PATH or --model DIR, or set "
                                      "CLIPDEX_VOCAB or CLIPDEX_MODEL");
    if (o->n_strings == 0) return cli_usage_error(a.cmd, "no strings to tokenize");
    return -1;
}

static int tokenize_run(const tokenize_opts *o)
{
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    clipdex_tokenizer *own_tok = NULL;
    const clipdex_tokenizer *tok = NULL;
    int32_t *ids = NULL;
    size_t ctx_len = o->context > 0 ? (size_t)o->context : TOKENIZE_CONTEXT_DEFAULT;
    int rc = cli_ctx_new(1, &ctx);
    if (rc) goto done;
    if (o->vocab) {
        int st = clipdex_tokenizer_load(ctx, o->vocab, &own_tok);
        if (st != CLIPDEX_OK) {
            char *msg = cli_errdup(ctx, st);
            cli_error("%s", msg);
            cli_msg_free(msg);
            rc = APP_MODEL;
            goto done;
        }
        tok = own_tok;
    } else {
        rc = cli_model_load(ctx, o->model, NULL, &model);
        if (rc) goto done;
        tok = clipdex_model_tokenizer(model);
        if (!tok) {
            cli_error("the model '%s' has no tokenizer (give --vocab or set CLIPDEX_VOCAB)", o->model);
            rc = APP_MODEL;
            goto done;
        }
        clipdex_model_info info;
        if (o->context == 0 && clipdex_model_get_info(model, &info) == CLIPDEX_OK &&
            info.context_length >= 2)
            ctx_len = (size_t)info.context_length;
    }
    ids = calloc(ctx_len, sizeof *ids);
    if (!ids) {
        cli_error("out of memory");
        rc = APP_FAIL;
        goto done;
    }
    json_out j;
    json_init(&j, stdout);
    int failed = 0;
    for (size_t i = 0; i < o->n_strings; i++) {
        const char *s = o->strings[i];
        size_t n_tokens = 0;
        int truncated = 0;
        int st = clipdex_text_tokenize(ctx, tok, s, strlen(s), ids, ctx_len, &n_tokens, &truncated);
        json_obj_begin(&j);
        json_key(&j, "input");
        json_str(&j, s);
        if (st != CLIPDEX_OK) {
            char *msg = cli_errdup(ctx, st);
            json_key(&j, "error");
            json_str(&j, msg);
            cli_msg_free(msg);
            failed = 1;
        } else {
            json_key(&j, "ids");
            json_ints(&j, ids, n_tokens);
            json_key(&j, "n_tokens");
            json_uint(&j, n_tokens);
            json_key(&j, "truncated");
            json_bool(&j, truncated);
        }
        json_obj_end(&j);
        json_newline(&j);
    }
    rc = cli_flush_stdout();
    if (!rc && failed) rc = APP_FAIL;
done:
    free(ids);
    clipdex_tokenizer_free(own_tok);
    clipdex_model_free(model);
    clipdex_ctx_free(ctx);
    return rc;
}

int cmd_tokenize(int argc, char **argv)
{
    tokenize_opts o;
    memset(&o, 0, sizeof o);
    o.strings = calloc((size_t)argc + 1, sizeof *o.strings);
    if (!o.strings) {
        cli_error("out of memory");
        return APP_FAIL;
    }
    int rc = tokenize_parse(argc, argv, &o);
    if (rc < 0) rc = tokenize_run(&o);
    free(o.strings);
    return rc;
}
