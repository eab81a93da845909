/*
 * serve_batch.h - the dynamic batcher of `clipdex serve`: request threads
 * prepare their inputs (token ids, preprocessed pixels) and queue them; one
 * inference thread with its own context takes everything queued of one kind,
 * waits a bounded time for requests still being prepared, and runs the
 * encoder once on the whole batch. Results do not depend on the batch size.
 * A request may give up at its deadline: its job is dropped from the queue,
 * or, when already running, left to the inference thread, which owns the
 * job's buffers and frees them when the batch ends.
 */
#ifndef CLIPDEX_APP_SERVE_BATCH_H
#define CLIPDEX_APP_SERVE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"

/* Items per encoder call and the longest wait for more (microseconds). */
#ifndef SERVE_BATCH_MAX
#define SERVE_BATCH_MAX 32
#endif
#ifndef SERVE_BATCH_WAIT_US
#define SERVE_BATCH_WAIT_US 2000
#endif

/* The test hook CLIPDEX_TEST_BATCH_DELAY_MS (environment, read once at
 * start) makes the inference thread sleep that long, at most this, before
 * every encoder call, so tests can make requests miss their deadline. */
#ifndef SERVE_BATCH_MAX_TEST_DELAY_MS
#define SERVE_BATCH_MAX_TEST_DELAY_MS 60000
#endif

enum { BATCH_TEXT, BATCH_IMAGE };

/* batcher_run's answer when the deadline passed first (not a clipdex
 * status: those are 0 or negative). */
#define BATCH_TIMEOUT 1

typedef struct batcher batcher;

typedef struct batcher_stats {
    uint64_t calls;     /* encoder calls */
    uint64_t items;     /* inputs embedded */
    uint64_t jobs;      /* requests served */
    uint64_t max_batch; /* largest batch run */
    uint64_t timeouts;  /* requests that gave up at their deadline */
} batcher_stats;

/* Starts the inference thread with a context of n_threads (0: all CPUs).
 * Returns 0, or -1 with a message in err. */
int batcher_new(const clipdex_model *model, int n_threads, size_t max_batch, long wait_us,
                batcher **out, char *err, size_t err_len);
/* Stops the thread after the queued jobs; NULL is harmless. */
void batcher_free(batcher *b);

/* A request thread announces that it is preparing a job (so the inference
 * thread may wait for it); every batcher_begin is followed by exactly one
 * batcher_run or batcher_cancel. */
void batcher_begin(batcher *b);
void batcher_cancel(batcher *b);
/* Embeds n inputs of `kind`: token ids [n, context_length] or pixels
 * [n, 3, S, S]; writes [n, embed_dim] to out. Takes ownership of `in`
 * (malloc'd; freed by the batcher in every case, possibly after return).
 * Blocks until done or until `deadline` (CLOCK_MONOTONIC seconds, as
 * serve_now(); 0: none). Returns a clipdex status (on failure err holds a
 * message), or BATCH_TIMEOUT when the deadline came first: the job is then
 * dropped, or its result discarded, and `out` is never written later. */
int batcher_run(batcher *b, int kind, void *in, size_t n, float *out, double deadline, char *err,
                size_t err_len);
void batcher_get_stats(batcher *b, batcher_stats *st);

#endif
