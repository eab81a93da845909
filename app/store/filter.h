/*
 * filter.h - search filters (docs/search.md): a path prefix (`--under`,
 * "under") and a time range for video samples (`--time`, "time_from" and
 * "time_to"): parsing and the path test, nothing else (the HTTP fuzz
 * target compiles it in). store/rowset.h turns a filter into the rows that
 * pass it.
 */
#ifndef CLIPDEX_APP_FILTER_H
#define CLIPDEX_APP_FILTER_H

#include <stddef.h>

typedef struct search_filter {
    char *under;       /* absolute path prefix, no trailing '/' ("" is "/"); NULL: any path */
    int has_time;      /* video samples only with t_from <= t <= t_to; photos pass */
    double t_from, t_to; /* seconds; an open end is 0 or INFINITY */
} search_filter;

/* Parses a time in a video: "90", "1:30", "1:02:03" (seconds may have a
 * fraction: "1:30.5"). len bytes of s. Returns 0 or -1. */
int filter_clock_parse(const char *s, size_t len, double *t);
/* Parses "FROM-TO" (either end may be left out: "60-", "-120") into f.
 * Returns 0 or -1 (malformed, both ends missing, FROM > TO). */
int filter_time_parse(const char *s, search_filter *f);
/* Sets f->under from an absolute path (trailing slashes dropped). Returns 0,
 * or -1 when p is not absolute or memory is short. */
int filter_set_under(search_filter *f, const char *p);
int filter_active(const search_filter *f);
void filter_free(search_filter *f);

/* Whether a stored path (raw bytes) passes f->under: the prefix itself or
 * a path below it, so "/a/photos" does not take "/a/photos2/x". */
int filter_path_passes(const search_filter *f, const void *path, size_t len);

#endif
