/*
 * serve_batch.c - the dynamic batcher: a queue of embedding jobs guarded by
 * one mutex, and one inference thread that gathers jobs of the same kind
 * (up to max_batch inputs), copies their inputs into one buffer, calls
 * clipdex_tokens_embed or clipdex_pixels_embed once and scatters the rows
 * back. It waits for more work only while other requests are being
 * prepared, and never longer than wait_us, so a lone client pays no delay.
 */
#include "serve_batch.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct batch_job {
    int kind;
    const void *in;
    size_t n;
    float *out;
    int status;
    char *err;
    size_t err_len;
    int done;
    struct batch_job *next;
} batch_job;

struct batcher {
    const clipdex_model *model;
    clipdex_ctx *ctx;
    size_t max_batch, dim, ctx_len, pix_len; /* pix_len: floats per image */
    long wait_us;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;  /* queue changed or stop */
    pthread_cond_t done;  /* some job finished */
    batch_job *head, *tail;
    size_t queued;        /* inputs queued */
    size_t preparing;     /* request threads between begin and run */
    int stop;
    batcher_stats stats;
    int32_t *ids;         /* [max_batch, ctx_len] */
    float *pixels;        /* [max_batch, pix_len] */
    float *emb;           /* [max_batch, dim] */
};

static void job_error(batcher *b, batch_job *j, int st)
{
    const char *m = clipdex_ctx_errmsg(b->ctx);
    j->status = st;
    snprintf(j->err, j->err_len, "%s", m && m[0] ? m : clipdex_status_str(st));
}

/* Runs one job alone, straight from its buffers, in chunks of max_batch. */
static void run_alone(batcher *b, batch_job *j)
{
    j->status = CLIPDEX_OK;
    for (size_t i = 0; i < j->n; i += b->max_batch) {
        size_t m = j->n - i < b->max_batch ? j->n - i : b->max_batch;
        int st;
        if (j->kind == BATCH_TEXT)
            st = clipdex_tokens_embed(b->ctx, b->model, (const int32_t *)j->in + i * b->ctx_len, m,
                                      j->out + i * b->dim, m * b->dim, 0);
        else
            st = clipdex_pixels_embed(b->ctx, b->model, (const float *)j->in + i * b->pix_len, m,
                                      j->out + i * b->dim, m * b->dim, 0);
        if (st != CLIPDEX_OK) {
            job_error(b, j, st);
            return;
        }
        if (m > b->stats.max_batch) b->stats.max_batch = m;
        b->stats.calls++;
    }
}

/* Runs jobs[0..n) (same kind, max_batch inputs in all) as one batch. */
static void run_batch(batcher *b, batch_job **jobs, size_t n)
{
    if (n == 1) {
        run_alone(b, jobs[0]);
        return;
    }
    int kind = jobs[0]->kind;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        batch_job *j = jobs[i];
        if (kind == BATCH_TEXT)
            memcpy(b->ids + total * b->ctx_len, j->in, j->n * b->ctx_len * sizeof *b->ids);
        else
            memcpy(b->pixels + total * b->pix_len, j->in, j->n * b->pix_len * sizeof *b->pixels);
        total += j->n;
    }
    int st = kind == BATCH_TEXT
                 ? clipdex_tokens_embed(b->ctx, b->model, b->ids, total, b->emb, total * b->dim, 0)
                 : clipdex_pixels_embed(b->ctx, b->model, b->pixels, total, b->emb,
                                        total * b->dim, 0);
    if (st != CLIPDEX_OK) { /* find out whose input failed */
        for (size_t i = 0; i < n; i++) run_alone(b, jobs[i]);
        return;
    }
    b->stats.calls++;
    if (total > b->stats.max_batch) b->stats.max_batch = total;
    size_t row = 0;
    for (size_t i = 0; i < n; i++) {
        memcpy(jobs[i]->out, b->emb + row * b->dim, jobs[i]->n * b->dim * sizeof *b->emb);
        jobs[i]->status = CLIPDEX_OK;
        row += jobs[i]->n;
    }
}

static void deadline_after(struct timespec *ts, long us)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_nsec += (us % 1000000) * 1000;
    ts->tv_sec += us / 1000000 + ts->tv_nsec / 1000000000;
    ts->tv_nsec %= 1000000000;
}

static void *batcher_main(void *arg)
{
    batcher *b = arg;
    batch_job **take = malloc(b->max_batch * sizeof *take);
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->head && !b->stop) pthread_cond_wait(&b->work, &b->mu);
        if (!b->head && b->stop) break;
        /* others are preparing: wait (bounded) until the batch fills */
        if (b->preparing > 0 && b->queued < b->max_batch && b->wait_us > 0 && !b->stop) {
            struct timespec ts;
            deadline_after(&ts, b->wait_us);
            while (b->preparing > 0 && b->queued < b->max_batch && !b->stop)
                if (pthread_cond_timedwait(&b->work, &b->mu, &ts) == ETIMEDOUT) break;
        }
        /* take the first job and the following jobs of its kind that fit */
        size_t n = 0, items = 0;
        int kind = b->head->kind;
        batch_job **pp = &b->head, *prev = NULL;
        while (*pp && take) {
            batch_job *j = *pp;
            if (j->kind == kind && (n == 0 || (items + j->n <= b->max_batch && n < b->max_batch))) {
                take[n++] = j;
                items += j->n;
                *pp = j->next;
                if (b->tail == j) b->tail = prev;
                b->queued -= j->n;
                if (items >= b->max_batch) break;
            } else {
                prev = j;
                pp = &j->next;
            }
        }
        if (!take) { /* no memory for the list: run the head alone */
            batch_job *j = b->head;
            b->head = j->next;
            if (!b->head) b->tail = NULL;
            b->queued -= j->n;
            pthread_mutex_unlock(&b->mu);
            run_alone(b, j);
            pthread_mutex_lock(&b->mu);
            j->done = 1;
            b->stats.jobs++;
            b->stats.items += j->n;
            pthread_cond_broadcast(&b->done);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        run_batch(b, take, n);
        pthread_mutex_lock(&b->mu);
        for (size_t i = 0; i < n; i++) {
            take[i]->done = 1;
            b->stats.jobs++;
            b->stats.items += take[i]->n;
        }
        pthread_cond_broadcast(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    free(take);
    return NULL;
}

int batcher_new(const clipdex_model *model, int n_threads, size_t max_batch, long wait_us,
                batcher **out, char *err, size_t err_len)
{
    *out = NULL;
    clipdex_model_info info;
    if (clipdex_model_get_info(model, &info) != CLIPDEX_OK || info.embed_dim <= 0) {
        snprintf(err, err_len, "cannot describe the model");
        return -1;
    }
    batcher *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    b->model = model;
    b->max_batch = max_batch ? max_batch : SERVE_BATCH_MAX;
    b->wait_us = wait_us < 0 ? 0 : wait_us;
    b->dim = (size_t)info.embed_dim;
    b->ctx_len = (size_t)info.context_length;
    b->pix_len = 3 * (size_t)info.image_size * (size_t)info.image_size;
    b->ids = malloc(b->max_batch * b->ctx_len * sizeof *b->ids);
    b->pixels = malloc(b->max_batch * b->pix_len * sizeof *b->pixels);
    b->emb = malloc(b->max_batch * b->dim * sizeof *b->emb);
    clipdex_ctx_params p = clipdex_ctx_params_default();
    p.n_threads = n_threads;
    if (!b->ids || !b->pixels || !b->emb) {
        snprintf(err, err_len, "out of memory for a batch of %zu", b->max_batch);
        goto fail;
    }
    if (clipdex_ctx_new(&b->ctx, &p) != CLIPDEX_OK) {
        snprintf(err, err_len, "cannot create a context with %d threads", n_threads);
        goto fail;
    }
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->work, NULL);
    pthread_cond_init(&b->done, NULL);
    if (pthread_create(&b->thread, NULL, batcher_main, b) != 0) {
        snprintf(err, err_len, "cannot start the inference thread");
        pthread_cond_destroy(&b->done);
        pthread_cond_destroy(&b->work);
        pthread_mutex_destroy(&b->mu);
        goto fail;
    }
    *out = b;
    return 0;
fail:
    clipdex_ctx_free(b->ctx);
    free(b->ids);
    free(b->pixels);
    free(b->emb);
    free(b);
    return -1;
}

void batcher_free(batcher *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->thread, NULL);
    pthread_cond_destroy(&b->done);
    pthread_cond_destroy(&b->work);
    pthread_mutex_destroy(&b->mu);
    clipdex_ctx_free(b->ctx);
    free(b->ids);
    free(b->pixels);
    free(b->emb);
    free(b);
}

void batcher_begin(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->preparing++;
    pthread_mutex_unlock(&b->mu);
}

void batcher_cancel(batcher *b)
{
    pthread_mutex_lock(&b->mu);
    b->preparing--;
    pthread_cond_broadcast(&b->work);
    pthread_mutex_unlock(&b->mu);
}

int batcher_run(batcher *b, int kind, const void *in, size_t n, float *out, char *err,
                size_t err_len)
{
    batch_job j;
    memset(&j, 0, sizeof j);
    j.kind = kind;
    j.in = in;
    j.n = n;
    j.out = out;
    j.err = err;
    j.err_len = err_len;
    pthread_mutex_lock(&b->mu);
    b->preparing--;
    if (n == 0) {
        pthread_cond_broadcast(&b->work);
        pthread_mutex_unlock(&b->mu);
        return CLIPDEX_OK;
    }
    if (b->tail)
        b->tail->next = &j;
    else
        b->head = &j;
    b->tail = &j;
    b->queued += n;
    pthread_cond_broadcast(&b->work);
    while (!j.done) pthread_cond_wait(&b->done, &b->mu);
    pthread_mutex_unlock(&b->mu);
    return j.status;
}

void batcher_get_stats(batcher *b, batcher_stats *st)
{
    pthread_mutex_lock(&b->mu);
    *st = b->stats;
    pthread_mutex_unlock(&b->mu);
}
