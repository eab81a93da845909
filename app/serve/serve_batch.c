/*
 * serve_batch.c - the dynamic batcher: a queue of embedding jobs guarded by
 * one mutex, and one inference thread that gathers jobs of the same kind
 * (up to max_batch inputs), copies their inputs into one buffer, calls
 * clipdex_tokens_embed or clipdex_pixels_embed once and scatters the rows
 * back. It waits for more work only while other requests are being
 * prepared, and never longer than wait_us, so a lone client pays no delay.
 * Jobs live on the heap and own their input and output buffers, so a
 * request that gives up at its deadline can leave a running job behind:
 * the inference thread frees it when the batch ends.
 */
#include "serve/serve_batch.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

typedef struct batch_job {
    int kind;
    void *in;             /* owned: token ids or pixels of n inputs */
    size_t n;
    float *out;           /* owned: [n, dim] */
    int status;
    char err[256];
    int state;            /* JOB_*; changed under the mutex */
    int abandoned;        /* the request gave up while the job ran: the
                             inference thread frees it */
    struct batch_job *next;
} batch_job;

struct batcher {
    const clipdex_model *model;
    clipdex_ctx *ctx;
    size_t max_batch, dim, ctx_len, pix_len; /* pix_len: floats per image */
    long wait_us;
    long test_delay_ms;   /* CLIPDEX_TEST_BATCH_DELAY_MS */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work;  /* queue changed or stop (CLOCK_MONOTONIC) */
    pthread_cond_t done;  /* some job finished (CLOCK_MONOTONIC) */
    batch_job *head, *tail;
    size_t queued;        /* inputs queued */
    size_t preparing;     /* request threads between begin and run */
    int stop;
    batcher_stats stats;
    int32_t *ids;         /* [max_batch, ctx_len] */
    float *pixels;        /* [max_batch, pix_len] */
    float *emb;           /* [max_batch, dim] */
};

static void job_free(batch_job *j)
{
    if (!j) return;
    free(j->in);
    free(j->out);
    free(j);
}

static void job_error(batcher *b, batch_job *j, int st)
{
    const char *m = clipdex_ctx_errmsg(b->ctx);
    j->status = st;
    snprintf(j->err, sizeof j->err, "%s", m && m[0] ? m : clipdex_status_str(st));
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

static void timespec_at(struct timespec *ts, double t)
{
    double sec = floor(t);
    ts->tv_sec = (time_t)sec;
    ts->tv_nsec = (long)((t - sec) * 1e9);
    if (ts->tv_nsec >= 1000000000L) ts->tv_nsec = 999999999L;
}

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Sleeps ms milliseconds (the test hook). */
static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Marks the jobs of a finished batch done, or frees those whose request
 * gave up. Called locked. */
static void jobs_finish(batcher *b, batch_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        batch_job *j = jobs[i];
        b->stats.jobs++;
        b->stats.items += j->n;
        if (j->abandoned)
            job_free(j);
        else
            j->state = JOB_DONE;
    }
    pthread_cond_broadcast(&b->done);
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
            timespec_at(&ts, now_mono() + b->wait_us * 1e-6);
            while (b->preparing > 0 && b->queued < b->max_batch && !b->stop)
                if (pthread_cond_timedwait(&b->work, &b->mu, &ts) == ETIMEDOUT) break;
            if (!b->head) continue; /* its jobs timed out while we waited */
        }
        /* take the first job and the following jobs of its kind that fit */
        size_t n = 0, items = 0;
        int kind = b->head->kind;
        batch_job **pp = &b->head, *prev = NULL;
        while (*pp && take) {
            batch_job *j = *pp;
            if (j->kind == kind && (n == 0 || (items + j->n <= b->max_batch && n < b->max_batch))) {
                take[n++] = j;
                j->state = JOB_RUNNING;
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
            j->state = JOB_RUNNING;
            pthread_mutex_unlock(&b->mu);
            if (b->test_delay_ms > 0) sleep_ms(b->test_delay_ms);
            run_alone(b, j);
            pthread_mutex_lock(&b->mu);
            jobs_finish(b, &j, 1);
            continue;
        }
        pthread_mutex_unlock(&b->mu);
        if (b->test_delay_ms > 0) sleep_ms(b->test_delay_ms);
        run_batch(b, take, n);
        pthread_mutex_lock(&b->mu);
        jobs_finish(b, take, n);
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
    const char *delay = getenv("CLIPDEX_TEST_BATCH_DELAY_MS");
    if (delay && delay[0]) {
        long ms = strtol(delay, NULL, 10);
        if (ms > SERVE_BATCH_MAX_TEST_DELAY_MS) ms = SERVE_BATCH_MAX_TEST_DELAY_MS;
        b->test_delay_ms = ms < 0 ? 0 : ms;
    }
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
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&b->work, &ca);
    pthread_cond_init(&b->done, &ca);
    pthread_condattr_destroy(&ca);
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

/* Unlinks queued job j. Called locked. */
static void queue_remove(batcher *b, batch_job *j)
{
    batch_job *prev = NULL;
    for (batch_job *p = b->head; p; prev = p, p = p->next) {
        if (p != j) continue;
        if (prev)
            prev->next = j->next;
        else
            b->head = j->next;
        if (b->tail == j) b->tail = prev;
        b->queued -= j->n;
        return;
    }
}

int batcher_run(batcher *b, int kind, void *in, size_t n, float *out, double deadline, char *err,
                size_t err_len)
{
    batch_job *j = calloc(1, sizeof *j);
    float *jout = n ? malloc(n * b->dim * sizeof *jout) : NULL;
    pthread_mutex_lock(&b->mu);
    b->preparing--;
    pthread_cond_broadcast(&b->work);
    if (n == 0 || !j || !jout || (deadline > 0 && now_mono() >= deadline)) {
        int st = n == 0 ? CLIPDEX_OK : !j || !jout ? CLIPDEX_E_NOMEM : BATCH_TIMEOUT;
        if (st == BATCH_TIMEOUT) b->stats.timeouts++;
        pthread_mutex_unlock(&b->mu);
        snprintf(err, err_len, "%s", st == CLIPDEX_E_NOMEM ? "out of memory" : "");
        free(j);
        free(jout);
        free(in);
        return st;
    }
    j->kind = kind;
    j->in = in;
    j->n = n;
    j->out = jout;
    j->state = JOB_QUEUED;
    if (b->tail)
        b->tail->next = j;
    else
        b->head = j;
    b->tail = j;
    b->queued += n;
    pthread_cond_broadcast(&b->work);
    struct timespec ts;
    if (deadline > 0) timespec_at(&ts, deadline);
    while (j->state != JOB_DONE) {
        if (deadline <= 0) {
            pthread_cond_wait(&b->done, &b->mu);
            continue;
        }
        if (pthread_cond_timedwait(&b->done, &b->mu, &ts) != ETIMEDOUT || j->state == JOB_DONE)
            continue;
        /* the deadline passed: drop the queued job, or leave the running
         * one to the inference thread (it frees it); never touch out */
        b->stats.timeouts++;
        if (j->state == JOB_QUEUED) {
            queue_remove(b, j);
            job_free(j);
        } else {
            j->abandoned = 1;
        }
        pthread_mutex_unlock(&b->mu);
        snprintf(err, err_len, "deadline passed");
        return BATCH_TIMEOUT;
    }
    pthread_mutex_unlock(&b->mu);
    int st = j->status;
    if (st == CLIPDEX_OK)
        memcpy(out, j->out, n * b->dim * sizeof *out);
    else
        snprintf(err, err_len, "%s", j->err);
    job_free(j);
    return st;
}

void batcher_get_stats(batcher *b, batcher_stats *st)
{
    pthread_mutex_lock(&b->mu);
    *st = b->stats;
    pthread_mutex_unlock(&b->mu);
}
