/*
 * rowset.h - the rows of the vector matrix that pass a search filter
 * (store/filter.h), which the exact scan (vecindex_search_rows) and the ANN
 * search (ann_params.only) both search, so both answer the same filtered
 * top k (docs/ann.md#filters).
 */
#ifndef CLIPDEX_APP_ROWSET_H
#define CLIPDEX_APP_ROWSET_H

#include <stddef.h>
#include <stdint.h>

#include "store/filter.h"
#include "store/store.h"
#include "store/vecindex.h"

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
