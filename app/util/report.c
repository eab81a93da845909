/*
 * report.c - formats a message and hands it to the installed sink (nothing
 * happens without one). Short messages are formatted on the stack; a longer
 * one is allocated, or truncated when memory ran out.
 */
#include "util/report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static report_sink report_to;

void report_set_sink(report_sink sink) { report_to = sink; }

static void report_v(enum report_kind kind, const char *fmt, va_list ap)
{
    if (!report_to) return;
    char buf[1024], *msg = buf;
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0) {
        buf[0] = '\0';
    } else if ((size_t)n >= sizeof buf) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, again);
            msg = big;
        }
    }
    va_end(again);
    report_to(kind, msg);
    if (msg != buf) free(msg);
}

void report_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(REPORT_ERROR, fmt, ap);
    va_end(ap);
}

void report_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report_v(REPORT_NOTE, fmt, ap);
    va_end(ap);
}
