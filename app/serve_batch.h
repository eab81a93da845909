/*
 * serve_batch.h - the dynamic batcher of `clipdex serve`: request threads
 * prepare their inputs (token ids, preprocessed pixels) and queue them; one
 * inference thread with its own context takes everything queued of one kind,
 * waits a bounded time for requests still being prepared, and runs the
 * encoder once on the whole batch. Results do not depend on the batch size.
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

enum { BATCH_TEXT, BATCH_IMAGE };

typedef struct batcher batcher;

typedef struct batcher_stats {
    uint64_t calls;     /* encoder calls */
    uint64_t items;     /* inputs embedded */
    uint64_t jobs;      /* requests served */
    uint64_t max_batch; /* largest batch run */
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
 * [n, 3, S, S]; writes [n, embed_dim] to out. Blocks until done. Returns a
 * clipdex status; on failure err holds a message. */
int batcher_run(batcher *b, int kind, const void *in, size_t n, float *out, char *err,
                size_t err_len);
void batcher_get_stats(batcher *b, batcher_stats *st);

#endif
