/*
 * filter.c - search filters (see filter.h): parsing a time range and a
 * path prefix, and testing a stored path against the prefix.
 */
#include "store/filter.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CLOCK_MAX 32 /* bytes of one time: "1:02:03.5" */

/* One field of a time: digits, with a fraction only when it is the last. */
static int clock_field(const char *s, size_t len, int last, double *v)
{
    char buf[CLOCK_MAX + 1];
    if (len == 0 || len > CLOCK_MAX || s[0] < '0' || s[0] > '9') return -1;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (strspn(buf, last ? "0123456789." : "0123456789") != len) return -1;
    char *end = NULL;
    *v = strtod(buf, &end);
    return *end || !isfinite(*v) ? -1 : 0;
}

int filter_clock_parse(const char *s, size_t len, double *t)
{
    double v = 0, f;
    int fields = 0;
    for (size_t i = 0; i <= len && fields < 3; fields++) {
        const char *c = memchr(s + i, ':', len - i);
        size_t n = c ? (size_t)(c - (s + i)) : len - i;
        if (clock_field(s + i, n, !c, &f) || (fields > 0 && f >= 60)) return -1;
        v = v * 60 + f;
        i += n + 1;
        if (!c) {
            *t = v;
            return 0;
        }
    }
    return -1; /* more than H:M:S */
}

int filter_time_parse(const char *s, search_filter *f)
{
    const char *dash = strchr(s, '-');
    if (!dash || strchr(dash + 1, '-') || (dash == s && !dash[1])) return -1;
    double from = 0, to = INFINITY;
    if (dash > s && filter_clock_parse(s, (size_t)(dash - s), &from)) return -1;
    if (dash[1] && filter_clock_parse(dash + 1, strlen(dash + 1), &to)) return -1;
    if (from > to) return -1;
    f->has_time = 1;
    f->t_from = from;
    f->t_to = to;
    return 0;
}

int filter_set_under(search_filter *f, const char *p)
{
    if (p[0] != '/') return -1;
    size_t n = strlen(p);
    while (n > 0 && p[n - 1] == '/') n--;
    char *u = malloc(n + 1);
    if (!u) return -1;
    memcpy(u, p, n);
    u[n] = '\0';
    free(f->under);
    f->under = u;
    return 0;
}

int filter_active(const search_filter *f) { return f->under || f->has_time; }

void filter_free(search_filter *f)
{
    free(f->under);
    f->under = NULL;
}

int filter_path_passes(const search_filter *f, const void *path, size_t len)
{
    if (!f->under) return 1;
    size_t n = strlen(f->under);
    const char *p = path;
    return len >= n && memcmp(p, f->under, n) == 0 && (len == n || p[n] == '/');
}
