/*
 * report.h - how the layers below app/cli/ hand a result up to the command
 * that called them: the status they return (the program's exit codes of
 * docs/cli.md, so a command can pass it on unchanged) and a message saying
 * what failed. They never print: each message goes to the sink that app/cli
 * installs at start-up (it writes "clipdex: MESSAGE" to stderr), as the
 * engine logs through a callback. Without a sink messages are dropped.
 */
#ifndef CLIPDEX_APP_REPORT_H
#define CLIPDEX_APP_REPORT_H

/* Exit codes (documented in docs/cli.md). */
enum {
    APP_OK = 0,    /* everything succeeded */
    APP_FAIL = 1,  /* some input failed, or a runtime error */
    APP_USAGE = 2, /* bad command line */
    APP_MODEL = 3  /* the model (or vocabulary) could not be loaded */
};

enum report_kind {
    REPORT_ERROR, /* what failed; the program prints "clipdex: MESSAGE" */
    REPORT_NOTE   /* a status line (the server's "listening on ..."), printed as is */
};

/* Receives every message, one whole line without the newline. Set once at
 * start-up, before any thread starts; it may then be called from any thread. */
typedef void (*report_sink)(enum report_kind kind, const char *msg);
void report_set_sink(report_sink sink);

void report_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void report_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
