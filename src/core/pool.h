/*
 * pool.h - a persistent thread pool. `cdx_pool_run` runs fn(arg, task) for
 * task = 0..n_tasks-1; the calling thread works too, and workers pull task
 * indices from an atomic counter. It returns when every task has finished.
 * Tasks must write disjoint outputs; each task computes its outputs in a
 * fixed order, so results never depend on the number of threads.
 */
#ifndef CDX_POOL_H
#define CDX_POOL_H

#include <stddef.h>

#include "core.h"

struct cdx_pool;
typedef void (*cdx_task_fn)(void *arg, size_t task);

CDX_INTERNAL struct cdx_pool *cdx_pool_new(int n_threads);
CDX_INTERNAL void cdx_pool_free(struct cdx_pool *pool);
/* pool may be NULL: runs everything on the calling thread. */
CDX_INTERNAL void cdx_pool_run(struct cdx_pool *pool, cdx_task_fn fn, void *arg, size_t n_tasks);

#endif
