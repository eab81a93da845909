/*
 * test_vecscan.c - the vector scan behind `clipdex search` (app/vecscan.c,
 * compiled in here): the int8 dot kernel against its scalar reference, and
 * the two-stage search (int8 scan + float32 re-rank) against the exact
 * float32 scan - identical hits, scores and order - on random and on
 * clustered data (where the error bound must send it to the fallback), for
 * several k, thresholds, thread counts and odd dimensions.
 */
#include "../app/vecscan.c"

#include "check.h"

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
    vec_q8_bounds b;
} qmat;

static void quantize(const float *m, size_t n, size_t dim, qmat *q)
{
    q->c = malloc(n * dim);
    q->scale = malloc(n * sizeof *q->scale);
    q->b.max_scale = q->b.max_l1 = 0;
    for (size_t r = 0; r < n; r++) {
        vec_q8_row(m + r * dim, dim, q->c + r * dim, &q->scale[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (q->scale[r] > q->b.max_scale) q->b.max_scale = q->scale[r];
        if (l1 > q->b.max_l1) q->b.max_l1 = (float)l1;
    }
}

/* Runs both searches; returns 1 if identical. Counts fallbacks. */
static int same(const float *m, const qmat *qm, size_t n, size_t dim, const float *q, size_t k,
                float thr, int nt, size_t n_cand, int *fallbacks)
{
    vec_hit *a = malloc(k * sizeof *a), *b = malloc(k * sizeof *b);
    long na = vec_topk(m, n, dim, q, k, thr, nt, a);
    vec_q8_stats st;
    long nb = vec_topk_q8(qm->c, qm->scale, qm->b, m, n, dim, q, k, thr, nt, n_cand, b, &st);
    int ok = na == nb && na >= 0;
    for (long i = 0; ok && i < na; i++) ok = a[i].row == b[i].row && a[i].score == b[i].score;
    *fallbacks += st.fallback;
    free(a);
    free(b);
    return ok;
}

static void test_kernel8(void)
{
    int8_t a[300], b[300];
    for (int i = 0; i < 300; i++) {
        a[i] = (int8_t)(lrintf(frand() * 254));
        b[i] = (int8_t)(lrintf(frand() * 254));
    }
    a[0] = 127;
    b[0] = -127;
    dot8_fn k = pick_kernel8(NULL);
    int bad = 0;
    for (size_t d = 1; d <= 300; d += 7) bad += k(a, b, d) != dot8_scalar(a, b, d);
    CHECK(bad == 0, "%d dimensions where the %s int8 kernel differs from the scalar one", bad,
          vec_q8_kernel_name());
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

/* Rows that differ by less than the quantization error: the int8 order is
 * unreliable, so the bound must refuse and the fallback keep it exact. */
static void test_clustered(void)
{
    size_t n = 6000, dim = 64;
    float *m = malloc(n * dim * sizeof *m), *q = malloc(dim * sizeof *q), *base = malloc(dim * sizeof *base);
    for (size_t i = 0; i < dim; i++) base[i] = frand();
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < dim; i++) m[r * dim + i] = base[i] + 1e-3f * frand();
        unit(m + r * dim, dim);
    }
    memcpy(m + 100 * dim, m + 200 * dim, dim * sizeof *m); /* an exact tie */
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

int main(void)
{
    test_kernel8();
    test_random(20000, 512);
    test_random(5000, 37);
    test_random(3000, 8);
    test_clustered();
    return check_done("test_vecscan");
}
