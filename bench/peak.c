/*
 * peak.c - measures this machine's arithmetic peaks (fp32 FMA, int8 and bf16
 * dot products, per SIMD width) and its memory read bandwidth, 1..N threads.
 *
 *   peak [--kind KIND]... [--threads N]... [--seconds S] [--repeat R]
 *       prints "peak KIND THREADS GOPS" per kind and thread count (the best of
 *       R runs of S seconds), or "skip KIND REASON" for a kind this CPU (or
 *       this build) cannot run. Without --kind: every kind below.
 *   peak --mem MIB [--threads N]... [--seconds S] [--repeat R]
 *       prints "mem_read_gbs THREADS GB/S" instead (see below).
 *   peak --list
 *       prints "kind KIND yes|no WHAT" for every kind.
 *
 * Kinds (GOPS counts 2 operations per multiply-add, so fp32 figures are
 * GFLOP/s and int8/bf16 figures are GFLOP/s-equivalent, comparable with the
 * "2 x multiply-adds" work that bench/clipdex_bench.c counts):
 *   avx2-fma     vfmadd ymm, 8 fp32 lanes: 16 flops an instruction
 *   avx512-fma   vfmadd zmm, 16 fp32 lanes: 32 flops
 *   avx2-int8    vpmaddubsw + vpmaddwd (x 1) + vpaddd ymm, the int8 dot product
 *                without VNNI (u8 x s8 pair sums in int16, then int32): 64 ops
 *                a triple
 *   avx-vnni     vpdpbusd ymm (VEX, AVX-VNNI): 32 u8 x s8 products into
 *                8 int32 lanes: 64 ops
 *   avx512-vnni  vpdpbusd zmm (AVX512_VNNI): 64 products: 128 ops
 *   avx512-bf16  vdpbf16ps zmm (AVX512_BF16): 32 bf16 products into 16 fp32
 *                lanes: 64 flops
 * Each thread runs independent accumulator chains (12 for 16-register ymm
 * code, 16 for zmm), more than latency x issue width of any current x86 core
 * (e.g. 2 pipes x 4-5 cycles), so every loop is bound by throughput only.
 * bench/driver.py divides by these for its "% of peak" columns: fp32 (and
 * F16/BF16 weights, which compute in fp32) against the FMA peak of the kernel
 * path, int8 against the int8 peak of that path.
 *
 * --mem MIB measures memory read bandwidth: a MIB-MiB buffer (256 is far past
 * any L3 here) is cut into one contiguous share per thread, each thread sums
 * its share with AVX2 loads (4 accumulators) again and again; "mem_read_gbs"
 * is 10^9 bytes/s. This is the ceiling of anything that streams weights once
 * per call, like a short text query.
 *
 * Built without -m flags: every kernel carries a target attribute and runs
 * only if CPUID says the CPU has it and XGETBV that the OS saves its
 * registers; a missing one is skipped and said so ("skip KIND ...").
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86 1
#endif

#define INNER 2048      /* loop rounds between clock checks */
#define MAX_THREADS 64
#define MAX_KINDS 16

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

struct job {
    double seconds;      /* run at least this long */
    void (*block)(void *);  /* arithmetic: INNER rounds of every chain, state in/out */
    double ops;          /* arithmetic: operations per call of block */
    const float *p;      /* --mem: this thread's share of the buffer */
    size_t n;            /* --mem: floats in it (multiple of 32) */
    double work;         /* out: operations (arithmetic loops) or bytes (read loop) done */
    double elapsed;      /* out: seconds taken */
    float sink;          /* out: keeps the result alive */
    pthread_barrier_t *start;
};

/* The accumulator chains, written out so the compiler keeps each in a register. */
#define CH12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define CH16(X) CH12(X) X(12) X(13) X(14) X(15)

/* Each kernel below runs INNER rounds of one step of every chain, with the
 * chains loaded from and stored back to `state` (16 x 64 bytes): a call-free
 * loop, so the compiler keeps every chain in a register (with the clock call
 * inside the function it spilled them around the loop). */
#ifdef HAVE_X86
/* 12 chains of y = y * a + b (a < 1 keeps the values finite), 16 flops each. */
__attribute__((target("avx2,fma"), noinline)) static void avx2_fma(void *state)
{
    float *st = state;
    __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-7f);
#define L(i) __m256 y##i = _mm256_loadu_ps(st + 16 * i);
#define S(i) y##i = _mm256_fmadd_ps(y##i, a, b);
#define W(i) _mm256_storeu_ps(st + 16 * i, y##i);
    CH12(L)
    for (int r = 0; r < INNER; r++) { CH12(S) }
    CH12(W)
#undef L
#undef S
#undef W
}

/* 16 chains of zmm FMAs, 32 flops each. */
__attribute__((target("avx512f"), noinline)) static void avx512_fma(void *state)
{
    float *st = state;
    __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
#define L(i) __m512 y##i = _mm512_loadu_ps(st + 16 * i);
#define S(i) y##i = _mm512_fmadd_ps(y##i, a, b);
#define W(i) _mm512_storeu_ps(st + 16 * i, y##i);
    CH16(L)
    for (int r = 0; r < INNER; r++) { CH16(S) }
    CH16(W)
#undef L
#undef S
#undef W
}

/* 12 chains of the non-VNNI int8 dot product: y += madd(maddubs(y, w), 1).
 * The chain feeds its own accumulator back as the u8 operand; the values do
 * not change the timing. This one and avx_vnni step in inline asm: with the
 * intrinsics gcc 12 copied every ymm chain through the stack each round (16
 * registers, 12 chains), which halved the figure. */
__attribute__((target("avx2"), noinline)) static void avx2_int8(void *state)
{
    float *st = state;
    __m256i w = _mm256_set1_epi8(3), one = _mm256_set1_epi16(1), t;
#define L(i) __m256i y##i = _mm256_loadu_si256((const __m256i *)(st + 16 * i));
#define S(i)                                                                   \
    __asm__("vpmaddubsw %[w], %[y], %[t]\n\tvpmaddwd %[one], %[t], %[t]\n\tvpaddd %[t], %[y], %[y]" \
            : [y] "+x"(y##i), [t] "=&x"(t) : [w] "x"(w), [one] "x"(one));
#define W(i) _mm256_storeu_si256((__m256i *)(st + 16 * i), y##i);
    CH12(L)
    for (int r = 0; r < INNER; r++) { CH12(S) }
    CH12(W)
#undef L
#undef S
#undef W
}

/* 12 chains of vpdpbusd ymm (AVX-VNNI, VEX-encoded), 64 ops each. */
__attribute__((target("avx2,avxvnni"), noinline)) static void avx_vnni(void *state)
{
    float *st = state;
    __m256i u = _mm256_set1_epi8(3), w = _mm256_set1_epi8(-2);
#define L(i) __m256i y##i = _mm256_loadu_si256((const __m256i *)(st + 16 * i));
#define S(i) __asm__("%{vex%} vpdpbusd %[w], %[u], %[y]" : [y] "+x"(y##i) : [u] "x"(u), [w] "x"(w));
#define W(i) _mm256_storeu_si256((__m256i *)(st + 16 * i), y##i);
    CH12(L)
    for (int r = 0; r < INNER; r++) { CH12(S) }
    CH12(W)
#undef L
#undef S
#undef W
}

/* 16 chains of vpdpbusd zmm (AVX512_VNNI), 128 ops each. */
__attribute__((target("avx512f,avx512vnni"), noinline)) static void avx512_vnni(void *state)
{
    float *st = state;
    __m512i u = _mm512_set1_epi8(3), w = _mm512_set1_epi8(-2);
#define L(i) __m512i y##i = _mm512_loadu_si512(st + 16 * i);
#define S(i) y##i = _mm512_dpbusd_epi32(y##i, u, w);
#define W(i) _mm512_storeu_si512(st + 16 * i, y##i);
    CH16(L)
    for (int r = 0; r < INNER; r++) { CH16(S) }
    CH16(W)
#undef L
#undef S
#undef W
}

/* 16 chains of vdpbf16ps zmm (AVX512_BF16), 64 flops each; tiny products keep
 * the sums finite and normal. */
__attribute__((target("avx512f,avx512bf16"), noinline)) static void avx512_bf16(void *state)
{
    float *st = state;
    __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(1e-3f), _mm512_set1_ps(1e-3f));
#define L(i) __m512 y##i = _mm512_loadu_ps(st + 16 * i);
#define S(i) y##i = _mm512_dpbf16_ps(y##i, a, a);
#define W(i) _mm512_storeu_ps(st + 16 * i, y##i);
    CH16(L)
    for (int r = 0; r < INNER; r++) { CH16(S) }
    CH16(W)
#undef L
#undef S
#undef W
}
#endif

/* One thread of an arithmetic kind: calls j->block until j->seconds have passed. */
static void *arith_loop(void *arg)
{
    struct job *j = arg;
    _Alignas(64) float state[16 * 16];
    for (int i = 0; i < 16 * 16; i++) state[i] = 0.5f;
    pthread_barrier_wait(j->start);
    double t0 = now_s(), t = t0;
    unsigned long calls = 0;
    do {
        j->block(state);
        calls++;
        t = now_s();
    } while (t - t0 < j->seconds);
    j->work = (double)calls * j->ops;
    j->elapsed = t - t0;
    j->sink = state[0] + state[255];
    return NULL;
}

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

/* The kinds, in print order. `has` is filled at start-up from CPUID. */
static struct kind {
    const char *name;
    const char *what;
    const char *needs; /* the CPU flags, as /proc/cpuinfo spells them */
    void (*block)(void *);
    double ops; /* per call of block: INNER rounds x chains x ops per instruction */
    int has;
} kinds[] = {
#ifdef HAVE_X86
    {"avx2-fma", "fp32 vfmadd ymm, 16 flops/instr", "avx2 fma", avx2_fma, INNER * 12 * 16.0, 0},
    {"avx512-fma", "fp32 vfmadd zmm, 32 flops/instr", "avx512f", avx512_fma, INNER * 16 * 32.0, 0},
    {"avx2-int8", "int8 vpmaddubsw+vpmaddwd+vpaddd ymm, 64 ops/triple", "avx2", avx2_int8, INNER * 12 * 64.0, 0},
    {"avx-vnni", "int8 vpdpbusd ymm (VEX), 64 ops/instr", "avx_vnni", avx_vnni, INNER * 12 * 64.0, 0},
    {"avx512-vnni", "int8 vpdpbusd zmm, 128 ops/instr", "avx512_vnni", avx512_vnni, INNER * 16 * 128.0, 0},
    {"avx512-bf16", "bf16 vdpbf16ps zmm, 64 flops/instr", "avx512_bf16", avx512_bf16, INNER * 16 * 64.0, 0},
#else
    {"avx2-fma", "fp32 vfmadd ymm", "avx2 fma", NULL, 0, 0},
#endif
};
#define N_KINDS (int)(sizeof kinds / sizeof kinds[0])

/* CPUID + XGETBV: what the CPU has and the OS saves (ymm; zmm and opmasks). */
static void detect(void)
{
#ifdef HAVE_X86
    unsigned a, b, c, d, xcr0 = 0;
    int fma = 0, osxsave = 0, avx2 = 0, f = 0, vnni512 = 0, vnni256 = 0, bf16 = 0;
    if (__get_cpuid(1, &a, &b, &c, &d)) {
        fma = (c >> 12) & 1;
        osxsave = ((c >> 27) & 1) && ((c >> 28) & 1); /* OSXSAVE and AVX */
    }
    if (osxsave) {
        unsigned lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        xcr0 = lo;
    }
    int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        avx2 = ymm && fma && ((b >> 5) & 1);
        f = zmm && ((b >> 16) & 1);
        vnni512 = f && ((c >> 11) & 1);
    }
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
        vnni256 = avx2 && ((a >> 4) & 1);
        bf16 = f && ((a >> 5) & 1);
    }
    for (int k = 0; k < N_KINDS; k++) {
        const char *n = kinds[k].name;
        if (!strcmp(n, "avx2-fma") || !strcmp(n, "avx2-int8")) kinds[k].has = avx2;
        else if (!strcmp(n, "avx512-fma")) kinds[k].has = f;
        else if (!strcmp(n, "avx-vnni")) kinds[k].has = vnni256;
        else if (!strcmp(n, "avx512-vnni")) kinds[k].has = vnni512;
        else if (!strcmp(n, "avx512-bf16")) kinds[k].has = bf16;
    }
#endif
}

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

/* `nt` threads running kind `kd` for `seconds`; total G operations/s. */
static double arith_once(const struct kind *kd, int nt, double seconds, float *sink)
{
    struct job jobs[MAX_THREADS];
    for (int i = 0; i < nt; i++) {
        memset(&jobs[i], 0, sizeof jobs[i]);
        jobs[i].seconds = seconds;
        jobs[i].block = kd->block;
        jobs[i].ops = kd->ops;
    }
    return run_threads(nt, arith_loop, jobs, sink) * 1e-9;
}

static void usage(void)
{
    fprintf(stderr, "usage: peak [--kind KIND]... [--threads N]... [--seconds S] [--repeat R] [--mem MIB] [--list]\n"
                    "kinds:");
    for (int k = 0; k < N_KINDS; k++) fprintf(stderr, " %s", kinds[k].name);
    fprintf(stderr, "\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int threads[16], nthreads = 0, repeat = 3, mem_mib = 0, list = 0;
    int want[MAX_KINDS], nwant = 0;
    double seconds = 0.25;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && nthreads < 16) {
            threads[nthreads] = atoi(argv[++i]);
            if (threads[nthreads] < 1 || threads[nthreads] > MAX_THREADS) usage();
            nthreads++;
        } else if (!strcmp(argv[i], "--kind") && i + 1 < argc && nwant < MAX_KINDS) {
            const char *n = argv[++i];
            int k = 0;
            while (k < N_KINDS && strcmp(kinds[k].name, n)) k++;
            if (k == N_KINDS) usage();
            want[nwant++] = k;
        } else if (!strcmp(argv[i], "--seconds") && i + 1 < argc) {
            seconds = atof(argv[++i]);
        } else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = atoi(argv[++i]);
        } else if (!strcmp(argv[i], "--mem") && i + 1 < argc) {
            mem_mib = atoi(argv[++i]);
            if (mem_mib < 1 || mem_mib > 65536) usage();
        } else if (!strcmp(argv[i], "--list")) {
            list = 1;
        } else {
            usage();
        }
    }
    if (!nthreads) {
        threads[0] = 1;
        threads[1] = 2;
        nthreads = 2;
    }
    if (!nwant)
        for (int k = 0; k < N_KINDS; k++) want[nwant++] = k;
    if (repeat < 1) repeat = 1;
    detect();
    if (list) {
        for (int k = 0; k < N_KINDS; k++)
            printf("kind %s %s %s\n", kinds[k].name, kinds[k].has ? "yes" : "no", kinds[k].what);
        return 0;
    }
    float sink = 0;
    if (mem_mib) {
#ifdef HAVE_X86
        if (!kinds[0].has) {
            fprintf(stderr, "peak: --mem needs AVX2\n");
            return 1;
        }
#endif
        size_t nf = (size_t)mem_mib << 18; /* floats */
        float *buf = aligned_alloc(64, nf * sizeof(float));
        if (!buf) {
            fprintf(stderr, "peak: cannot allocate %d MiB\n", mem_mib);
            return 1;
        }
        for (size_t i = 0; i < nf; i++) buf[i] = (float)(i & 1023); /* touch every page */
        for (int k = 0; k < nthreads; k++) {
            double best = 0;
            for (int r = 0; r < repeat; r++) {
                double g = mem_once(threads[k], buf, nf, seconds, &sink);
                if (g > best) best = g;
            }
            printf("mem_read_gbs %d %.2f\n", threads[k], best);
        }
        free(buf);
        if (sink == 12345.0f) printf("#\n");
        return 0;
    }
    for (int w = 0; w < nwant; w++) {
        const struct kind *kd = &kinds[want[w]];
        if (!kd->has || !kd->block) {
            printf("skip %s (this CPU has no %s)\n", kd->name, kd->needs);
            fflush(stdout);
            continue;
        }
        for (int k = 0; k < nthreads; k++) {
            double best = 0;
            for (int r = 0; r < repeat; r++) {
                double g = arith_once(kd, threads[k], seconds, &sink);
                if (g > best) best = g;
            }
            printf("peak %s %d %.2f\n", kd->name, threads[k], best);
            fflush(stdout);
        }
    }
    if (sink == 12345.0f) printf("#\n"); /* never true; keeps `sink` observable */
    return 0;
}
