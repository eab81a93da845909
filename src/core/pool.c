/*
 * pool.c - persistent worker threads. One job at a time: the caller publishes
 * (fn, arg, n_tasks) under the mutex, bumps a generation counter, works on
 * tasks itself, then waits until every worker has checked out of the job.
 * Task indices come from an atomic counter, so the split of work between
 * threads varies but each task's output is computed the same way.
 * A forward pass runs ~100 short jobs back to back, and waking a sleeping
 * thread in a VM costs tens of microseconds each time: workers and the
 * caller first poll for up to 30 us (PAUSE; CLIPDEX_POOL_SPIN_US changes
 * it), then sleep on the condition variables. Measured on the 2-vCPU VM
 * (interleaved): 6-token text with 2 threads 76-94 -> 119-134 per second,
 * one image 10-11 -> 11-13 per second.
 */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* Poll this long before sleeping: 30 us by default, CLIPDEX_POOL_SPIN_US
 * (0..10000) to change it; 0 sleeps at once (for machines where every
 * cycle of a busy core matters more than latency). */
#define SPIN_US_DEFAULT 30

struct cdx_pool {
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    pthread_t *threads;
    int n_workers;      /* threads besides the caller */
    atomic_ulong gen;   /* job generation (written under mu) */
    atomic_int busy;    /* workers still inside the current job (written under mu) */
    atomic_int quit;
    long long spin_ns;  /* poll time before sleeping (set before the threads start) */
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

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void *worker(void *vp)
{
    struct cdx_pool *p = vp;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        if (!p->quit && p->gen == seen) {
            pthread_mutex_unlock(&p->mu);
            long long t0 = now_ns();
            for (int i = 0; p->spin_ns > 0 && atomic_load_explicit(&p->gen, memory_order_acquire) == seen &&
                            !atomic_load(&p->quit);
                 i++) {
                cpu_relax();
                if ((i & 63) == 63 && now_ns() - t0 > p->spin_ns) break;
            }
            pthread_mutex_lock(&p->mu);
        }
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
    const char *e = getenv("CLIPDEX_POOL_SPIN_US");
    long us = e && *e ? strtol(e, NULL, 10) : SPIN_US_DEFAULT;
    p->spin_ns = (us < 0 ? 0 : us > 10000 ? 10000 : us) * 1000LL;
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
    long long t0 = now_ns();
    for (int i = 0; p->spin_ns > 0 && atomic_load_explicit(&p->busy, memory_order_acquire) > 0; i++) {
        cpu_relax();
        if ((i & 63) == 63 && now_ns() - t0 > p->spin_ns) break;
    }
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
