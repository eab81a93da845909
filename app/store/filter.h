/*
 * filter.h - search filters (docs/search.md): a path prefix (`--under`,
 * "under") and a time range for video samples (`--time`, "time_from" and
 * "time_to"). A filter becomes the set of matrix rows that pass it, which
 * the exact scan (vecindex_search_rows) and the ANN search (ann_params.only)
 * both search, so both answer the same filtered top k.
 */
#ifndef CLIPDEX_APP_FILTER_H
#define CLIPDEX_APP_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "store/vecindex.h"

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

/* The rows of a matrix that pass a filter. */
typedef struct row_set {
    uint8_t *in;     /* [matrix rows] 1: the row passes */
    uint32_t *rows;  /* [n] the rows that pass, ascending */
    size_t n;
} row_set;

/* The rows of vi that pass f (photos by their path; video samples by their
 * video's path and their time), from the database. Returns 0 or APP_FAIL
 * (reported). */
int filter_rows(store *s, const vec_index *vi, const search_filter *f, row_set *out);
void row_set_free(row_set *r);

#endif
