/*
 * ann_bench.c - the ANN search of app/ann/ at scale on synthetic data:
 * N clustered 512-d unit vectors (C centres, Gaussian noise), the factory
 * the rule of docs/ann.md picks for N (or argv[3]), its training sample,
 * build (train + add) time, the written index's bytes per vector on disk
 * and the resident growth once it is read back memory-mapped, then Q
 * queries from the same distribution: recall@10 of ann_search (the real
 * path: candidates re-ranked exactly) against the exact scan, and median
 * and p99 ms per query for both. Built and run by bench/ann_bench.sh.
 * Usage: ann_bench N Q [FACTORY] [THREADS]; ANN_BENCH_NPROBES="16 32" tries
 * those nprobe values (default: the rule's); ANN_BENCH_MMAP=1 reads the index
 * back with IO_FLAG_MMAP (as `clipdex search`) instead of into memory.
 */
#include <malloc.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ann/ann.h"
#include "ann/faiss_glue.h"
#include "clipdex.h"

#define DIM 512
#define CENTRES 1000
#define NOISE 0.03 /* per coordinate: a noise norm of about 0.68, the centres 1 */
#define K 10

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double uniform(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return ((rng >> 11) + 0.5) / 9007199254740992.0;
}
static float gauss(void) { return (float)(sqrt(-2 * log(uniform())) * cos(6.283185307179586 * uniform())); }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* n vectors near the centres c [CENTRES, DIM], normalised, into x. */
static void make(float *x, size_t n, const float *c)
{
    for (size_t i = 0; i < n; i++) {
        const float *ci = c + (size_t)(uniform() * CENTRES) % CENTRES * DIM;
        float *xi = x + i * DIM;
        double s = 0;
        for (int d = 0; d < DIM; d++) xi[d] = ci[d] + (float)NOISE * gauss(), s += (double)xi[d] * xi[d];
        float inv = (float)(1 / sqrt(s));
        for (int d = 0; d < DIM; d++) xi[d] *= inv;
    }
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double pct(double *v, size_t n, double p)
{
    qsort(v, n, sizeof *v, cmp_d);
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static void die(const char *what, const char *err)
{
    fprintf(stderr, "ann_bench: %s: %s\n", what, err);
    exit(1);
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000, nq = argc > 2 ? strtoul(argv[2], NULL, 10) : 200;
    int threads = argc > 4 ? atoi(argv[4]) : 2;
    char factory[ANN_FACTORY_MAX];
    long nprobe;
    ann_factory_auto(n, factory, sizeof factory, &nprobe);
    if (argc > 3 && argv[3][0]) snprintf(factory, sizeof factory, "%s", argv[3]);
    char cpu[256] = "?", line[512];
    FILE *ci = fopen("/proc/cpuinfo", "r");
    while (ci && fgets(line, sizeof line, ci))
        if (sscanf(line, "model name : %255[^\n]", cpu) == 1) break;
    if (ci) fclose(ci);
    printf("command: %s %zu %zu '%s' %d\ncpu: %s, %ld online\n", argv[0], n, nq, factory, threads, cpu,
           sysconf(_SC_NPROCESSORS_ONLN));
    printf("data: %zu x %d float32, %d centres, noise %.3f/coordinate, normalised; %zu queries\n", n, DIM,
           CENTRES, NOISE, nq);

    float *c = malloc((size_t)CENTRES * DIM * sizeof *c), *x = malloc(n * DIM * sizeof *x),
          *q = malloc(nq * DIM * sizeof *q);
    if (!c || !x || !q) die("malloc", "out of memory");
    for (size_t i = 0; i < (size_t)CENTRES * DIM; i++) c[i] = gauss() / sqrtf(DIM);
    double t0 = now();
    make(x, n, c);
    make(q, nq, c);
    printf("generated in %.1f s\n", now() - t0);

    char err[512];
    fg_index *fg = NULL;
    if (fg_new(factory, DIM, &fg, err, sizeof err)) die(factory, err);
    /* the training sample of ann.c: max(ANN_TRAIN_MIN, 64 per list), strided */
    const char *ivf = strstr(factory, "IVF");
    size_t want = ANN_TRAIN_PER_LIST * (ivf ? strtoul(ivf + 3, NULL, 10) : 0);
    if (want < ANN_TRAIN_MIN) want = ANN_TRAIN_MIN;
    size_t nt = n < want ? n : want;
    float *xt = malloc(nt * DIM * sizeof *xt);
    for (size_t i = 0; xt && i < nt; i++) memcpy(xt + i * DIM, x + (i * n / nt) * DIM, DIM * sizeof *xt);
    t0 = now();
    if (!xt || fg_train(fg, nt, xt, err, sizeof err)) die("train", err);
    double t_train = now() - t0;
    free(xt);
    t0 = now();
    if (fg_add(fg, n, x, err, sizeof err)) die("add", err);
    double t_add = now() - t0;
    printf("factory %s, nprobe %ld: trained on %zu in %.1f s, added %zu in %.1f s: build %.1f s\n", factory,
           nprobe, nt, t_train, n, t_add, t_train + t_add);
    char path[] = "/tmp/ann_bench.XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) die("mkstemp", "failed");
    close(fd);
    if (fg_write(fg, path, err, sizeof err)) die("write", err);
    fg_free(fg);
    malloc_trim(0); /* give the built index back, so the growth below is the read one */
    struct stat sb;
    stat(path, &sb);
    long rss0 = rss_kb();
    if (fg_read(path, getenv("ANN_BENCH_MMAP") != NULL, &fg, err, sizeof err)) die("read", err);
    long rss1 = rss_kb();
    printf("on disk %.1f bytes/vector (%lld bytes); read back %s: +%.1f bytes/vector resident "
           "(the float32 matrix for the re-rank: %d more)\n", (double)sb.st_size / (double)n,
           (long long)sb.st_size, getenv("ANN_BENCH_MMAP") ? "with IO_FLAG_MMAP (as clipdex search)"
                                                           : "into memory (as clipdex serve)",
           (double)(rss1 - rss0) * 1024 / (double)n, DIM * 4);

    /* the matrix and the index as the application sees them */
    clipdex_ctx *ctx = NULL;
    clipdex_vecs *vecs = NULL;
    clipdex_vecs_data d = {.rows = x, .n = n, .dim = DIM};
    if (clipdex_ctx_new(&ctx, &(clipdex_ctx_params){threads}) || clipdex_vecs_new(ctx, &d, 0, &vecs))
        die("clipdex", "context or vecs");
    vec_index vi;
    memset(&vi, 0, sizeof vi);
    vi.n = n, vi.dim = DIM, vi.m = x, vi.vecs = vecs;
    ann_index a;
    memset(&a, 0, sizeof a);
    a.fg = fg, a.nprobe = nprobe, a.n_labels = a.n_live = n;
    snprintf(a.factory, sizeof a.factory, "%s", factory);
    a.label_row = malloc(n * sizeof *a.label_row);
    for (size_t i = 0; i < n; i++) a.label_row[i] = (int32_t)i;
    clipdex_search_params sp = clipdex_search_params_default();
    sp.k = 8 * K + 64; /* the rows `clipdex search -k 10` asks for */
    sp.stage = CLIPDEX_SEARCH_EXACT;
    clipdex_hit *he = malloc(sp.k * sizeof *he), *ha = malloc(sp.k * sizeof *ha);
    double *te = malloc(nq * sizeof *te), *ta = malloc(nq * sizeof *ta);
    uint32_t *truth = malloc(nq * K * sizeof *truth);
    float *tscore = malloc(nq * K * sizeof *tscore);
    for (size_t i = 0; i < nq; i++) { /* the exact answers, timed */
        size_t ne = 0;
        t0 = now();
        if (clipdex_vecs_search(ctx, vecs, q + i * DIM, &sp, he, &ne, NULL)) die("exact", clipdex_ctx_errmsg(ctx));
        te[i] = (now() - t0) * 1e3;
        for (size_t e = 0; e < K; e++) {
            truth[i * K + e] = e < ne ? he[e].row : UINT32_MAX;
            tscore[i * K + e] = e < ne ? he[e].score : 0;
        }
    }
    printf("exact scan (float32, clipdex_vecs_search) on %d threads: median %.2f ms, p99 %.2f ms\n", threads,
           pct(te, nq, 0.5), pct(te, nq, 0.99));
    /* nprobe values: ANN_BENCH_NPROBES="16 32 ...", else the default */
    const char *list = getenv("ANN_BENCH_NPROBES");
    char defl[32];
    snprintf(defl, sizeof defl, "%ld", nprobe);
    for (const char *p = list ? list : defl; *p;) {
        char *end = NULL;
        long np = strtol(p, &end, 10);
        if (end == p) break;
        p = end;
        ann_params ap = {np, 0, threads, K};
        double hits = 0;
        for (size_t i = 0; i < nq; i++) {
            size_t na = 0;
            ann_stats st;
            t0 = now();
            if (ann_search(&a, ctx, &vi, q + i * DIM, &sp, &ap, ha, &na, &st)) die("ann", "search failed");
            ta[i] = (now() - t0) * 1e3;
            for (size_t j = 0; j < K && j < na; j++)
                for (size_t e = 0; e < K; e++)
                    if (truth[i * K + e] == ha[j].row) {
                        if (tscore[i * K + e] != ha[j].score) die("ann", "a re-ranked score is not the exact one");
                        hits++;
                    }
        }
        printf("nprobe %ld%s: recall@10 %.4f over %zu queries (candidates %d x %zu rows); ann_search on %d "
               "threads: median %.2f ms, p99 %.2f ms\n", np, np == nprobe ? " (default)" : "",
               hits / (double)(nq * K), nq, ANN_CANDIDATES_DEFAULT, sp.k, threads, pct(ta, nq, 0.5),
               pct(ta, nq, 0.99));
    }
    unlink(path);
    return 0;
}
