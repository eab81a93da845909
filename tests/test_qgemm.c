/*
 * test_qgemm.c - the integer GEMM (src/tensor/qgemm*.c): Q8P/Q4P packing
 * against cdx_dequant_row through an unpacker written here from the format
 * text; activation quantization AVX2 == reference bitwise with its bounds;
 * the reference product against a double-precision evaluation of the same
 * definition; the AVX2 tile == reference bitwise (act NONE, bias, ACCUM) on
 * odd shapes and any row/column tiling, activations to 1e-5; accuracy of
 * int8 activations against the fp32 product.
 */
#include <float.h>
#include <stdint.h>

#include "check.h"
#include "core/core.h"
#include "core/cpu.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"
#include "tensor/qgemm.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;
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

/* The kernel path under test (every SIMD path the CPU has, in turn); NULL
 * while only the references are tested. */
static const struct cdx_kernels *K;
static int simd(void) { return K != NULL; }
static int qmax_of(int wt) { return K ? K->qmax[wt == CDX_QP_Q8 ? 0 : 1] : cdx_qp_act_max(wt); }

/* From the format text in qgemm.h, independently of qgemm.c: the integer
 * value and scale of row j at k index x. */
static int ref_val(int wtype, const uint8_t *Wp, size_t k, size_t j, size_t x, float *d)
{
    size_t nb = k / 32, q = j / 16, r = j % 16, b = x / 32, g = (x % 32) / 4, e = x % 4;
    size_t bs = wtype == CDX_QP_Q8 ? 576 : 320;
    const uint8_t *blk = Wp + q * nb * bs + b * bs;
    memcpy(d, blk + 4 * r, 4);
    if (wtype == CDX_QP_Q8) return (int8_t)blk[64 + g * 64 + r * 4 + e];
    uint8_t byte = blk[64 + g * 32 + (r % 8) * 4 + e];
    return (r < 8 ? byte & 15 : byte >> 4) - 8;
}

/* Random ggml rows: Q8_0 with raw random int8 (including -128) and random
 * finite f16 scales, or quantized from random floats via cdx_quant_row. */
static void make_rows(int wtype, size_t n, size_t k, uint8_t *rows, int raw)
{
    int t = wtype == CDX_QP_Q8 ? CDX_W_Q8_0 : CDX_W_Q4_0;
    size_t rb = cdx_wtype_row_bytes(t, k);
    if (raw) {
        for (size_t i = 0; i < n * rb; i++) rows[i] = (uint8_t)urand();
        for (size_t j = 0; j < n; j++)
            for (size_t b = 0; b < k / 32; b++) {
                uint8_t *blk = rows + j * rb + b * cdx_wtype_block_bytes(t);
                uint16_t h = cdx_float_to_half(frand() * 0.05f);
                blk[0] = (uint8_t)h, blk[1] = (uint8_t)(h >> 8);
            }
        return;
    }
    float *x = malloc(k * sizeof *x);
    for (size_t j = 0; j < n; j++) {
        fill(x, k, 1.0f);
        cdx_quant_row(t, x, k, rows + j * rb);
    }
    free(x);
}

static void test_pack(void)
{
    static const size_t ns[] = {1, 15, 16, 17, 33, 130}, ks[] = {32, 96, 256};
    CHECK(cdx_q8p_bytes(17, 64) == 2 * 2 * 576 && cdx_q4p_bytes(16, 96) == 3 * 320 && cdx_q8p_bytes(1, 33) == 0,
          "sizes %zu %zu %zu", cdx_q8p_bytes(17, 64), cdx_q4p_bytes(16, 96), cdx_q8p_bytes(1, 33));
    for (int wi = 0; wi < 2; wi++) {
        int wt = wi ? CDX_QP_Q4 : CDX_QP_Q8, t = wi ? CDX_W_Q4_0 : CDX_W_Q8_0;
        for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (int raw = 0; raw < 2; raw++) {
                    size_t n = ns[ni], k = ks[ki], rb = cdx_wtype_row_bytes(t, k), np = (n + 15) / 16;
                    size_t bytes = wi ? cdx_q4p_bytes(n, k) : cdx_q8p_bytes(n, k);
                    uint8_t *rows = malloc(n * rb), *P = malloc(bytes);
                    float *row = malloc(k * sizeof *row);
                    make_rows(wt, n, k, rows, raw);
                    memset(P, 0xa5, bytes);
                    if (wi)
                        cdx_q4p_pack(rows, n, k, P);
                    else
                        cdx_q8p_pack(rows, n, k, P);
                    int bad = 0, badu = 0;
                    for (size_t j = 0; j < np * 16; j++) {
                        if (j < n) cdx_dequant_row(t, rows + j * rb, 0, k, row);
                        for (size_t x = 0; x < k; x++) {
                            float d;
                            int v = ref_val(wt, P, k, j, x, &d);
                            if (j < n ? (float)v * d != row[x] : (v != 0 || d != 0.0f || signbit(d))) bad++;
                            int8_t w[32];
                            float du;
                            cdx_qp_unpack_block(wt, P, k, j, x / 32, w, &du);
                            if (w[x % 32] != v || memcmp(&du, &d, 4)) badu++;
                        }
                    }
                    CHECK(bad == 0, "%s pack n %zu k %zu raw %d: %d values differ from cdx_dequant_row",
                          wi ? "Q4P" : "Q8P", n, k, raw, bad);
                    CHECK(badu == 0, "%s n %zu k %zu: cdx_qp_unpack_block disagrees %d times", wi ? "Q4P" : "Q8P",
                          n, k, badu);
                    free(rows), free(P), free(row);
                }
    }
}

/* One quantized row: both implementations, bounds. */
CHECK_NO_VECTORIZE static void check_act_row(const float *x, size_t k, int qmax, const char *what)
{
    size_t nb = k / 32;
    int8_t *q1 = malloc(k), *q2 = malloc(k);
    float *d1 = malloc(nb * 4), *d2 = malloc(nb * 4);
    int32_t *s1 = malloc(nb * 4), *s2 = malloc(nb * 4);
    memset(q2, 0x55, k), memset(d2, 0x55, nb * 4), memset(s2, 0x55, nb * 4);
    cdx_act_q8_ref(x, k, qmax, q1, d1, s1);
    if (simd()) {
        K->act_q8(x, k, qmax, q2, d2, s2);
        CHECK(!memcmp(q1, q2, k) && !memcmp(d1, d2, nb * 4) && !memcmp(s1, s2, nb * 4),
              "%s (qmax %d): %s activation quantization differs from the reference", what, qmax, K->name);
    }
    int bad_range = 0, bad_err = 0, bad_sum = 0;
    for (size_t b = 0; b < nb; b++) {
        int32_t s = 0;
        double amax = 0;
        for (size_t e = 0; e < 32; e++) amax = fmax(amax, fabs(x[32 * b + e]));
        for (size_t e = 0; e < 32; e++) {
            int v = q1[32 * b + e];
            s += v;
            if (v < -qmax || v > qmax) bad_range++;
            double err = fabs((double)x[32 * b + e] - (double)v * d1[b]);
            if (d1[b] == 0.0f ? (v != 0 || amax >= qmax * FLT_MIN) : err > 0.5 * d1[b] * (1 + 1e-5)) bad_err++;
        }
        if (s != s1[b]) bad_sum++;
    }
    CHECK(bad_range == 0 && bad_err == 0 && bad_sum == 0, "%s (qmax %d): %d out of range, %d beyond d/2, %d bad sums",
          what, qmax, bad_range, bad_err, bad_sum);
    free(q1), free(q2), free(d1), free(d2), free(s1), free(s2);
}

static void test_act_range(int qmax)
{
    size_t k = 1024;
    float *x = malloc(k * sizeof *x);
    for (int it = 0; it < 50; it++) {
        float scale = powf(10.0f, (float)(it % 13) - 6.0f);
        fill(x, k, scale);
        check_act_row(x, k, qmax, "random");
    }
    fill(x, k, 1.0f);
    for (size_t i = 0; i < k; i += 3) x[i] = 0.0f;
    for (size_t i = 64; i < 96; i++) x[i] = 0.0f;      /* a zero block */
    for (size_t i = 96; i < 128; i++) x[i] = -0.0f;    /* negative zeros */
    for (size_t i = 128; i < 160; i++) x[i] = 1e30f * frand(); /* huge */
    for (size_t i = 160; i < 192; i++) x[i] = 1e-30f * frand(); /* tiny */
    for (size_t i = 192; i < 224; i++) x[i] = 1e-37f * frand(); /* 1 / d would overflow */
    for (size_t i = 224; i < 256; i++) x[i] = FLT_TRUE_MIN * (float)(urand() % 5); /* subnormal */
    for (size_t i = 256; i < 288; i++) x[i] = 3e38f * frand(); /* near FLT_MAX */
    x[300] = 1e-36f, x[301] = -2e-36f;                 /* around the zeroing threshold */
    check_act_row(x, k, qmax, "special");
    /* ties: amax qmax -> d 1, id 1; x.5 rounds to even */
    for (size_t i = 0; i < k; i++)
        x[i] = (float)((int)(urand() % (unsigned)(2 * qmax)) - qmax) + ((i & 1) ? 0.5f : 0.0f);
    for (size_t b = 0; b < k / 32; b++) x[32 * b] = (b & 1) ? (float)-qmax : (float)qmax;
    check_act_row(x, k, qmax, "ties");
    /* non-finite blocks (broken weights): q 0, s 0, d NaN, in both versions;
     * found by fuzzing a GGUF whose int8 sums overflowed (8 * s) */
    fill(x, k, 1.0f);
    x[5] = NAN, x[40] = INFINITY, x[70] = -INFINITY, x[100] = -NAN;
    check_act_row(x, k, qmax, "non-finite");
    {
        int8_t qq[1024];
        float dd[32];
        int32_t ss[32];
        cdx_act_q8_ref(x, k, qmax, qq, dd, ss);
        int ok = 1;
        for (size_t b = 0; b < 4; b++) {
            ok &= isnan(dd[b]) && ss[b] == 0;
            for (size_t e = 0; e < 32; e++) ok &= qq[32 * b + e] == 0;
        }
        ok &= !isnan(dd[4]) && dd[4] > 0;
        CHECK(ok, "non-finite blocks must give q 0, s 0, d NaN (and leave the others alone)");
    }
    int8_t q[32];
    float d;
    int32_t s;
    for (int i = 0; i < 32; i++) x[i] = (float)i - 15.5f; /* -15.5 .. 15.5 */
    x[31] = (float)qmax;
    cdx_act_q8_ref(x, 32, qmax, q, &d, &s);
    CHECK(d == 1.0f && q[0] == -16 && q[1] == -14 && q[15] == 0 && q[16] == 0 && q[17] == 2 && q[31] == qmax,
          "ties to even: d %g q %d %d %d %d %d", d, q[0], q[1], q[15], q[16], q[17]);
    /* the range: amax maps to qmax exactly */
    for (int i = 0; i < 32; i++) x[i] = 0.01f * (float)(i - 16);
    x[7] = -3.0f;
    cdx_act_q8_ref(x, 32, qmax, q, &d, &s);
    CHECK(q[7] == -qmax && d == 3.0f / (float)qmax, "qmax %d: amax gives q %d, d %g", qmax, q[7], d);
    free(x);
}

static void test_act(void)
{
    CHECK(cdx_qp_act_max(CDX_QP_Q8) == 63 && cdx_qp_act_max(CDX_QP_Q4) == 127, "activation ranges");
    test_act_range(63);
    test_act_range(127);
}

/* The path's activation quantizer at the path's ranges (and both usual ones). */
static void test_act_path(void)
{
    CHECK(K->qmax[0] == 63 || K->qmax[0] == 127, "%s: Q8P activation range %d", K->name, K->qmax[0]);
    CHECK(K->qmax[1] == 127, "%s: Q4P activation range %d", K->name, K->qmax[1]);
    test_act_range(63);
    test_act_range(127);
}

struct qmat { /* quantized activations (m, k) */
    int8_t *q;
    float *d;
    int32_t *s;
};

static struct qmat quant_act(int wt, const float *A, size_t m, size_t k)
{
    struct qmat a = {malloc(m * k + 1), malloc((m * k / 32 + 1) * 4), malloc((m * k / 32 + 1) * 4)};
    for (size_t i = 0; i < m; i++)
        cdx_act_q8_ref(A + i * k, k, qmax_of(wt), a.q + i * k, a.d + i * k / 32, a.s + i * k / 32);
    return a;
}

/* The definition in double: |C - exact| within the float chain's rounding. */
static void test_ref_vs_double(int wt, const struct qmat *a, const uint8_t *P, size_t m, size_t n, size_t k,
                               const float *C)
{
    size_t nb = k / 32;
    int bad = 0;
    double worst = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double exact = 0, mag = 0;
            for (size_t b = 0; b < nb; b++) {
                long isum = 0;
                float dw = 0;
                for (size_t e = 0; e < 32; e++) isum += (long)a->q[i * k + 32 * b + e] * ref_val(wt, P, k, j, 32 * b + e, &dw);
                double t = (double)isum * (double)a->d[i * nb + b] * (double)dw;
                exact += t, mag += fabs(t);
            }
            double err = fabs(C[i * n + j] - exact), tol = (double)(nb + 2) * 6e-8 * mag + 1e-30;
            worst = fmax(worst, err / (mag + 1e-30));
            if (err > tol) bad++;
        }
    CHECK(bad == 0, "%s %zux%zux%zu: reference vs double: %d outputs off (worst %g of magnitude)",
          wt == CDX_QP_Q8 ? "Q8P" : "Q4P", m, n, k, bad, worst);
}

/* C (m, n) with the path's tiles: columns cut into 64-wide tiles at
 * multiples of 64, rows at the given cut point and every CDX_LINEAR_TILE_M
 * rows (m = 481 needs two). */
static void run_tiles(int wt, const struct qmat *a, const void *P, size_t m, size_t n, size_t k, const float *bias,
                      float *C, int act, unsigned flags, size_t rcut)
{
    for (size_t n0 = 0; n0 < n; n0 += 64) {
        size_t n1 = n0 + 64 < n ? n0 + 64 : n;
        for (size_t m0 = 0; m0 < m;) {
            size_t m1 = rcut && m0 < rcut && rcut < m ? rcut : m;
            if (m1 - m0 > CDX_LINEAR_TILE_M) m1 = m0 + CDX_LINEAR_TILE_M;
            K->qgemm_tile(wt, a->q, a->d, a->s, P, k, bias, C, n, m0, m1, n0, n1, act, flags);
            m0 = m1;
        }
    }
}

static double max_rel(const float *x, const float *y, size_t n)
{
    double scale = 1e-6, mx = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(y[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(x[i] - y[i]) / fmax(fabs(y[i]), 1e-2 * scale));
    return mx;
}

static void test_product(void)
{
    static const size_t ms[] = {1, 2, 3, 4, 5, 6, 7, 13, 49, 50, 97, 481}, ns[] = {1, 16, 17, 33, 64, 130},
                        ks[] = {32, 64, 96, 768, 3072};
    int n_bitwise = 0;
    for (int wi = 0; wi < 2; wi++) {
        int wt = wi ? CDX_QP_Q4 : CDX_QP_Q8, t = wi ? CDX_W_Q4_0 : CDX_W_Q8_0;
        const char *name = wi ? "Q4P" : "Q8P";
        for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    size_t m = ms[mi], n = ns[ni], k = ks[ki];
                    if (k >= 768 && (mi + ni) % 3) continue; /* the big k on a third of the shapes */
                    if (m > 100 && k > 96 && ni % 2) continue; /* the big m: small k, or half the n */
                    size_t rb = cdx_wtype_row_bytes(t, k);
                    size_t bytes = wi ? cdx_q4p_bytes(n, k) : cdx_q8p_bytes(n, k);
                    uint8_t *rows = malloc(n * rb), *Pbuf = malloc(bytes + 4);
                    uint8_t *P = Pbuf + ((mi + ni) & 1) * 4; /* unaligned panels too */
                    float *A = malloc(m * k * 4), *bias = malloc(n * 4);
                    float *R = malloc(m * n * 4), *C = malloc(m * n * 4), *C0 = malloc(m * n * 4);
                    make_rows(wt, n, k, rows, (int)(mi & 1));
                    if (wi)
                        cdx_q4p_pack(rows, n, k, P);
                    else
                        cdx_q8p_pack(rows, n, k, P);
                    fill(A, m * k, 2.0f), fill(bias, n, 1.0f), fill(C0, m * n, 1.0f);
                    for (size_t i = 0; i < m; i += 5) /* rows of very different scales */
                        for (size_t p = 0; p < k; p++) A[i * k + p] *= 1000.0f;
                    struct qmat a = quant_act(wt, A, m, k);
                    cdx_qgemm_ref(wt, a.q, a.d, a.s, m, P, n, k, NULL, R, n, CDX_ACT_NONE, 0);
                    if (k <= 768) test_ref_vs_double(wt, &a, P, m, n, k, R);
                    if (!simd()) goto next;
                    for (int v = 0; v < 3; v++) { /* plain, bias, bias + ACCUM */
                        const float *bb = v ? bias : NULL;
                        unsigned fl = v == 2 ? CDX_LIN_ACCUM : 0;
                        memcpy(R, C0, m * n * 4), memcpy(C, C0, m * n * 4);
                        cdx_qgemm_ref(wt, a.q, a.d, a.s, m, P, n, k, bb, R, n, CDX_ACT_NONE, fl);
                        run_tiles(wt, &a, P, m, n, k, bb, C, CDX_ACT_NONE, fl, 0);
                        CHECK(!memcmp(C, R, m * n * 4), "%s %zux%zux%zu variant %d: %s tile != reference", name,
                              m, n, k, v, K->name);
                        n_bitwise++;
                    }
                    /* other row cuts, single rows: bitwise the same */
                    size_t cuts[] = {1, 3, m / 2 + 1};
                    for (int c = 0; c < 3; c++) {
                        memcpy(C, C0, m * n * 4);
                        run_tiles(wt, &a, P, m, n, k, bias, C, CDX_ACT_NONE, CDX_LIN_ACCUM, cuts[c]);
                        CHECK(!memcmp(C, R, m * n * 4), "%s %zux%zux%zu row cut %zu differs", name, m, n, k, cuts[c]);
                    }
                    if (m > 2) {
                        float *C1 = malloc(n * 4);
                        struct qmat a1 = {a.q + 2 * k, a.d + 2 * (k / 32), a.s + 2 * (k / 32)};
                        run_tiles(wt, &a1, P, 1, n, k, NULL, C1, CDX_ACT_NONE, 0, 0);
                        memcpy(C, C0, m * n * 4);
                        run_tiles(wt, &a, P, m, n, k, NULL, C, CDX_ACT_NONE, 0, 0);
                        CHECK(!memcmp(C + 2 * n, C1, n * 4), "%s %zux%zux%zu: row 2 alone differs", name, m, n, k);
                        free(C1);
                    }
                    /* a tile touches only its own rows and columns */
                    if (n > 16 && m > 2) {
                        for (size_t i = 0; i < m * n; i++) C[i] = -7.0f;
                        K->qgemm_tile(wt, a.q, a.d, a.s, P, k, bias, C, n, 1, m - 1, 16, n < 80 ? n : 80,
                                            CDX_ACT_NONE, 0);
                        int outside = 0;
                        for (size_t i = 0; i < m; i++)
                            for (size_t j = 0; j < n; j++)
                                if ((i < 1 || i >= m - 1 || j < 16 || j >= 80) && C[i * n + j] != -7.0f) outside++;
                        CHECK(outside == 0, "%s %zux%zux%zu: %d writes outside the tile", name, m, n, k, outside);
                    }
                    for (int act = CDX_ACT_QUICK_GELU; act <= CDX_ACT_GELU; act++) {
                        memcpy(R, C0, m * n * 4), memcpy(C, C0, m * n * 4);
                        cdx_qgemm_ref(wt, a.q, a.d, a.s, m, P, n, k, bias, R, n, act, CDX_LIN_ACCUM);
                        run_tiles(wt, &a, P, m, n, k, bias, C, act, CDX_LIN_ACCUM, 0);
                        double e = max_rel(C, R, m * n);
                        CHECK(e <= 1e-5, "%s %zux%zux%zu act %d: rel err %g", name, m, n, k, act, e);
                    }
                next:
                    free(rows), free(Pbuf), free(A), free(bias), free(R), free(C), free(C0);
                    free(a.q), free(a.d), free(a.s);
                }
    }
    printf("qgemm: %d bitwise tile/reference comparisons on the %s path\n", n_bitwise, K ? K->name : "reference");
}

/* The largest products the kernels can meet: weights at their extremes
 * (Q8: -128, -127, 127; Q4: nibbles 0 and 15) against activations at +-qmax,
 * with every sign pattern in a vpmaddubsw pair, so a saturating int16 pair
 * sum or a wrong offset correction shows. AVX2 == reference bitwise, and the
 * reference == the exact integer sums. */
static void test_extremes(void)
{
    size_t m = 7, n = 32, k = 256, nb = k / 32;
    for (int wi = 0; wi < 2 && simd(); wi++) {
        int wt = wi ? CDX_QP_Q4 : CDX_QP_Q8, t = wi ? CDX_W_Q4_0 : CDX_W_Q8_0, qmax = qmax_of(wt);
        size_t rb = cdx_wtype_row_bytes(t, k), bbytes = cdx_wtype_block_bytes(t);
        uint8_t *rows = calloc(n, rb), *P = malloc(wi ? cdx_q4p_bytes(n, k) : cdx_q8p_bytes(n, k));
        static const int8_t q8v[3] = {-128, -127, 127};
        for (size_t j = 0; j < n; j++)
            for (size_t b = 0; b < nb; b++) {
                uint8_t *blk = rows + j * rb + b * bbytes;
                blk[0] = 0x00, blk[1] = 0x3c; /* scale 1.0 */
                for (size_t e = 0; e < 32; e++) {
                    unsigned pat = (unsigned)((j * 7 + b * 3 + e / 2) % 4);
                    if (wi) { /* nibbles 0 (-8) or 15 (+7) */
                        unsigned nib = pat & 1 ? 15u : 0u;
                        if (e < 16) blk[2 + e] = (uint8_t)((blk[2 + e] & 0xf0) | nib);
                        else blk[2 + e - 16] = (uint8_t)((blk[2 + e - 16] & 0x0f) | nib << 4);
                    } else {
                        blk[2 + e] = (uint8_t)q8v[(pat + j) % 3];
                    }
                }
            }
        if (wi)
            cdx_q4p_pack(rows, n, k, P);
        else
            cdx_q8p_pack(rows, n, k, P);
        struct qmat a = {malloc(m * k), malloc(m * nb * 4), malloc(m * nb * 4)};
        for (size_t i = 0; i < m; i++)
            for (size_t b = 0; b < nb; b++) {
                int32_t sum = 0;
                for (size_t e = 0; e < 32; e++) { /* rows: all +, all -, and mixed pair signs */
                    int sg = i == 0 ? 1 : i == 1 ? -1 : ((e + i + b) % (i + 1)) ? 1 : -1;
                    a.q[i * k + 32 * b + e] = (int8_t)(sg * qmax);
                    sum += sg * qmax;
                }
                a.d[i * nb + b] = 1.0f, a.s[i * nb + b] = sum;
            }
        float *R = malloc(m * n * 4), *C = malloc(m * n * 4);
        cdx_qgemm_ref(wt, a.q, a.d, a.s, m, P, n, k, NULL, R, n, CDX_ACT_NONE, 0);
        run_tiles(wt, &a, P, m, n, k, NULL, C, CDX_ACT_NONE, 0, 0);
        int bad_exact = 0;
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                long exact = 0;
                float dw;
                for (size_t x = 0; x < k; x++) exact += (long)a.q[i * k + x] * ref_val(wt, P, k, j, x, &dw);
                if ((double)R[i * n + j] != (double)exact) bad_exact++;
            }
        CHECK(bad_exact == 0, "%s extremes: %d reference outputs differ from the exact sums", wi ? "Q4P" : "Q8P",
              bad_exact);
        CHECK(!memcmp(C, R, m * n * 4), "%s extremes (|q| = %d): %s tile != reference (saturation?)",
              wi ? "Q4P" : "Q8P", qmax, K->name);
        free(rows), free(P), free(a.q), free(a.d), free(a.s), free(R), free(C);
    }
}

/* int8 activations x Q8_0 / Q4_0 weights vs the fp32 product with the
 * dequantized weights: only the activation quantization differs. */
CHECK_NO_VECTORIZE static void test_accuracy(void)
{
    size_t m = 50, n = 256, k = 768;
    for (int wi = 0; wi < 2; wi++) {
        int wt = wi ? CDX_QP_Q4 : CDX_QP_Q8, t = wi ? CDX_W_Q4_0 : CDX_W_Q8_0;
        size_t rb = cdx_wtype_row_bytes(t, k);
        float *A = malloc(m * k * 4), *W = malloc(n * k * 4), *Wd = malloc(n * k * 4);
        float *C = malloc(m * n * 4), *F = malloc(m * n * 4);
        uint8_t *rows = malloc(n * rb), *P = malloc(wi ? cdx_q4p_bytes(n, k) : cdx_q8p_bytes(n, k));
        fill(A, m * k, 1.0f), fill(W, n * k, 0.05f);
        for (size_t i = 0; i < m * k; i += 97) A[i] *= 20.0f; /* a few outliers, as in real activations */
        for (size_t j = 0; j < n; j++) {
            cdx_quant_row(t, W + j * k, k, rows + j * rb);
            cdx_dequant_row(t, rows + j * rb, 0, k, Wd + j * k);
        }
        if (wi)
            cdx_q4p_pack(rows, n, k, P);
        else
            cdx_q8p_pack(rows, n, k, P);
        struct qmat a = quant_act(wt, A, m, k);
        cdx_qgemm_ref(wt, a.q, a.d, a.s, m, P, n, k, NULL, C, n, CDX_ACT_NONE, 0);
        cdx_linear_ref(A, k, Wd, NULL, F, n, m, n, k, CDX_ACT_NONE, 0);
        double worst_rel = 0, min_cos = 1;
        for (size_t i = 0; i < m; i++) {
            double dot = 0, nc = 0, nf = 0, fmaxabs = 0;
            for (size_t j = 0; j < n; j++) fmaxabs = fmax(fmaxabs, fabs(F[i * n + j]));
            for (size_t j = 0; j < n; j++) {
                double c = C[i * n + j], f = F[i * n + j];
                dot += c * f, nc += c * c, nf += f * f;
                worst_rel = fmax(worst_rel, fabs(c - f) / fmaxabs);
            }
            min_cos = fmin(min_cos, dot / sqrt(nc * nf));
        }
        printf("qgemm accuracy %s, %s path (int8 activations |q| <= %d vs fp32, %zux%zux%zu): worst error %.3g of "
               "the row's max, min row cosine %.7f\n", wi ? "Q4P" : "Q8P", K ? K->name : "reference", qmax_of(wt), m,
               n, k, worst_rel, min_cos);
        /* the rounding step is amax / qmax: 7-bit activations err twice as much as 8-bit; the worst
         * output over these random draws measured 0.031-0.037 (qmax 63) and 0.014-0.020 (127) */
        double bound = 3.0 / qmax_of(wt);
        CHECK(min_cos >= 0.999, "%s: row cosine %g", wi ? "Q4P" : "Q8P", min_cos);
        CHECK(worst_rel < bound, "%s: worst error %g (bound %g)", wi ? "Q4P" : "Q8P", worst_rel, bound);
        free(A), free(W), free(Wd), free(C), free(F), free(rows), free(P), free(a.q), free(a.d), free(a.s);
    }
}

int main(void)
{
    test_pack();
    test_act();
    for (int isa = CDX_ISA_SCALAR + 1; isa < CDX_ISA_COUNT; isa++) {
        K = cdx_kernels_for(isa);
        if (!K) {
            SKIP("%s path: the CPU lacks it", cdx_isa_name(isa));
            continue;
        }
        test_act_path();
        test_product();
        test_extremes();
        test_accuracy();
    }
    K = NULL;
    test_product(); /* the reference alone, against the double definition */
    test_accuracy();
    return check_done("test_qgemm");
}
