/*
 * fetch.c - downloads a model by name for `clipdex model get` and for the
 * --download option of index/search/serve (app/hub/ does the work), printing
 * a progress bar when stderr is a terminal (one line per file otherwise),
 * app/hub/'s notes and its error. Calls nothing else in cli/, so the commands
 * and cli.c can both use it.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "hub/hub.h"

/* What the progress printer remembers between calls. */
typedef struct progress {
    int tty;
    char file[64];
    int line_open;      /* a bar is on the terminal without its newline */
    uint64_t shown;     /* bytes the bar shows */
    struct timespec last;
} progress;

static double mib(uint64_t n)
{
    return (double)n / (1024.0 * 1024.0);
}

static void line_end(progress *p)
{
    if (p->line_open) fputc('\n', stderr);
    p->line_open = 0;
}

static void bar_draw(progress *p, const char *file, uint64_t done, uint64_t total)
{
    char bar[31];
    int pct = total ? (int)(done * 100 / total) : 100;
    int fill = pct * 30 / 100;
    memset(bar, '=', (size_t)fill);
    memset(bar + fill, ' ', (size_t)(30 - fill));
    bar[30] = '\0';
    fprintf(stderr, "\r%-28.28s %3d%% [%s] %8.1f / %.1f MiB", file, pct, bar, mib(done), mib(total));
    p->line_open = 1;
}

static void on_bytes(void *arg, const char *file, uint64_t done, uint64_t total)
{
    progress *p = arg;
    int fresh = strcmp(p->file, file) != 0;
    if (fresh) {
        line_end(p);
        snprintf(p->file, sizeof p->file, "%s", file);
        if (!p->tty) fprintf(stderr, "clipdex: downloading '%s' (%.1f MiB)\n", file, mib(total));
    }
    if (!p->tty) return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double dt = (double)(now.tv_sec - p->last.tv_sec) + (double)(now.tv_nsec - p->last.tv_nsec) * 1e-9;
    if (!fresh && (done == p->shown || (dt < 0.1 && done < total))) return;
    p->last = now;
    p->shown = done;
    bar_draw(p, file, done, total);
}

static void on_note(void *arg, const char *msg)
{
    progress *p = arg;
    line_end(p);
    fprintf(stderr, "clipdex: %s\n", msg);
}

int cli_fetch_model(const char *name, int type)
{
    progress p = {.tty = isatty(2)};
    hub_report r = {&p, on_bytes, on_note};
    hub_err e;
    int rc = hub_get(name, type, &r, &e);
    line_end(&p);
    if (rc) {
        fprintf(stderr, "clipdex: %s\n", e.msg);
        return APP_FAIL;
    }
    return APP_OK;
}

