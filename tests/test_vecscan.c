/*
 * test_vecscan.c - the vector search (src/search/, compiled in here for its
 * internals, and its kernels in src/tensor/vecdot*.c) on every kernel path
 * this CPU has (the others are reported as skipped): the int8, 4-bit and
 * float32 dot kernels against their scalar references on odd shapes; the
 * two-stage search (int8 scan + float32 re-rank) against the exact float32
 * scan - identical hits, scores and order - on random and on clustered data
 * (where the error bound must send it to the fallback), for several k,
 * thresholds, thread counts and odd dimensions; the same for the 4-bit
 * stage (its per-row upper bound checked against every row's float32 score,
 * and its cascade to the int8 stage and the scan). tests/test_vecs.c tests
 * the public API over it. CLIPDEX_TEST_QUICK=1 keeps the kernels and the
 * small searches only (for emulated runs).
 */
#include "search/vecscan.c"

#include "search/vecquant.h"
#include "tensor/dispatch.h"
#include "tensor/vecdot.h"

#include "check.h"

/* contexts with 1, 2 and 3 threads, all running the path under test */
static clipdex_ctx *g_ctx[4];
static const struct cdx_kernels *g_kern;

static clipdex_ctx *ctx_for(int nt)
{
    g_ctx[nt]->kern = g_kern;
    return g_ctx[nt];
}

static unsigned rng = 12345;
static float frand(void)
{
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) / 16777216.0 - 0.5);
}

static void unit(float *v, size_t dim)
{
    double s = 0;
    for (size_t i = 0; i < dim; i++) s += (double)v[i] * v[i];
    for (size_t i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(s));
}

typedef struct qmat {
    int8_t *c;
    float *scale;
    float max_scale, max_l1;
} qmat;

static void quantize(const float *m, size_t n, size_t dim, qmat *q)
{
    q->c = malloc(n * dim);
    q->scale = malloc(n * sizeof *q->scale);
    q->max_scale = q->max_l1 = 0;
    for (size_t r = 0; r < n; r++) {
        clipdex_vec_q8_row(m + r * dim, dim, q->c + r * dim, &q->scale[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (q->scale[r] > q->max_scale) q->max_scale = q->scale[r];
        if (l1 > q->max_l1) q->max_l1 = (float)l1;
    }
}

/* Runs both searches; returns 1 if identical. Counts fallbacks. */
static int same(const float *m, const qmat *qm, size_t n, size_t dim, const float *q, size_t k,
                float thr, int nt, size_t n_cand, int *fallbacks)
{
    clipdex_hit *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    long na = cdx_vec_topk(ctx_for(nt), m, n, dim, q, k, thr, a);
    cdx_q8_set s8 = {qm->c, qm->scale, qm->max_scale, qm->max_l1, n_cand};
    int fb;
    size_t cand;
    long nb = cdx_vec_topk_q8(ctx_for(nt), &s8, m, n, dim, q, k, thr, b, &fb, &cand);
    int ok = na == nb && na >= 0;
    for (long i = 0; ok && i < na; i++) ok = a[i].row == b[i].row && a[i].score == b[i].score;
    *fallbacks += fb;
    free(a);
    free(b);
    return ok;
}

/* The path's int8 and float32 kernels against the references on 1..9 rows
 * of odd and aligned dimensions (the extremes +-127 included); the float32
 * dot of a row alone equals the same row scored in a block. */
static void test_kernel8(void)
{
    enum { R = 9, D = 300 };
    static int8_t a[R * D], b[D];
    static float x[R * D], y[D];
    for (int i = 0; i < R * D; i++) a[i] = (int8_t)(lrintf(frand() * 254)), x[i] = frand();
    for (int i = 0; i < D; i++) b[i] = (int8_t)(lrintf(frand() * 254)), y[i] = frand();
    a[0] = 127;
    b[0] = -127;
    int bad = 0, badf = 0, alone = 0;
    for (size_t rows = 1; rows <= R; rows += 2)
        for (size_t d = 1; d <= D / 1; d += (d < 64 ? 7 : 29)) {
            int32_t got[R], want[R];
            float f[R], fr[R];
            g_kern->vec_dot8(a, rows, d, b, got);
            cdx_vec_dot8_ref(a, rows, d, b, want);
            g_kern->vec_dot(x, rows, d, y, f);
            cdx_vec_dot_ref(x, rows, d, y, fr);
            for (size_t r = 0; r < rows; r++) {
                bad += got[r] != want[r];
                badf += !(fabsf(f[r] - fr[r]) <= 1e-5f * (float)d);
                float one;
                g_kern->vec_dot(x + r * d, 1, d, y, &one);
                alone += one != f[r];
            }
        }
    for (size_t d = 32; d <= 256; d += 32) { /* the four-row path */
        int32_t got[8], want[8];
        g_kern->vec_dot8(a, 8, d, b, got);
        cdx_vec_dot8_ref(a, 8, d, b, want);
        for (int r = 0; r < 8; r++) bad += got[r] != want[r];
    }
    CHECK(bad == 0, "%d sums where the %s int8 kernel differs from the scalar one", bad, g_kern->name);
    CHECK(badf == 0, "%d float32 dots where %s is off the scalar one by > 1e-5 d", badf, g_kern->name);
    CHECK(alone == 0, "%d rows whose %s float32 dot alone differs from in a block", alone, g_kern->name);
}

static void test_random(size_t n, size_t dim)
{
    float *m = malloc(n * dim * sizeof *m), *q = malloc(dim * sizeof *q);
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < dim; i++) m[r * dim + i] = frand();
        unit(m + r * dim, dim);
    }
    qmat qm;
    quantize(m, n, dim, &qm);
    int bad = 0, fb = 0, runs = 0;
    const size_t ks[] = {1, 10, 100};
    for (int t = 0; t < 12; t++) {
        if (t < 6) { /* a random query */
            for (size_t i = 0; i < dim; i++) q[i] = frand();
        } else { /* near an indexed row: a clear winner */
            for (size_t i = 0; i < dim; i++) q[i] = m[(size_t)t * 97 * dim + i] + 0.1f * frand();
        }
        unit(q, dim);
        for (int ki = 0; ki < 3; ki++)
            for (int nt = 1; nt <= 3; nt++) {
                bad += !same(m, &qm, n, dim, q, ks[ki], -INFINITY, nt, 1024, &fb);
                runs++;
            }
        bad += !same(m, &qm, n, dim, q, 10, 0.15f, 2, 1024, &fb);
        runs++;
    }
    CHECK(bad == 0, "%d of %d searches (n %zu, dim %zu) differ from the float32 scan", bad, runs, n,
          dim);
    if (dim >= 256) /* a clear gap: the bound proves most of them */
        CHECK(fb < runs / 2, "%d of %d searches fell back (n %zu, dim %zu)", fb, runs, n, dim);
    free(qm.c);
    free(qm.scale);
    free(m);
    free(q);
}

/* n unit rows within 1e-3 of one random centre (written to base), rows 100
 * and 200 equal: the hard case for every bound. */
static float *clustered(size_t n, size_t dim, float *base)
{
    float *m = malloc(n * dim * sizeof *m);
    for (size_t i = 0; i < dim; i++) base[i] = frand();
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < dim; i++) m[r * dim + i] = base[i] + 1e-3f * frand();
        unit(m + r * dim, dim);
    }
    memcpy(m + 100 * dim, m + 200 * dim, dim * sizeof *m); /* an exact tie */
    return m;
}

/* Rows that differ by less than the quantization error: the int8 order is
 * unreliable, so the bound must refuse and the fallback keep it exact. */
static void test_clustered(void)
{
    size_t n = 6000, dim = 64;
    float *q = malloc(dim * sizeof *q), *base = malloc(dim * sizeof *base), *m = clustered(n, dim, base);
    qmat qm;
    quantize(m, n, dim, &qm);
    int bad = 0, fb = 0;
    for (int t = 0; t < 4; t++) {
        for (size_t i = 0; i < dim; i++) q[i] = base[i] + 0.01f * frand();
        unit(q, dim);
        bad += !same(m, &qm, n, dim, q, 10, -INFINITY, 2, 256, &fb);
        bad += !same(m, &qm, n, dim, q, 1, -INFINITY, 1, 64, &fb);
    }
    memcpy(q, m + 200 * dim, dim * sizeof *q);
    bad += !same(m, &qm, n, dim, q, 2, -INFINITY, 1, 64, &fb); /* rows 100 and 200 tie */
    CHECK(bad == 0, "%d clustered searches differ from the float32 scan", bad);
    CHECK(fb > 0, "the clustered searches never fell back (the bound is not checked)");
    /* candidates cover every row: no bound needed */
    bad = 0;
    bad += !same(m, &qm, 500, dim, q, 5, -INFINITY, 2, 500, &fb);
    CHECK(bad == 0, "all-candidates search differs");
    free(qm.c);
    free(qm.scale);
    free(m);
    free(q);
    free(base);
}

/* ---- the 4-bit stage ---- */

typedef struct qmat4 {
    uint8_t *c;
    clipdex_vec_q4_info *info;
} qmat4;

static void quantize4(const float *m, size_t n, size_t dim, qmat4 *q)
{
    size_t rb = clipdex_vec_q4_row_bytes(dim);
    q->c = malloc(n * rb);
    q->info = malloc(n * sizeof *q->info);
    for (size_t r = 0; r < n; r++) clipdex_vec_q4_row(m + r * dim, dim, q->c + r * rb, &q->info[r]);
}

static void test_kernel4(void)
{
    size_t dmax = 1024 + 64;
    uint8_t c[4 * 544];
    int8_t p[1088];
    for (size_t i = 0; i < sizeof c; i++) c[i] = (uint8_t)(lrintf((frand() + 0.5f) * 255));
    for (size_t i = 0; i < dmax; i++) p[i] = (int8_t)(lrintf(frand() * 254));
    for (size_t i = 0; i < 32; i++) { /* the extremes: nibble 15 against +-127 */
        c[i] = 0xFF;
        p[i] = 127;
        p[i + 32] = -127;
    }
    int bad = 0;
    for (size_t dp = 64; dp <= dmax; dp += 64)
        for (size_t rows = 1; rows <= 4; rows++) {
            size_t rb = dp / 2;
            int32_t d[4], want[4];
            g_kern->vec_dot4(c, rows, rb, p, d);
            for (size_t r = 0; r < rows; r++) {
                cdx_vec_dot4_ref(c + r * rb, 1, rb, p, &want[r]);
                bad += d[r] != want[r];
            }
        }
    CHECK(bad == 0, "%d sums where the %s 4-bit kernel differs from the scalar one", bad, g_kern->name);
    /* the layout: code of dimension i at cdx_q4_byte(i), shifted by cdx_q4_shift(i) */
    float x[100];
    for (int i = 0; i < 100; i++) x[i] = frand();
    uint8_t cc[64];
    clipdex_vec_q4_info ri;
    clipdex_vec_q4_row(x, 100, cc, &ri);
    double r2 = 0, n2 = 0;
    for (size_t i = 0; i < 100; i++) {
        int code = (int)((cc[cdx_q4_byte(i)] >> cdx_q4_shift(i)) & 15) - 8;
        double v = (double)ri.scale * code;
        n2 += v * v;
        r2 += (x[i] - v) * (x[i] - v);
    }
    for (size_t i = 100; i < 128; i++) bad += ((cc[cdx_q4_byte(i)] >> cdx_q4_shift(i)) & 15) != 8;
    CHECK(bad == 0, "4-bit padding codes are not 0");
    CHECK(ri.norm >= sqrt(n2) && ri.norm <= sqrt(n2) * 1.0001, "4-bit norm %g, decoded %g",
          (double)ri.norm, sqrt(n2));
    CHECK(ri.resid >= sqrt(r2) && ri.resid <= sqrt(r2) * 1.0001 + 1e-9, "4-bit resid %g, actual %g",
          (double)ri.resid, sqrt(r2));
    CHECK(sqrt(r2) < 0.15 * sqrt(n2), "4-bit residual %g is large for norm %g", sqrt(r2), sqrt(n2));
}

/* The bound itself: u(r) >= the float32 score of every row. */
static int bound_violations(const float *m, const qmat4 *qm, size_t n, size_t dim, const float *q)
{
    size_t rb = clipdex_vec_q4_row_bytes(dim);
    int8_t *p = calloc(2 * rb, 1);
    scan4_job j;
    memset(&j, 0, sizeof j);
    j.info = qm->info;
    q4_job_init(&j, q, dim, p);
    int bad = 0;
    for (size_t r = 0; r < n; r++) {
        int32_t raw;
        float s;
        cdx_vec_dot4_ref(qm->c + r * rb, 1, rb, p, &raw);
        float u = q4_upper(&j, r, raw);
        g_kern->vec_dot(m + r * dim, 1, dim, q, &s);
        bad += !(u >= s);
    }
    free(p);
    return bad;
}

/* Runs cdx_vec_topk and cdx_vec_topk_q4 (cascading to q8 when given); 1 if identical. */
static int same4(const float *m, const qmat4 *q4, const qmat *qm, size_t n, size_t dim,
                 const float *q, size_t k, float thr, int nt, size_t n_cand, int stages[33])
{
    clipdex_hit *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    long na = cdx_vec_topk(ctx_for(nt), m, n, dim, q, k, thr, a);
    cdx_q8_set s8 = {0};
    if (qm) s8 = (cdx_q8_set){qm->c, qm->scale, qm->max_scale, qm->max_l1, n_cand};
    clipdex_search_stats st;
    long nb = cdx_vec_topk_q4(ctx_for(nt), q4->c, q4->info, m, n, dim, q, k, thr, n_cand, qm ? &s8 : NULL, b, &st);
    int ok = na == nb && na >= 0;
    for (long i = 0; ok && i < na; i++) ok = a[i].row == b[i].row && a[i].score == b[i].score;
    stages[st.stage]++;
    free(a);
    free(b);
    return ok;
}

static void test_q4_random(size_t n, size_t dim)
{
    float *m = malloc(n * dim * sizeof *m), *q = malloc(dim * sizeof *q);
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < dim; i++) m[r * dim + i] = frand();
        unit(m + r * dim, dim);
    }
    qmat qm;
    qmat4 q4;
    quantize(m, n, dim, &qm);
    quantize4(m, n, dim, &q4);
    int bad = 0, viol = 0, runs = 0, stages[33] = {0};
    const size_t ks[] = {1, 10, 100};
    for (int t = 0; t < 12; t++) {
        if (t < 6) {
            for (size_t i = 0; i < dim; i++) q[i] = frand();
        } else {
            for (size_t i = 0; i < dim; i++) q[i] = m[(size_t)t * 97 * dim + i] + 0.1f * frand();
        }
        unit(q, dim);
        viol += bound_violations(m, &q4, n, dim, q);
        for (int ki = 0; ki < 3; ki++)
            for (int nt = 1; nt <= 3; nt++) {
                bad += !same4(m, &q4, &qm, n, dim, q, ks[ki], -INFINITY, nt, 1024, stages);
                bad += !same4(m, &q4, NULL, n, dim, q, ks[ki], -INFINITY, nt, 300, stages);
                runs += 2;
            }
        bad += !same4(m, &q4, &qm, n, dim, q, 10, 0.15f, 2, 1024, stages);
        bad += !same4(m, &q4, NULL, n, dim, q, 10, 0.5f, 1, 64, stages);
        runs += 2;
    }
    CHECK(viol == 0, "%d rows whose 4-bit upper bound is below their float32 score (n %zu, dim %zu)",
          viol, n, dim);
    CHECK(bad == 0, "%d of %d 4-bit searches (n %zu, dim %zu) differ from the float32 scan", bad,
          runs, n, dim);
    if (dim >= 256) /* a clear winner: the 4-bit bound proves those */
        CHECK(stages[4] >= runs / 4, "only %d of %d 4-bit searches were proven (n %zu, dim %zu)",
              stages[4], runs, n, dim);
    free(qm.c);
    free(qm.scale);
    free(q4.c);
    free(q4.info);
    free(m);
    free(q);
}

/* Near-duplicate rows: the 4-bit bound cannot separate them; the cascade
 * must answer through the int8 stage or the scan, still exactly. */
static void test_q4_clustered(void)
{
    size_t n = 6000, dim = 64;
    float *q = malloc(dim * sizeof *q), *base = malloc(dim * sizeof *base), *m = clustered(n, dim, base);
    qmat qm;
    qmat4 q4;
    quantize(m, n, dim, &qm);
    quantize4(m, n, dim, &q4);
    int bad = 0, viol = 0, stages[33] = {0};
    for (int t = 0; t < 4; t++) {
        for (size_t i = 0; i < dim; i++) q[i] = base[i] + 0.01f * frand();
        unit(q, dim);
        viol += bound_violations(m, &q4, n, dim, q);
        bad += !same4(m, &q4, &qm, n, dim, q, 10, -INFINITY, 2, 256, stages);
        bad += !same4(m, &q4, NULL, n, dim, q, 1, -INFINITY, 1, 64, stages);
    }
    memcpy(q, m + 200 * dim, dim * sizeof *q);
    bad += !same4(m, &q4, &qm, n, dim, q, 2, -INFINITY, 1, 64, stages); /* rows 100 and 200 tie */
    bad += !same4(m, &q4, &qm, 500, dim, q, 5, -INFINITY, 2, 500, stages); /* all candidates */
    CHECK(viol == 0, "%d clustered rows violate the 4-bit bound", viol);
    CHECK(bad == 0, "%d clustered 4-bit searches differ from the float32 scan", bad);
    CHECK(stages[8] + stages[32] > 0, "the clustered 4-bit searches never fell back");
    free(qm.c);
    free(qm.scale);
    free(q4.c);
    free(q4.info);
    free(m);
    free(q);
    free(base);
}

/* CLIPDEX_TEST_QUICK=1 (emulated runs, where float code is very slow):
 * the kernels against the references and one small search per stage. */
static void run_path(void)
{
    test_kernel4();
    test_kernel8();
    const char *quick = getenv("CLIPDEX_TEST_QUICK");
    if (quick && quick[0] == '1') {
        test_q4_random(3000, 100);
        test_random(3000, 37);
        return;
    }
    test_q4_random(20000, 512);
    test_q4_random(5000, 37);
    test_q4_random(3000, 100);
    test_q4_clustered();
    test_random(20000, 512);
    test_random(5000, 37);
    test_random(3000, 8);
    test_clustered();
}

int main(void)
{
    for (int nt = 1; nt <= 3; nt++) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = nt;
        if (clipdex_ctx_new(&g_ctx[nt], &p)) {
            CHECK(0, "cannot make a %d-thread context", nt);
            return check_done("test_vecscan");
        }
    }
    for (int isa = 0; isa < CDX_ISA_COUNT; isa++) {
        g_kern = cdx_kernels_for(isa);
        if (!g_kern) {
            SKIP("the %s path: this CPU lacks it", cdx_isa_name(isa));
            continue;
        }
        fprintf(stderr, "test_vecscan: path %s\n", g_kern->name);
        rng = 12345;
        run_path();
    }
    for (int nt = 1; nt <= 3; nt++) clipdex_ctx_free(g_ctx[nt]);
    return check_done("test_vecscan");
}
