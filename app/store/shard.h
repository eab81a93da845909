/*
 * shard.h - which share of the walked files one shard of `clipdex index
 * --shard I/N` takes: FNV-1a 64 of the path relative to the root it was
 * found under, modulo N. The relative path (not the absolute one) decides,
 * so machines that mount the photos elsewhere agree on the split.
 */
#ifndef CLIPDEX_APP_SHARD_H
#define CLIPDEX_APP_SHARD_H

#include <stddef.h>
#include <stdint.h>

#include "store/walk.h"

#define SHARD_MAX 1000000

typedef struct shard_spec {
    unsigned index, count; /* count 0: no sharding (every file) */
} shard_spec;

/* Parses "I/N" (0 <= I < N <= SHARD_MAX) or "auto": SLURM_ARRAY_TASK_ID with
 * SLURM_ARRAY_TASK_COUNT (or, with SLURM_ARRAY_TASK_MIN/MAX, the task's
 * offset from MIN of MAX-MIN+1), else JOB_COMPLETION_INDEX with
 * `count_hint` (or $CLIPDEX_SHARD_COUNT when it is 0). Returns 0, or
 * APP_USAGE after reporting why. */
int shard_parse(const char *spec, unsigned count_hint, shard_spec *out);
/* FNV-1a 64 of bytes. */
uint64_t shard_hash(const char *s, size_t len);
/* The shard (0..count-1) of an absolute `path` under one of r's roots: the
 * hash of its path relative to the longest root holding it (a root that is a
 * file: its base name). */
unsigned shard_of(const walk_result *r, const char *path, size_t len, unsigned count);
/* The path belongs to shard `s` (always, without sharding). */
int shard_mine(const shard_spec *s, const walk_result *r, const char *path, size_t len);
/* Drops the walked files of other shards from r (their paths freed). */
void shard_filter(const shard_spec *s, walk_result *r);

#endif
