/*
 * cli.c - helpers shared by the clipdex commands: argument walking, usage
 * errors, integer options, and context/model set-up that reports failures
 * with the exit codes of docs/cli.md.
 */
#include "cli/cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hub/hub.h"

void cli_args_init(cli_args *a, int argc, char **argv)
{
    a->cmd = argc > 0 ? argv[0] : "";
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->opts_done = 0;
}

int cli_args_next(cli_args *a)
{
    for (;;) {
        a->i++;
        if (a->i >= a->argc) return 0;
        if (!a->opts_done && strcmp(a->argv[a->i], "--") == 0) {
            a->opts_done = 1;
            continue;
        }
        return 1;
    }
}

int cli_args_positional(const cli_args *a)
{
    const char *s = a->argv[a->i];
    return a->opts_done || s[0] != '-' || s[1] == '\0';
}

int cli_args_is_help(const cli_args *a)
{
    const char *s = a->argv[a->i];
    return !cli_args_positional(a) && (strcmp(s, "-h") == 0 || strcmp(s, "--help") == 0);
}

int cli_args_value(cli_args *a, const char *name, const char **val)
{
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (cli_args_positional(a) || strncmp(s, name, n) != 0) return 0;
    if (s[n] == '=') {
        *val = s + n + 1;
        return 1;
    }
    if (s[n] != '\0') return 0;
    if (a->i + 1 >= a->argc) {
        cli_usage_error(a->cmd, "option '%s' needs an argument", name);
        return -1;
    }
    a->i++;
    *val = a->argv[a->i];
    return 1;
}

int cli_args_flag(cli_args *a, const char *name)
{
    const char *s = a->argv[a->i];
    size_t n = strlen(name);
    if (cli_args_positional(a) || strncmp(s, name, n) != 0) return 0;
    if (s[n] == '\0') return 1;
    if (s[n] == '=') {
        cli_usage_error(a->cmd, "option '%s' takes no argument", name);
        return -1;
    }
    return 0;
}

int cli_args_shared(cli_args *a, const char **model, const char **vocab, long *threads, int *no_exif)
{
    const char *val = NULL;
    int r = 0;
    if ((model && (r = cli_args_value(a, "--model", model)) != 0) ||
        (vocab && (r = cli_args_value(a, "--vocab", vocab)) != 0))
        return r < 0 ? -1 : 1;
    if (threads && (r = cli_args_value(a, "--threads", &val)) != 0)
        return r < 0 || cli_parse_int(a->cmd, "--threads", val, 0, 1024, threads) ? -1 : 1;
    if (no_exif && (r = cli_args_flag(a, "--no-exif")) != 0) {
        if (r < 0) return -1;
        *no_exif = 1;
        return 1;
    }
    return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "clipdex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'clipdex %s --help'.\n", cmd);
    return APP_USAGE;
}

int cli_unknown_option(const cli_args *a)
{
    return cli_usage_error(a->cmd, "unknown option '%s'", a->argv[a->i]);
}

void cli_error(const char *fmt, ...)
{
    va_list ap;
    fputs("clipdex: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_report(enum report_kind kind, const char *msg)
{
    if (kind == REPORT_ERROR) fputs("clipdex: ", stderr);
    fputs(msg, stderr);
    fputc('\n', stderr);
    fflush(stderr);
}

int cli_parse_int(const char *cmd, const char *name, const char *s, long min, long max, long *out)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno == ERANGE || v < min || v > max)
        return cli_usage_error(cmd, "invalid value '%s' for %s (expected an integer from %ld to %ld)",
                               s, name, min, max);
    *out = v;
    return 0;
}

int cli_parse_double(const char *cmd, const char *name, const char *s, double min, double max,
                     double *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (s[0] == '\0' || *end != '\0' || !(v >= min && v <= max))
        return cli_usage_error(cmd, "invalid value '%s' for %s (expected a number from %g to %g)",
                               s, name, min, max);
    *out = v;
    return 0;
}

static int model_rc = APP_MODEL;

int cli_model_error(void)
{
    return model_rc;
}

/* Prints why `name` cannot be used and sets model_rc. */
static void model_missing(const char *name, int dflt, int download)
{
    const char *also = download == CLI_DOWNLOAD_OFFER ? ", or run this command again with --download" : "";
    model_rc = dflt ? APP_USAGE : APP_MODEL;
    if (dflt)
        cli_error("no model given, and the default model %s (openai/clip-vit-base-patch32) is not downloaded.\n"
                  "  Fetch it with:  clipdex model get %s%s\n  (or give --model DIR|NAME, or set CLIPDEX_MODEL)",
                  name, name, also);
    else
        cli_error("model '%s' is neither a file or directory nor a downloaded model.\n"
                  "  Fetch it with:  clipdex model get %s%s", name, name, also);
}

const char *cli_model_fetch(const char *opt, int download)
{
    static char path[HUB_PATH_MAX];
    char repo[HUB_REPO_MAX];
    const char *env = getenv("CLIPDEX_MODEL");
    const char *name = opt ? opt : env && env[0] ? env : NULL;
    int dflt = !name;
    if (dflt) name = HUB_DEFAULT_NAME;
    else if (access(name, F_OK) == 0 || hub_repo_of(name, repo, sizeof repo) != 0) return name;
    hub_err e;
    int r = hub_cache_find(name, path, sizeof path, &e);
    if (r == 0 && download == CLI_DOWNLOAD_YES) {
        if (cli_fetch_model(name, -1) != APP_OK) return model_rc = APP_MODEL, NULL;
        r = hub_cache_find(name, path, sizeof path, &e);
    }
    if (r > 0) return path;
    if (r < 0) cli_error("%s", e.msg), model_rc = APP_MODEL;
    else model_missing(name, dflt, download);
    return NULL;
}

const char *cli_model_path(const char *opt)
{
    return cli_model_fetch(opt, CLI_DOWNLOAD_NO);
}

int cli_ctx_new(int n_threads, clipdex_ctx **out)
{
    clipdex_ctx_params p = clipdex_ctx_params_default();
    p.n_threads = n_threads;
    int st = clipdex_ctx_new(out, &p);
    const char *isa = getenv("CLIPDEX_ISA");
    if (st == CLIPDEX_E_ARG && isa && isa[0]) {
        cli_error("CLIPDEX_ISA='%s' names no kernel path (use scalar, avx2, avx-vnni, avx512 or best)", isa);
        return APP_FAIL;
    }
    if (st != CLIPDEX_OK) {
        cli_error("cannot create a context with %d threads: %s", n_threads, clipdex_status_str(st));
        return APP_FAIL;
    }
    return 0;
}

int cli_model_load(clipdex_ctx *ctx, const char *path, const char *vocab, clipdex_model **out)
{
    clipdex_model_params p = clipdex_model_params_default();
    p.vocab_path = vocab;
    int st = clipdex_model_load(ctx, path, &p, out);
    if (st != CLIPDEX_OK) {
        const char *msg = clipdex_ctx_errmsg(ctx);
        if (msg && msg[0])
            cli_error("%s", msg);
        else
            cli_error("cannot load model '%s': %s", path, clipdex_status_str(st));
        return APP_MODEL;
    }
    return 0;
}

static char cli_nomem_msg[] = "out of memory";

char *cli_errdup(const clipdex_ctx *ctx, int status)
{
    const char *msg = clipdex_ctx_errmsg(ctx);
    if (!msg || !msg[0]) msg = clipdex_status_str(status);
    return cli_strdup(msg);
}

char *cli_strdup(const char *msg)
{
    char *s = strdup(msg);
    return s ? s : cli_nomem_msg;
}

void cli_msg_free(char *msg)
{
    if (msg != cli_nomem_msg) free(msg);
}

int cli_flush_stdout(void)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_error("cannot write to standard output: %s", strerror(errno));
        return APP_FAIL;
    }
    return 0;
}

void cli_signals_catch(void (*handler)(int), struct sigaction old[2])
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old[0]);
    sigaction(SIGTERM, &sa, &old[1]);
}

void cli_signals_restore(const struct sigaction old[2])
{
    sigaction(SIGINT, &old[0], NULL);
    sigaction(SIGTERM, &old[1], NULL);
}
