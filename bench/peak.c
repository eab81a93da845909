/*
 * peak.c - measures this machine's float32 peak: a pure AVX2 FMA loop, 1..N threads.
 *
 * Each thread runs ACC independent 8-lane accumulators (enough to cover the
 * FMA latency of every x86 core with two FMA pipes: 2 pipes x 5 cycles), so
 * the loop is bound only by FMA throughput. One _mm256_fmadd_ps is 16 flops.
 * The figure is what `bench/run.sh` divides by to print "% of machine peak".
 *
 *   peak [--threads N]... [--seconds S] [--repeat R] [--mem MIB]
 *   prints "peak_gflops THREADS GFLOPS" per thread count (the best of R runs)
 *
 * --mem MIB measures memory read bandwidth instead: a MIB-MiB buffer (256 is
 * far past any L3 here) is cut into one contiguous share per thread, each
 * thread sums its share with AVX2 loads (4 accumulators) again and again;
 * prints "mem_read_gbs THREADS GB/S" (10^9 bytes/s, the best of R runs). This
 * is the ceiling of anything that streams weights once per call, like a short
 * text query.
 *
 * Built without -mavx2: the kernel carries a target attribute, and a CPU
 * without AVX2/FMA gets an error rather than SIGILL.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define ACC 12          /* independent accumulators per thread */
#define INNER 4096      /* FMA rounds between clock checks */
#define MAX_THREADS 64

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct job {
    double seconds;      /* run at least this long */
    const float *p;      /* --mem: this thread's share of the buffer */
    size_t n;            /* --mem: floats in it (multiple of 32) */
    double work;         /* out: flops (FMA loop) or bytes (read loop) done */
    double elapsed;      /* out: seconds taken */
    float sink;          /* out: keeps the result alive */
    pthread_barrier_t *start;
};

#ifdef HAVE_X86
/* ACC chains of y = y * a + b, 16 flops per FMA; a < 1 keeps values finite. */
__attribute__((target("avx2,fma"))) static void *fma_loop(void *arg)
{
    struct job *j = arg;
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
    __m256 y[ACC];
    for (int i = 0; i < ACC; i++) y[i] = _mm256_set1_ps((float)i);
    pthread_barrier_wait(j->start);
    double t0 = now_s(), t = t0;
    unsigned long rounds = 0;
    do {
        for (int r = 0; r < INNER; r++) {
            /* written out so the compiler keeps every chain in a register */
            y[0] = _mm256_fmadd_ps(y[0], a, b);
            y[1] = _mm256_fmadd_ps(y[1], a, b);
            y[2] = _mm256_fmadd_ps(y[2], a, b);
            y[3] = _mm256_fmadd_ps(y[3], a, b);
            y[4] = _mm256_fmadd_ps(y[4], a, b);
            y[5] = _mm256_fmadd_ps(y[5], a, b);
            y[6] = _mm256_fmadd_ps(y[6], a, b);
            y[7] = _mm256_fmadd_ps(y[7], a, b);
            y[8] = _mm256_fmadd_ps(y[8], a, b);
            y[9] = _mm256_fmadd_ps(y[9], a, b);
            y[10] = _mm256_fmadd_ps(y[10], a, b);
            y[11] = _mm256_fmadd_ps(y[11], a, b);
        }
        rounds += INNER;
        t = now_s();
    } while (t - t0 < j->seconds);
    __m256 s = y[0];
    for (int i = 1; i < ACC; i++) s = _mm256_add_ps(s, y[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, s);
    j->sink = lanes[0] + lanes[7];
    j->work = (double)rounds * ACC * 16.0;
    j->elapsed = t - t0;
    return NULL;
}
#endif

#ifdef HAVE_X86
__attribute__((target("avx2"))) static void *read_loop(void *arg)
{
    struct job *j = arg;
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    pthread_barrier_wait(j->start);
    double t0 = now_s(), t = t0, bytes = 0;
    do {
        for (size_t i = 0; i < j->n; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_load_ps(j->p + i));
            s1 = _mm256_add_ps(s1, _mm256_load_ps(j->p + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_load_ps(j->p + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_load_ps(j->p + i + 24));
        }
        bytes += (double)j->n * sizeof(float);
        t = now_s();
    } while (t - t0 < j->seconds);
    float lanes[8];
    _mm256_storeu_ps(lanes, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    j->sink = lanes[0];
    j->work = bytes;
    j->elapsed = t - t0;
    return NULL;
}
#endif

#ifdef HAVE_X86
/* Runs fn on nt threads (the caller is thread 0) over jobs[0..nt), started
 * together at a barrier; returns the summed work per second of the common
 * wall time. */
static double run_threads(int nt, void *(*fn)(void *), struct job *jobs, float *sink)
{
    pthread_t th[MAX_THREADS];
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, (unsigned)nt);
    for (int i = 0; i < nt; i++) {
        jobs[i].start = &bar;
        if (i > 0 && pthread_create(&th[i], NULL, fn, &jobs[i]) != 0) {
            fprintf(stderr, "peak: cannot start thread %d: %s\n", i, strerror(errno));
            exit(1);
        }
    }
    double t0 = now_s();
    fn(&jobs[0]);
    for (int i = 1; i < nt; i++) pthread_join(th[i], NULL);
    double wall = now_s() - t0, work = 0;
    for (int i = 0; i < nt; i++) {
        work += jobs[i].work;
        *sink += jobs[i].sink;
    }
    pthread_barrier_destroy(&bar);
    return work / wall;
}
#endif

/* `nt` threads reading disjoint shares of buf (nf floats); total GB/s. */
static double mem_once(int nt, const float *buf, size_t nf, double seconds, float *sink)
{
#ifdef HAVE_X86
    struct job jobs[MAX_THREADS];
    size_t share = nf / (size_t)nt / 32 * 32;
    for (int i = 0; i < nt; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].p = buf + (size_t)i * share;
        jobs[i].n = share;
        jobs[i].seconds = seconds;
    }
    return run_threads(nt, read_loop, jobs, sink) * 1e-9;
#else
    (void)nt; (void)buf; (void)nf; (void)seconds; (void)sink;
    return 0.0;
#endif
}

/* Runs `nt` threads for `seconds`; returns total GFLOP/s (sum of per-thread rates
 * over the common wall time). */
static double run_once(int nt, double seconds, float *sink)
{
#ifdef HAVE_X86
    struct job jobs[MAX_THREADS];
    for (int i = 0; i < nt; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].seconds = seconds;
    }
    return run_threads(nt, fma_loop, jobs, sink) * 1e-9;
#else
    (void)nt; (void)seconds; (void)sink;
    return 0.0;
#endif
}

static void usage(void)
{
    fprintf(stderr, "usage: peak [--threads N]... [--seconds S] [--repeat R] [--mem MIB]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int threads[16], nthreads = 0, repeat = 3, mem_mib = 0;
    double seconds = 0.25;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && nthreads < 16) {
            threads[nthreads] = atoi(argv[++i]);
            if (threads[nthreads] < 1 || threads[nthreads] > MAX_THREADS) usage();
            nthreads++;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
            mem_mib = atoi(argv[++i]);
            if (mem_mib < 1 || mem_mib > 65536) usage();
        } else {
            usage();
        }
    }
    if (!nthreads) {
        threads[0] = 1;
        threads[1] = 2;
        nthreads = 2;
    }
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "peak: this CPU has no AVX2+FMA; the fp32 peak is not measured\n");
        return 1;
    }
#else
    fprintf(stderr, "peak: only x86-64 AVX2+FMA is measured\n");
    return 1;
#endif
    float sink = 0;
    if (mem_mib) {
        size_t nf = (size_t)mem_mib << 18; /* floats */
        float *buf = aligned_alloc(64, nf * sizeof(float));
        if (!buf) {
            fprintf(stderr, "peak: cannot allocate %d MiB\n", mem_mib);
            return 1;
        }
        for (size_t i = 0; i < nf; i++) buf[i] = (float)(i & 1023); /* touch every page */
        for (int k = 0; k < nthreads; k++) {
            double best = 0;
            for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
                double g = mem_once(threads[k], buf, nf, seconds, &sink);
                if (g > best) best = g;
            }
            printf("mem_read_gbs %d %.2f\n", threads[k], best);
        }
        free(buf);
        if (sink == 12345.0f) printf("#\n");
        return 0;
    }
    for (int k = 0; k < nthreads; k++) {
        double best = 0;
        for (int r = 0; r < (repeat > 0 ? repeat : 1); r++) {
            double g = run_once(threads[k], seconds, &sink);
            if (g > best) best = g;
        }
        printf("peak_gflops %d %.2f\n", threads[k], best);
    }
    if (sink == 12345.0f) printf("#\n"); /* never true; keeps `sink` observable */
    return 0;
}
