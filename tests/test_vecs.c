/*
 * test_vecs.c - the public vector search (clipdex_vecs_*, clipdex_vec_*):
 * hits against an independent double-precision brute force (same rows in
 * the same order where the scores are apart by more than the float32
 * rounding, scores within 1e-5), every stage (exact, staged with the
 * copies built by the handle, staged with borrowed copies, int8 only)
 * giving the exact stage's hits bit for bit on every kernel path through
 * CLIPDEX_ISA, thresholds, k above n, an empty set, and the argument errors
 * (NULL, zero or huge dim, copies given in part, unknown stage).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "clipdex.h"

#include "check.h"

static unsigned rng = 777;
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

/* rows near 50 centres, so that a query has clear and close neighbours */
static float *make_rows(size_t n, size_t dim)
{
    float *m = malloc(n * dim * sizeof *m), *c = malloc(50 * dim * sizeof *c);
    for (size_t i = 0; i < 50 * dim; i++) c[i] = frand();
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < dim; i++) m[r * dim + i] = c[(r % 50) * dim + i] + 0.3f * frand();
        unit(m + r * dim, dim);
    }
    free(c);
    return m;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const double *)a)[0], y = ((const double *)b)[0];
    return x > y ? -1 : x < y ? 1 : 0;
}

/* The hits against double-precision scores: ranks agree except within
 * float rounding of a neighbour, scores within 1e-5. Returns mismatches. */
static int against_double(const float *m, size_t n, size_t dim, const float *q, const clipdex_hit *h,
                          size_t nh, size_t k)
{
    double *s = malloc(n * 2 * sizeof *s);
    for (size_t r = 0; r < n; r++) {
        double d = 0;
        for (size_t i = 0; i < dim; i++) d += (double)m[r * dim + i] * q[i];
        s[2 * r] = d, s[2 * r + 1] = (double)r;
    }
    qsort(s, n, 2 * sizeof *s, cmp_desc);
    int bad = nh != (k < n ? k : n);
    for (size_t i = 0; !bad && i < nh; i++) {
        double want = s[2 * i];
        bad += fabs(h[i].score - want) > 1e-5;
        int close = (i > 0 && fabs(s[2 * i - 2] - want) < 1e-5) || (i + 1 < n && fabs(s[2 * i + 2] - want) < 1e-5);
        bad += !close && h[i].row != (uint32_t)s[2 * i + 1];
    }
    free(s);
    return bad;
}

static int same_hits(const clipdex_hit *a, size_t na, const clipdex_hit *b, size_t nb)
{
    if (na != nb) return 0;
    for (size_t i = 0; i < na; i++)
        if (a[i].row != b[i].row || a[i].score != b[i].score) return 0;
    return 1;
}

static void test_search(clipdex_ctx *ctx, size_t n, size_t dim)
{
    float *m = make_rows(n, dim), *q = malloc(dim * sizeof *q);
    clipdex_vecs_data d = {m, n, dim, NULL, NULL, 0, 0, NULL, NULL};
    clipdex_vecs *plain = NULL, *built = NULL, *borrowed = NULL, *only8 = NULL;
    CHECK(clipdex_vecs_new(ctx, &d, 0, &plain) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_vecs_new(ctx, &d, 1, &built) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    /* borrowed copies made with the row functions */
    size_t rb = clipdex_vec_q4_row_bytes(dim);
    int8_t *c8 = malloc(n * dim);
    float *sc = malloc(n * sizeof *sc), mx = 0, l1max = 0;
    uint8_t *c4 = malloc(n * rb);
    clipdex_vec_q4_info *info = malloc(n * sizeof *info);
    for (size_t r = 0; r < n; r++) {
        clipdex_vec_q8_row(m + r * dim, dim, c8 + r * dim, &sc[r]);
        clipdex_vec_q4_row(m + r * dim, dim, c4 + r * rb, &info[r]);
        double l1 = 0;
        for (size_t i = 0; i < dim; i++) l1 += fabs(m[r * dim + i]);
        if (sc[r] > mx) mx = sc[r];
        if (l1 > l1max) l1max = (float)(l1 * (1 + 1e-6));
    }
    clipdex_vecs_data db = {m, n, dim, c8, sc, mx, l1max, c4, info};
    clipdex_vecs_data d8 = {m, n, dim, c8, sc, mx, l1max, NULL, NULL};
    CHECK(clipdex_vecs_new(ctx, &db, 0, &borrowed) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_vecs_new(ctx, &d8, 0, &only8) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_vecs_count(built) == n, "count %zu", clipdex_vecs_count(built));
    const size_t ks[] = {1, 10, 50};
    int bad_ref = 0, bad_stage = 0, staged_answers = 0, runs = 0;
    clipdex_hit *a = malloc(50 * sizeof *a), *b = malloc(50 * sizeof *b);
    for (int t = 0; t < 8; t++) {
        for (size_t i = 0; i < dim; i++) q[i] = m[(size_t)(t * 131 % n) * dim + i] + 0.2f * frand();
        unit(q, dim);
        for (int ki = 0; ki < 3; ki++) {
            clipdex_search_params p = clipdex_search_params_default();
            p.k = ks[ki];
            p.stage = CLIPDEX_SEARCH_EXACT;
            size_t na = 0, nb = 0;
            CHECK(clipdex_vecs_search(ctx, plain, q, &p, a, &na, NULL) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
            bad_ref += against_double(m, n, dim, q, a, na, p.k);
            p.stage = CLIPDEX_SEARCH_STAGED;
            p.q8_candidates = p.q4_candidates = 200;
            clipdex_vecs *vs[3] = {built, borrowed, only8};
            for (int v = 0; v < 3; v++) {
                clipdex_search_stats st;
                CHECK(clipdex_vecs_search(ctx, vs[v], q, &p, b, &nb, &st) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
                bad_stage += !same_hits(a, na, b, nb);
                staged_answers += st.stage != 32;
                runs++;
            }
        }
    }
    CHECK(bad_ref == 0, "%d exact searches (n %zu, dim %zu) disagree with the double-precision scores", bad_ref, n, dim);
    CHECK(bad_stage == 0, "%d of %d staged searches differ from the exact one", bad_stage, runs);
    CHECK(staged_answers > 0, "no staged search was answered by a compact stage (n %zu, dim %zu)", n, dim);
    /* threshold, k above n */
    clipdex_search_params p = clipdex_search_params_default();
    p.k = 50;
    p.threshold = 0.9f;
    size_t na = 0, lo = 0, hi = 0; /* rows surely above, possibly above */
    for (size_t r = 0; r < n; r++) {
        double s = 0;
        for (size_t i = 0; i < dim; i++) s += (double)m[r * dim + i] * q[i];
        lo += s >= 0.9 + 1e-5, hi += s >= 0.9 - 1e-5;
    }
    CHECK(clipdex_vecs_search(ctx, built, q, &p, a, &na, NULL) == CLIPDEX_OK, "threshold search");
    int below = 0;
    for (size_t i = 0; i < na; i++) below += !(a[i].score >= 0.9f);
    CHECK(below == 0 && na >= (lo < 50 ? lo : 50) && na <= (hi < 50 ? hi : 50) && hi < n,
          "%d hits below the threshold of %zu (%zu to %zu rows above)", below, na, lo, hi);
    clipdex_vecs_free(plain);
    clipdex_vecs_free(built);
    clipdex_vecs_free(borrowed);
    clipdex_vecs_free(only8);
    free(a), free(b), free(c8), free(sc), free(c4), free(info), free(m), free(q);
}

static void test_small_and_errors(clipdex_ctx *ctx)
{
    float m[3 * 4] = {1, 0, 0, 0, 0, 1, 0, 0, 0.6f, 0.8f, 0, 0}, q[4] = {0, 1, 0, 0};
    clipdex_vecs_data d = {m, 3, 4, NULL, NULL, 0, 0, NULL, NULL};
    clipdex_vecs *v = NULL;
    CHECK(clipdex_vecs_new(ctx, &d, 1, &v) == CLIPDEX_OK, "%s", clipdex_ctx_errmsg(ctx));
    clipdex_hit h[5];
    size_t n = 99;
    clipdex_search_params p = clipdex_search_params_default();
    p.k = 5;
    CHECK(clipdex_vecs_search(ctx, v, q, &p, h, &n, NULL) == CLIPDEX_OK, "small search");
    CHECK(n == 3 && h[0].row == 1 && h[1].row == 2 && h[2].row == 0, "small: %zu hits, rows %u %u %u", n,
          h[0].row, h[1].row, h[2].row);
    CHECK(h[0].score == 1.0f && fabsf(h[1].score - 0.8f) < 1e-7f && h[2].score == 0.0f, "small scores");
    p.stage = 7;
    CHECK(clipdex_vecs_search(ctx, v, q, &p, h, &n, NULL) == CLIPDEX_E_ARG, "unknown stage accepted");
    CHECK(strstr(clipdex_ctx_errmsg(ctx), "stage") != NULL, "message '%s'", clipdex_ctx_errmsg(ctx));
    CHECK(clipdex_vecs_search(ctx, v, NULL, NULL, h, &n, NULL) == CLIPDEX_E_ARG, "NULL query accepted");
    clipdex_vecs_free(v);
    /* an empty set */
    clipdex_vecs_data e = {NULL, 0, 4, NULL, NULL, 0, 0, NULL, NULL};
    CHECK(clipdex_vecs_new(ctx, &e, 1, &v) == CLIPDEX_OK, "empty set: %s", clipdex_ctx_errmsg(ctx));
    n = 99;
    CHECK(clipdex_vecs_search(ctx, v, q, NULL, h, &n, NULL) == CLIPDEX_OK && n == 0, "empty: %zu hits", n);
    clipdex_vecs_free(v);
    clipdex_vecs_free(NULL);
    /* refused descriptions */
    clipdex_vecs_data bad[4] = {d, d, d, d};
    bad[0].dim = 0;
    bad[1].dim = 1u << 17;
    bad[2].q8 = (const int8_t *)m; /* codes without scales */
    bad[3].q4_info = (const clipdex_vec_q4_info *)m; /* infos without codes */
    for (int i = 0; i < 4; i++) {
        v = (clipdex_vecs *)1;
        int rc = clipdex_vecs_new(ctx, &bad[i], 0, &v);
        CHECK(rc == CLIPDEX_E_ARG && v == NULL, "description %d: status %d", i, rc);
        CHECK(clipdex_ctx_errmsg(ctx)[0] != '\0', "description %d: no message", i);
    }
    CHECK(clipdex_vecs_new(ctx, NULL, 0, &v) == CLIPDEX_E_ARG, "NULL data accepted");
}

int main(void)
{
    const char *paths[] = {"scalar", "avx2", "avx-vnni", "avx512", "neon", "neon-dot", "best"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        setenv("CLIPDEX_ISA", paths[i], 1);
        clipdex_ctx_params cp = clipdex_ctx_params_default();
        cp.n_threads = 2;
        clipdex_ctx *ctx = NULL;
        if (clipdex_ctx_new(&ctx, &cp) != CLIPDEX_OK) {
            CHECK(0, "no context for CLIPDEX_ISA=%s", paths[i]);
            continue;
        }
        if (strcmp(paths[i], "best") != 0 && strcmp(clipdex_ctx_isa(ctx), paths[i]) != 0) {
            SKIP("the %s path: this CPU lacks it", paths[i]);
            clipdex_ctx_free(ctx);
            continue;
        }
        test_small_and_errors(ctx);
        test_search(ctx, 3000, 64);
        test_search(ctx, 2000, 37);
        clipdex_ctx_free(ctx);
    }
    return check_done("test_vecs");
}
