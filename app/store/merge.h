/*
 * merge.h - `clipdex merge`: copies the files, vectors and video samples of
 * shard databases (`clipdex index --shard`) into one index database.
 */
#ifndef CLIPDEX_APP_MERGE_H
#define CLIPDEX_APP_MERGE_H

#include <stddef.h>

#include "store/store.h"

/* Merges the database at `src_path` into `out` in one transaction: files
 * new to `out` or changed (size, mtime or hash) are written with their
 * vector and their samples, the others left as they are, so merging again
 * changes nothing. Refuses (APP_FAIL, reported) a shard of another model;
 * an empty `out` takes the shard's model. *changed counts the files
 * written. Returns 0 or APP_FAIL. */
int store_merge(store *out, const char *src_path, size_t *changed);

#endif
