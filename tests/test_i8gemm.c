/*
 * test_i8gemm.c - the I8P product (per-row int8 weights and activations,
 * src/tensor/qgemm.h): the quantizer and packing against a layout reader and
 * a rounding rule written here from the format text; every path's
 * activation quantizer == the reference bitwise (zero, tiny, NaN and inf
 * rows too); the reference product == the exact integer definition
 * evaluated here in double; every path's tile == the reference bitwise on
 * odd shapes, any row and column tiling, bias and ACCUM, and rows alone;
 * extreme weights and activations (no saturation); error against the fp32
 * product. Paths the CPU lacks are reported as skipped.
 */
#include <float.h>
#include <stdint.h>

#include "check.h"
#include "core/core.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"
#include "tensor/qgemm.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint32_t urand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}
static float frand(void) { return (float)(urand() >> 8) / (float)(1u << 24) * 2.0f - 1.0f; }
static void fill(float *p, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
}

/* From the layout text in ops.h: panel j/16 at (j/16)(64 + 16k); its scales
 * first, then byte 64 + 64 (p/4) + 4 (j%16) + p%4 = 128 + q. */
static int q_at(const uint8_t *P, size_t k, size_t j, size_t p)
{
    return (int)P[(j / 16) * (64 + 16 * k) + 64 + 64 * (p / 4) + 4 * (j % 16) + p % 4] - 128;
}
static float d_at(const uint8_t *P, size_t k, size_t j)
{
    float d;
    memcpy(&d, P + (j / 16) * (64 + 16 * k) + 4 * (j % 16), 4);
    return d;
}

static void test_pack(void)
{
    static const size_t ns[] = {1, 15, 16, 17, 40}, ks[] = {32, 96, 768};
    CHECK(cdx_i8p_bytes(17, 64) == 2 * (64 + 16 * 64) && cdx_i8p_bytes(16, 48) == 0 &&
              cdx_i8p_bytes(1, CDX_I8_KMAX + 32) == 0 && cdx_wmat_bytes(CDX_W_I8P, 33, 32) == 3 * (64 + 512),
          "I8P sizes");
    CHECK(strcmp(cdx_wtype_name(CDX_W_I8P), "I8_P16") == 0 && cdx_wtype_is_packed(CDX_W_I8P) &&
              cdx_wtype_row_bytes(CDX_W_I8, 64) == 0 && cdx_wtype_packed_of(CDX_W_I8) == CDX_W_I8P,
          "I8 is a packed-only type");
    for (size_t ni = 0; ni < 5; ni++)
        for (size_t ki = 0; ki < 3; ki++) {
            size_t n = ns[ni], k = ks[ki], np = (n + 15) / 16;
            float *W = malloc(n * k * 4), *row = malloc(k * 4);
            uint8_t *P = malloc(cdx_i8p_bytes(n, k));
            fill(W, n * k, 0.5f);
            for (size_t p = 0; p < k; p++) W[p] *= 1e4f; /* rows of other scales */
            if (n > 2) memset(W + 2 * k, 0, k * 4);   /* a zero row */
            if (n > 3) W[3 * k + 5] = NAN;           /* a broken row */
            if (n > 4) W[4 * k + k - 1] = 3.0f;      /* its max at the last k, exactly 3 */
            struct cdx_wmat src = cdx_wmat_f32(W);
            CHECK(cdx_wmat_pack(CDX_W_I8P, &src, n, k, P) == 0, "pack %zux%zu", n, k);
            int bad_q = 0, bad_d = 0, bad_deq = 0, bad_pad = 0;
            for (size_t j = 0; j < np * 16; j++) {
                if (j >= n) { /* padding rows */
                    bad_pad += d_at(P, k, j) != 0.0f;
                    for (size_t p = 0; p < k; p++) bad_pad += q_at(P, k, j, p) != 0;
                    continue;
                }
                const float *w = W + j * k;
                double amax = 0;
                int nan = 0;
                for (size_t p = 0; p < k; p++) nan |= !isfinite(w[p]), amax = fmax(amax, fabs(w[p]));
                float d = (float)amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
                if (nan) {
                    bad_d += !isnan(d_at(P, k, j));
                    for (size_t p = 0; p < k; p++) bad_q += q_at(P, k, j, p) != 0;
                    continue;
                }
                bad_d += d_at(P, k, j) != (id != 0.0f ? d : 0.0f);
                cdx_wmat_dequant(&(struct cdx_wmat){CDX_W_I8P, P}, k, j, 0, k, row);
                for (size_t p = 0; p < k; p++) {
                    int want = (int)rintf(w[p] * id); /* round half even */
                    bad_q += q_at(P, k, j, p) != want || want < -127 || want > 127;
                    bad_deq += row[p] != (float)want * d_at(P, k, j);
                }
            }
            CHECK(!bad_q && !bad_d && !bad_deq && !bad_pad,
                  "I8P %zux%zu: %d values, %d scales, %d dequantized, %d padding wrong", n, k, bad_q, bad_d, bad_deq,
                  bad_pad);
            free(W), free(row), free(P);
        }
}

/* The quantizer of path K (NULL: the reference against this file's rule). */
static const struct cdx_kernels *K;

static void test_act(void)
{
    static const size_t ks[] = {32, 64, 96, 768, 3072};
    static const float scales[] = {1.0f, 1e3f, 1e-30f, 1e-38f, 0.0f};
    const int qmaxes[] = {63, 127};
    int cases = 0;
    for (size_t ki = 0; ki < 5; ki++)
        for (int si = 0; si < 5; si++)
            for (int qi = 0; qi < 2; qi++)
                for (int bad = 0; bad < 3; bad++) {
                    size_t k = ks[ki];
                    int qmax = qmaxes[qi];
                    float *x = malloc(k * 4);
                    int8_t *q = malloc(k), *q2 = malloc(k);
                    fill(x, k, scales[si]);
                    if (bad) x[(k * 7) / 11] = bad == 1 ? NAN : -INFINITY;
                    float d, d2;
                    int32_t s, s2;
                    cdx_act_i8_ref(x, k, qmax, q, &d, &s);
                    if (K) {
                        K->act_i8(x, k, qmax, q2, &d2, &s2);
                        CHECK(!memcmp(q, q2, k) && (d == d2 || (isnan(d) && isnan(d2))) && s == s2,
                              "%s act_i8 k %zu scale %g qmax %d bad %d differs from the reference", K->name, k,
                              (double)scales[si], qmax, bad);
                    } else { /* the rule, written again */
                        double amax = 0;
                        long sum = 0;
                        for (size_t p = 0; p < k; p++) amax = fmax(amax, fabs(x[p]));
                        float dd = (float)amax / (float)qmax, id = dd >= FLT_MIN ? 1.0f / dd : 0.0f;
                        int ok = bad ? isnan(d) && s == 0 : d == (id != 0.0f ? dd : 0.0f);
                        for (size_t p = 0; p < k; p++) {
                            int want = bad ? 0 : (int)rintf(x[p] * id);
                            ok &= q[p] == want && abs(want) <= qmax;
                            sum += want;
                        }
                        CHECK(ok && s == sum, "act_i8_ref k %zu scale %g qmax %d bad %d", k, (double)scales[si], qmax,
                              bad);
                    }
                    cases++;
                    free(x), free(q), free(q2);
                }
    printf("act_i8: %d rows on the %s path\n", cases, K ? K->name : "reference");
}

struct qrows {
    int8_t *q;
    float *d;
    int32_t *s;
};

static struct qrows quant_rows(const float *A, size_t m, size_t k, int qmax)
{
    struct qrows a = {malloc(m * k), malloc(m * 4), malloc(m * 4)};
    for (size_t i = 0; i < m; i++) cdx_act_i8_ref(A + i * k, k, qmax, a.q + i * k, a.d + i, a.s + i);
    return a;
}

/* The definition in double from the layout reader: exact integer sums,
 * then the two float roundings of the scale and one of the product. */
static void test_ref_exact(const struct qrows *a, const uint8_t *P, size_t m, size_t n, size_t k, const float *C)
{
    int bad = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            long isum = 0;
            for (size_t p = 0; p < k; p++) isum += (long)a->q[i * k + p] * q_at(P, k, j, p);
            float want = (float)isum * (a->d[i] * d_at(P, k, j));
            bad += C[i * n + j] != want;
        }
    CHECK(bad == 0, "reference %zux%zux%zu: %d outputs differ from the exact definition", m, n, k, bad);
}

static void run_tiles(const struct qrows *a, const void *P, size_t m, size_t n, size_t k, const float *bias, float *C,
                      int act, unsigned flags, size_t rcut)
{
    for (size_t n0 = 0; n0 < n; n0 += 64) {
        size_t n1 = n0 + 64 < n ? n0 + 64 : n;
        for (size_t m0 = 0; m0 < m;) {
            size_t m1 = rcut && m0 < rcut && rcut < m ? rcut : m;
            if (m1 - m0 > CDX_LINEAR_TILE_M) m1 = m0 + CDX_LINEAR_TILE_M;
            K->i8gemm_tile(a->q, a->d, a->s, P, k, bias, C, n, m0, m1, n0, n1, act, flags);
            m0 = m1;
        }
    }
}

static void check_tiles(const struct qrows *a, const uint8_t *P, size_t m, size_t n, size_t k, const float *bias,
                        const float *C0, int *n_bitwise)
{
    float *R = malloc(m * n * 4), *C = malloc(m * n * 4);
    for (int v = 0; v < 3; v++) { /* plain, bias, bias + ACCUM */
        const float *bb = v ? bias : NULL;
        unsigned fl = v == 2 ? CDX_LIN_ACCUM : 0;
        memcpy(R, C0, m * n * 4), memcpy(C, C0, m * n * 4);
        cdx_i8gemm_ref(a->q, a->d, a->s, m, P, n, k, bb, R, n, CDX_ACT_NONE, fl);
        run_tiles(a, P, m, n, k, bb, C, CDX_ACT_NONE, fl, 0);
        CHECK(!memcmp(C, R, m * n * 4), "I8P %zux%zux%zu variant %d: %s tile != reference", m, n, k, v, K->name);
        ++*n_bitwise;
    }
    size_t cuts[] = {1, 3, m / 2 + 1};
    for (int c = 0; c < 3; c++) {
        memcpy(C, C0, m * n * 4);
        run_tiles(a, P, m, n, k, bias, C, CDX_ACT_NONE, CDX_LIN_ACCUM, cuts[c]);
        CHECK(!memcmp(C, R, m * n * 4), "I8P %zux%zux%zu row cut %zu differs", m, n, k, cuts[c]);
    }
    if (m > 2) { /* row 2 alone */
        struct qrows a1 = {a->q + 2 * k, a->d + 2, a->s + 2};
        memcpy(C, C0 + 2 * n, n * 4);
        run_tiles(&a1, P, 1, n, k, bias, C, CDX_ACT_NONE, CDX_LIN_ACCUM, 0);
        CHECK(!memcmp(C, R + 2 * n, n * 4), "I8P %zux%zux%zu: row 2 alone differs", m, n, k);
    }
    if (n > 16 && m > 2) { /* a tile writes only its own rows and columns */
        for (size_t i = 0; i < m * n; i++) C[i] = -7.0f;
        K->i8gemm_tile(a->q, a->d, a->s, P, k, bias, C, n, 1, m - 1, 16, n < 80 ? n : 80, CDX_ACT_NONE, 0);
        int outside = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                if ((i < 1 || i >= m - 1 || j < 16 || j >= 80) && C[i * n + j] != -7.0f) outside++;
        CHECK(outside == 0, "I8P %zux%zux%zu: %d writes outside the tile", m, n, k, outside);
    }
    for (int act = CDX_ACT_QUICK_GELU; act <= CDX_ACT_GELU; act++) {
        memcpy(R, C0, m * n * 4), memcpy(C, C0, m * n * 4);
        cdx_i8gemm_ref(a->q, a->d, a->s, m, P, n, k, bias, R, n, act, CDX_LIN_ACCUM);
        run_tiles(a, P, m, n, k, bias, C, act, CDX_LIN_ACCUM, 0);
        double worst = 0, scale = 1e-6;
        for (size_t i = 0; i < m * n; i++) scale = fmax(scale, fabs(R[i]));
        for (size_t i = 0; i < m * n; i++) worst = fmax(worst, fabs(C[i] - R[i]) / fmax(fabs(R[i]), 1e-2 * scale));
        CHECK(worst <= 1e-5, "I8P %zux%zux%zu act %d: %s rel err %g", m, n, k, act, K->name, worst);
    }
    free(R), free(C);
}

static void test_product(void)
{
    static const size_t ms[] = {1, 2, 3, 5, 6, 7, 13, 50, 97, 481}, ns[] = {1, 16, 17, 33, 64, 130},
                        ks[] = {32, 64, 96, 768, 3072};
    int n_bitwise = 0, qmax = K ? K->qmax_i8 : 127;
    for (size_t ki = 0; ki < 5; ki++)
        for (size_t mi = 0; mi < 10; mi++)
            for (size_t ni = 0; ni < 6; ni++) {
                size_t m = ms[mi], n = ns[ni], k = ks[ki];
                if (k >= 768 && (mi + ni) % 3) continue;
                if (m > 100 && k > 96 && ni % 2) continue;
                size_t bytes = cdx_i8p_bytes(n, k);
                uint8_t *Pbuf = malloc(bytes + 4), *P = Pbuf + ((mi + ni) & 1) * 4; /* unaligned too */
                float *W = malloc(n * k * 4), *A = malloc(m * k * 4), *bias = malloc(n * 4);
                float *C0 = malloc(m * n * 4), *R = malloc(m * n * 4);
                fill(W, n * k, 0.1f), fill(A, m * k, 2.0f), fill(bias, n, 1.0f), fill(C0, m * n, 1.0f);
                for (size_t i = 0; i < m; i += 5)
                    for (size_t p = 0; p < k; p++) A[i * k + p] *= 1000.0f;
                struct cdx_wmat src = cdx_wmat_f32(W);
                cdx_i8p_quant(&src, n, k, P);
                struct qrows a = quant_rows(A, m, k, qmax);
                if (!K) {
                    cdx_i8gemm_ref(a.q, a.d, a.s, m, P, n, k, NULL, R, n, CDX_ACT_NONE, 0);
                    if (k <= 768) test_ref_exact(&a, P, m, n, k, R);
                } else {
                    check_tiles(&a, P, m, n, k, bias, C0, &n_bitwise);
                }
                free(Pbuf), free(W), free(A), free(bias), free(C0), free(R);
                free(a.q), free(a.d), free(a.s);
            }
    if (K) printf("i8gemm: %d bitwise tile/reference comparisons on the %s path\n", n_bitwise, K->name);
}

/* Weights and activations at their extremes (+-127, all sign patterns in a
 * 4-k group), k up to 3072: a saturating pair sum or a wrong offset shows
 * as a difference from the exact integer sum. */
static void test_extremes(void)
{
    const size_t m = 7, n = 32, ks[] = {32, 3072};
    int qmax = K->qmax_i8;
    for (int ki = 0; ki < 2; ki++) {
        size_t k = ks[ki];
        float *W = malloc(n * k * 4), *A = malloc(m * k * 4), *C = malloc(m * n * 4), *R = malloc(m * n * 4);
        uint8_t *P = malloc(cdx_i8p_bytes(n, k));
        for (size_t j = 0; j < n; j++)
            for (size_t p = 0; p < k; p++) W[j * k + p] = ((j >> (p % 4)) ^ (p / 4)) & 1 ? 1.0f : -1.0f;
        for (size_t i = 0; i < m; i++)
            for (size_t p = 0; p < k; p++) A[i * k + p] = (i + p / 4) % 3 ? 1.0f : -1.0f;
        cdx_i8p_quant(&(struct cdx_wmat){CDX_W_F32, W}, n, k, P);
        struct qrows a = quant_rows(A, m, k, qmax);
        run_tiles(&a, P, m, n, k, NULL, C, CDX_ACT_NONE, 0, 0);
        cdx_i8gemm_ref(a.q, a.d, a.s, m, P, n, k, NULL, R, n, CDX_ACT_NONE, 0);
        int bad = memcmp(C, R, m * n * 4) != 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                long isum = 0;
                for (size_t p = 0; p < k; p++) isum += (long)a.q[i * k + p] * q_at(P, k, j, p);
                bad += R[i * n + j] != (float)isum * (a.d[i] * d_at(P, k, j));
            }
        CHECK(!bad && abs(q_at(P, k, 0, 0)) == 127 && abs(a.q[0]) == qmax, "%s extremes k %zu: %d wrong", K->name,
              k, bad);
        free(W), free(A), free(C), free(R), free(P), free(a.q), free(a.d), free(a.s);
    }
}

/* Error of the int8 product against fp32 on Gaussian-like data (k = 768,
 * a ViT-B/32 layer's width): relative RMS over all outputs. */
static void test_accuracy(void)
{
    const size_t m = 50, n = 64, k = 768;
    float *W = malloc(n * k * 4), *A = malloc(m * k * 4), *C = malloc(m * n * 4), *F = malloc(m * n * 4);
    uint8_t *P = malloc(cdx_i8p_bytes(n, k));
    for (size_t i = 0; i < n * k; i++) W[i] = (frand() + frand() + frand()) * 0.05f;
    for (size_t i = 0; i < m * k; i++) A[i] = frand() + frand() + frand();
    cdx_i8p_quant(&(struct cdx_wmat){CDX_W_F32, W}, n, k, P);
    int qmax = K ? K->qmax_i8 : 127;
    struct qrows a = quant_rows(A, m, k, qmax);
    cdx_i8gemm_ref(a.q, a.d, a.s, m, P, n, k, NULL, C, n, CDX_ACT_NONE, 0);
    cdx_linear_ref(A, k, W, NULL, F, n, m, n, k, CDX_ACT_NONE, 0);
    double e2 = 0, f2 = 0;
    for (size_t i = 0; i < m * n; i++) e2 += (C[i] - F[i]) * (double)(C[i] - F[i]), f2 += (double)F[i] * F[i];
    double rel = sqrt(e2 / f2), bound = qmax == 127 ? 0.012 : 0.02;
    printf("i8gemm accuracy (qmax %d): relative RMS error %.4f against fp32\n", qmax, rel);
    CHECK(rel < bound, "I8P qmax %d: relative RMS error %.4f >= %.3f", qmax, rel, bound);
    free(W), free(A), free(C), free(F), free(P), free(a.q), free(a.d), free(a.s);
}

int main(void)
{
    test_pack();
    K = NULL;
    test_act();
    test_product();
    test_accuracy();
    for (int isa = CDX_ISA_SCALAR + 1; isa < CDX_ISA_COUNT; isa++) {
        K = cdx_kernels_for(isa);
        if (!K) {
            SKIP("%s path: the CPU lacks it", cdx_isa_name(isa));
            continue;
        }
        test_act();
        test_product();
        test_extremes();
        test_accuracy();
    }
    return check_done("test_i8gemm");
}
