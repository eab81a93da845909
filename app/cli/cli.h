/*
 * cli.h - what the clipdex program's commands share: the command entry
 * points and usage texts, option parsing and model/context set-up with the
 * error reporting every command uses (the exit codes are util/report.h's).
 */
#ifndef CLIPDEX_APP_CLI_H
#define CLIPDEX_APP_CLI_H

#include <signal.h>
#include <stdio.h>

#include "clipdex.h"
#include "util/report.h" /* the exit codes APP_OK, APP_FAIL, APP_USAGE, APP_MODEL */

/* Commands: argv[0] is the command name; each returns an exit code. */
int cmd_embed(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_info(int argc, char **argv);

/* Usage texts, printed by `--help` and `clipdex help COMMAND`. */
extern const char usage_embed[];
extern const char usage_compare[];
extern const char usage_tokenize[];
extern const char usage_info[];

/* Walks one command's arguments. Options are "--name VALUE" or
 * "--name=VALUE"; "--" ends the options; "-" and anything not starting with
 * '-' is a positional argument. */
typedef struct cli_args {
    const char *cmd;  /* command name, for messages */
    int argc;
    char **argv;
    int i;            /* index of the current argument */
    int opts_done;    /* "--" seen */
} cli_args;

void cli_args_init(cli_args *a, int argc, char **argv);
/* Advances to the next argument; returns 0 at the end. */
int cli_args_next(cli_args *a);
/* The current argument is positional. */
int cli_args_positional(const cli_args *a);
/* The current argument is the help flag (-h, --help). */
int cli_args_is_help(const cli_args *a);
/* Matches the current argument against an option taking a value. Returns 1
 * and sets *val (advancing past a separate value) on a match, 0 if it is
 * another option, -1 (message printed) if the value is missing. */
int cli_args_value(cli_args *a, const char *name, const char **val);
/* Matches a flag without value. Returns 1 on a match, 0 if it is another
 * option, -1 (message printed) for "--flag=value". */
int cli_args_flag(cli_args *a, const char *name);

/* The options the encoder commands share: --model PATH|NAME, --vocab PATH,
 * --threads N (0..1024) and the flag --no-exif. A NULL pointer means the
 * command does not take that option. Returns 1 when the current argument was
 * one of them (stored), 0 if it is another, -1 (message printed) for a
 * missing or bad value, like cli_args_value. */
int cli_args_shared(cli_args *a, const char **model, const char **vocab, long *threads, int *no_exif);
/* Prints "clipdex CMD: <message>" and a hint to stderr; returns APP_USAGE. */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Reports the current argument as an unknown option; returns APP_USAGE. */
int cli_unknown_option(const cli_args *a);
/* Prints "clipdex: <message>" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The sink main() installs for the layers below (util/report.h): an error as
 * cli_error prints it, a note as is. */
void cli_report(enum report_kind kind, const char *msg);

/* Parses a decimal integer in [min, max] for option `name`; returns 0 or
 * APP_USAGE (message printed). */
int cli_parse_int(const char *cmd, const char *name, const char *s, long min, long max, long *out);
/* The same for a number from min to max (NaN refused). */
int cli_parse_double(const char *cmd, const char *name, const char *s, double min, double max,
                     double *out);

/* The model to load: `opt` if given, else $CLIPDEX_MODEL, else the default
 * ViT-B-32. An existing path (or one that looks like a path) is returned
 * as it is; a model name (ORG/NAME or an alias) is looked up in the
 * download cache (app/hub/). NULL, with a message printed that names the
 * command that fetches it, if a name is not downloaded: then
 * cli_model_error() is the exit code. */
const char *cli_model_path(const char *opt);
/* cli_model_path for commands with --download: CLI_DOWNLOAD_OFFER says so
 * in the message, CLI_DOWNLOAD_YES fetches a missing model first. */
enum { CLI_DOWNLOAD_NO = 0, CLI_DOWNLOAD_OFFER = 1, CLI_DOWNLOAD_YES = 2 };
const char *cli_model_fetch(const char *opt, int download);
int cli_model_error(void);
/* `clipdex model`; cli_fetch_model (cli/fetch.c) fetches with a progress report and
 * returns 0 or APP_FAIL (message printed). */
int cmd_model(int argc, char **argv);
extern const char usage_model[];
int cli_fetch_model(const char *name, int type);

/* Creates a context with n_threads (0: all CPUs); returns 0 or APP_FAIL. */
int cli_ctx_new(int n_threads, clipdex_ctx **out);
/* Loads a model; returns 0, or APP_MODEL after printing "clipdex: <errmsg>". */
int cli_model_load(clipdex_ctx *ctx, const char *path, const char *vocab, clipdex_model **out);

/* A malloc'd copy of the context's last error message (or of the status
 * string when the message is empty); never NULL. Free with cli_msg_free. */
char *cli_errdup(const clipdex_ctx *ctx, int status);
void cli_msg_free(char *msg);
/* A malloc'd copy of `msg` for the same lifecycle (never NULL). */
char *cli_strdup(const char *msg);

/* Flushes stdout; returns APP_FAIL (message printed) on a write error. */
int cli_flush_stdout(void);

/* SIGINT and SIGTERM call `handler` until cli_signals_restore(old) puts
 * the previous dispositions back (old: two entries). */
void cli_signals_catch(void (*handler)(int), struct sigaction old[2]);
void cli_signals_restore(const struct sigaction old[2]);

#endif
