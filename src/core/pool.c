/*
 * pool.c - persistent worker threads. One job at a time: the caller publishes
 * (fn, arg, n_tasks) under the mutex, bumps a generation counter, works on
 * tasks itself, then waits until every worker has checked out of the job.
 * Task indices come from an atomic counter, so the split of work between
 * threads varies but each task's output is computed the same way.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct cdx_pool {
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    pthread_t *threads;
    int n_workers;      /* threads besides the caller */
    unsigned long gen;  /* job generation */
    int busy;           /* workers still inside the current job */
    int quit;
    cdx_task_fn fn;
    void *arg;
    size_t n_tasks;
    atomic_size_t next;
};

static void run_tasks(struct cdx_pool *p)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->arg, t);
    }
}

static void *worker(void *vp)
{
    struct cdx_pool *p = vp;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->quit && p->gen == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_tasks(p);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

struct cdx_pool *cdx_pool_new(int n_threads)
{
    if (n_threads < 2) return NULL;
    struct cdx_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) break;
        p->n_workers++;
    }
    if (p->n_workers == 0) {
        cdx_pool_free(p);
        return NULL;
    }
    return p;
}

void cdx_pool_free(struct cdx_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_workers; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

void cdx_pool_run(struct cdx_pool *p, cdx_task_fn fn, void *arg, size_t n_tasks)
{
    if (n_tasks == 0) return;
    if (!p || n_tasks == 1) {
        for (size_t t = 0; t < n_tasks; t++) fn(arg, t);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    p->busy = p->n_workers;
    p->gen++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_tasks(p);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
