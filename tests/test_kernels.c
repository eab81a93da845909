/*
 * test_kernels.c - every fast kernel against its scalar reference on odd
 * shapes, with 1, 2 and 3 threads; and thread-count invariance (bitwise).
 * Reduced-precision weights (F16, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1): the SIMD
 * linear layer on the typed matrix must equal (bitwise) the SIMD layer on
 * its dequantized F32 copy, the typed scalar reference must equal the F32
 * reference, and SIMD vs scalar agree to rounding; plus ggml's block layouts
 * on hand-made blocks, quantization error bounds and F32 -> F16 rounding.
 */
#include <stdint.h>

#include "check.h"
#include "core/core.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"
#include "tensor/qgemm.h"

/* The path under test (each the CPU has, in turn); the scalar table is the reference. */
static const struct cdx_kernels *g_kern;

static uint64_t rng = 0x1234567887654321ull;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static void fill(float *p, size_t n)
{
    for (size_t i = 0; i < n; i++) p[i] = frand();
}

static double max_rel_err(const float *a, const float *b, size_t n)
{
    double mx = 0, scale = 1e-6;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(b[i]));
    for (size_t i = 0; i < n; i++) mx = fmax(mx, fabs(a[i] - b[i]) / scale);
    return mx;
}

static const int qtypes[] = {CDX_W_F16, CDX_W_Q8_0, CDX_W_Q5_0, CDX_W_Q5_1, CDX_W_Q4_0, CDX_W_Q4_1};

/* Typed weights: linear_w (SIMD, threads) == linear on the dequantized copy. */
static void typed_linear(clipdex_ctx *ctx, int threads)
{
    static const size_t shapes[][3] = {{1, 1, 32}, {5, 9, 64}, {3, 17, 32}, {49, 65, 96},
                                       {7, 3, 1056}, {97, 130, 288}, {13, 70, 7}, {2, 33, 45}};
    for (size_t ti = 0; ti < sizeof qtypes / sizeof qtypes[0]; ti++) {
        int type = qtypes[ti];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            size_t rb = cdx_wtype_row_bytes(type, k);
            if (!rb) continue; /* Q types need k % 32 == 0 */
            float *A = malloc(m * (k + 3) * 4), *W = malloc(n * k * 4), *Wd = malloc(n * k * 4), *bias = malloc(n * 4);
            float *C = malloc(m * n * 4), *R = malloc(m * n * 4), *C1 = malloc(n * 4);
            uint8_t *Q = malloc(n * rb);
            fill(A, m * (k + 3)), fill(W, n * k), fill(bias, n);
            for (size_t j = 0; j < n; j++) {
                cdx_quant_row(type, W + j * k, k, Q + j * rb);
                cdx_dequant_row(type, Q + j * rb, 0, k, Wd + j * k);
            }
            struct cdx_wmat wm = {type, Q};
            for (unsigned fl = 0; fl < 2; fl++) {
                fill(C, m * n);
                memcpy(R, C, m * n * 4);
                cdx_linear_w(ctx, A, k + 3, &wm, bias, C, n, m, n, k, CDX_ACT_GELU, fl);
                cdx_linear(ctx, A, k + 3, Wd, bias, R, n, m, n, k, CDX_ACT_GELU, fl);
                CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu accum %u threads %d: typed != dequantized F32",
                      cdx_wtype_name(type), m, n, k, fl, threads);
            }
            cdx_linear_w(ctx, A, k + 3, &wm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
            cdx_linear_w_ref(A, k + 3, &wm, bias, R, n, m, n, k, CDX_ACT_NONE, 0);
            /* fused vs separate multiply-adds: each output may differ by a few
             * roundings of the terms it sums, so the error is measured against
             * sum |a w| + |bias| (a single output can cancel to near zero) */
            double e = 0;
            for (size_t i = 0; i < m; i++)
                for (size_t j = 0; j < n; j++) {
                    double mag = fabs(bias[j]);
                    for (size_t p = 0; p < k; p++) mag += fabs((double)A[i * (k + 3) + p] * Wd[j * k + p]);
                    e = fmax(e, fabs((double)C[i * n + j] - R[i * n + j]) / (mag > 1e-30 ? mag : 1e-30));
                }
            CHECK(e < 1e-5, "%s %zux%zux%zu threads %d: SIMD vs reference err %g of sum |a w|", cdx_wtype_name(type), m,
                  n, k, threads, e);
            cdx_linear_ref(A, k + 3, Wd, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
            CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu: typed reference != F32 reference",
                  cdx_wtype_name(type), m, n, k);
            ctx->kern = cdx_kernels_for(CDX_ISA_SCALAR); /* the threaded scalar path too */
            cdx_linear_w(ctx, A, k + 3, &wm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
            ctx->kern = g_kern;
            CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu threads %d: forced scalar != reference",
                  cdx_wtype_name(type), m, n, k, threads);
            if (m > 2) { /* a row alone == the row in a batch */
                cdx_linear_w(ctx, A, k + 3, &wm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
                cdx_linear_w(ctx, A + 2 * (k + 3), k + 3, &wm, bias, C1, n, 1, n, k, CDX_ACT_NONE, 0);
                CHECK(memcmp(C + 2 * n, C1, n * 4) == 0, "%s %zux%zux%zu: row 2 alone differs", cdx_wtype_name(type), m,
                      n, k);
            }
            free(A), free(W), free(Wd), free(bias), free(C), free(R), free(C1), free(Q);
        }
    }
}

/* Panel-packed matrices: packing keeps every value (cdx_wmat_dequant of the
 * packed matrix == the row matrix, padding zero) and F32P / F16P give bitwise
 * the result of their row matrices, SIMD, threaded and forced scalar. */
static void packed_linear(clipdex_ctx *ctx, int threads)
{
    /* F32P / F16P with at most 48 rows take the streaming path (one to eight row groups, k chunks of 128,
     * the last one short), more rows the blocked one; both must equal the rows, which always block */
    static const size_t shapes[][3] = {{1, 1, 32}, {6, 16, 64}, {7, 17, 96}, {50, 65, 288}, {13, 130, 256},
                                       {3, 33, 544}, {48, 33, 352}, {25, 20, 416}, {11, 64, 160}};
    static const int pairs[][2] = {{CDX_W_F32, CDX_W_F32P}, {CDX_W_F16, CDX_W_F16P}, {CDX_W_Q8_0, CDX_W_Q8P},
                                   {CDX_W_Q4_0, CDX_W_Q4P}};
    for (size_t pi = 0; pi < sizeof pairs / sizeof pairs[0]; pi++) {
        int rt = pairs[pi][0], pt = pairs[pi][1];
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            size_t rb = cdx_wtype_row_bytes(rt, k), pb = cdx_wmat_bytes(pt, n, k);
            size_t np = (n + 15) / 16;
            CHECK(pb > 0, "%s %zux%zu: no size", cdx_wtype_name(pt), n, k);
            float *A = malloc(m * k * 4), *W = malloc(n * k * 4), *bias = malloc(n * 4), *row = malloc(k * 4);
            float *C = malloc(m * n * 4), *R = malloc(m * n * 4), *got = malloc(k * 4);
            uint8_t *Q = malloc(n * rb), *P = aligned_alloc(64, (pb + 63) / 64 * 64);
            fill(A, m * k), fill(W, n * k), fill(bias, n);
            for (size_t j = 0; j < n; j++) {
                if (rt == CDX_W_F32) memcpy(Q + j * rb, W + j * k, k * 4);
                else cdx_quant_row(rt, W + j * k, k, Q + j * rb);
            }
            struct cdx_wmat rm = {rt, Q}, pm = {pt, P};
            memset(P, 0xAB, pb);
            CHECK(cdx_wmat_pack(pt, &rm, n, k, P) == 0, "%s: pack failed", cdx_wtype_name(pt));
            int same = 1;
            for (size_t j = 0; j < np * 16; j++) {
                cdx_wmat_dequant(&pm, k, j, 0, k, got);
                if (j < n) cdx_dequant_row(rt, Q + j * rb, 0, k, row);
                else memset(row, 0, k * 4);
                for (size_t p = 0; p < k; p++) same &= got[p] == row[p];
            }
            CHECK(same, "%s %zux%zu: packed values differ from the rows (or padding is not zero)", cdx_wtype_name(pt),
                  n, k);
            CHECK(cdx_wmat_pack(pt, &pm, n, k, P) != 0, "%s: packing a packed matrix must be refused",
                  cdx_wtype_name(pt));
            if (pt == CDX_W_F32P || pt == CDX_W_F16P) {
                for (unsigned fl = 0; fl < 2; fl++) {
                    fill(C, m * n);
                    memcpy(R, C, m * n * 4);
                    cdx_linear_w(ctx, A, k, &pm, bias, C, n, m, n, k, CDX_ACT_QUICK_GELU, fl);
                    cdx_linear_w(ctx, A, k, &rm, bias, R, n, m, n, k, CDX_ACT_QUICK_GELU, fl);
                    CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu accum %u threads %d: packed != rows",
                          cdx_wtype_name(pt), m, n, k, fl, threads);
                }
                cdx_linear_w_ref(A, k, &rm, bias, R, n, m, n, k, CDX_ACT_NONE, 0);
                ctx->kern = cdx_kernels_for(CDX_ISA_SCALAR);
                cdx_linear_w(ctx, A, k, &pm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
                ctx->kern = g_kern;
                CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu threads %d: forced scalar packed != reference",
                      cdx_wtype_name(pt), m, n, k, threads);
            }
            if (pt == CDX_W_Q8P || pt == CDX_W_Q4P) {
                /* int8 product: threaded SIMD == the scalar reference (activations quantized by
                 * the reference too), bitwise; forced scalar too; a row alone == in the batch */
                size_t kb = k / 32;
                int8_t *qa = malloc(m * k);
                float *da = malloc(m * kb * 4);
                int32_t *sa = malloc(m * kb * 4);
                int wt = pt == CDX_W_Q8P ? CDX_QP_Q8 : CDX_QP_Q4;
                /* the activation range is the path's (8 bits on VNNI paths, 7 for Q8P on AVX2) */
                const struct cdx_kernels *kp = ctx->kern, *ks = cdx_kernels_for(CDX_ISA_SCALAR);
                for (size_t i = 0; i < m; i++)
                    cdx_act_q8_ref(A + i * k, k, kp->qmax[wt == CDX_QP_Q8 ? 0 : 1], qa + i * k, da + i * kb,
                                   sa + i * kb);
                for (unsigned fl = 0; fl < 2; fl++) {
                    fill(C, m * n);
                    memcpy(R, C, m * n * 4);
                    cdx_linear_w(ctx, A, k, &pm, bias, C, n, m, n, k, CDX_ACT_NONE, fl);
                    cdx_qgemm_ref(wt, qa, da, sa, m, P, n, k, bias, R, n, CDX_ACT_NONE, fl);
                    CHECK(memcmp(C, R, m * n * 4) == 0, "%s %zux%zux%zu accum %u threads %d: int8 linear != reference",
                          cdx_wtype_name(pt), m, n, k, fl, threads);
                }
                cdx_linear_w(ctx, A, k, &pm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
                if (m > 2) {
                    cdx_linear_w(ctx, A + 2 * k, k, &pm, bias, R, n, 1, n, k, CDX_ACT_NONE, 0);
                    CHECK(memcmp(C + 2 * n, R, n * 4) == 0, "%s %zux%zux%zu: int8 row 2 alone differs",
                          cdx_wtype_name(pt), m, n, k);
                }
                float *S = malloc(m * n * 4);
                ctx->kern = ks;
                cdx_linear_w(ctx, A, k, &pm, bias, S, n, m, n, k, CDX_ACT_NONE, 0);
                ctx->kern = kp;
                for (size_t i = 0; i < m; i++)
                    cdx_act_q8_ref(A + i * k, k, ks->qmax[wt == CDX_QP_Q8 ? 0 : 1], qa + i * k, da + i * kb,
                                   sa + i * kb);
                cdx_qgemm_ref(wt, qa, da, sa, m, P, n, k, bias, R, n, CDX_ACT_NONE, 0);
                CHECK(memcmp(S, R, m * n * 4) == 0, "%s %zux%zux%zu threads %d: forced scalar int8 != reference",
                      cdx_wtype_name(pt), m, n, k, threads);
                free(S);
                /* against fp32 on the same (dequantized) weights: int8 activations cost little */
                float *F = malloc(m * n * 4), *Wd = malloc(n * k * 4);
                for (size_t j = 0; j < n; j++) cdx_dequant_row(rt, Q + j * rb, 0, k, Wd + j * k);
                cdx_linear_ref(A, k, Wd, bias, F, n, m, n, k, CDX_ACT_NONE, 0);
                double ab = 0, aa = 0, bb = 0;
                for (size_t i = 0; i < m * n; i++) ab += (double)C[i] * F[i], aa += (double)C[i] * C[i], bb += (double)F[i] * F[i];
                double cosv = ab / sqrt(aa * bb);
                CHECK(cosv > 0.999, "%s %zux%zux%zu: int8 vs fp32 cosine %.6f", cdx_wtype_name(pt), m, n, k, cosv);
                free(F), free(Wd), free(qa), free(da), free(sa);
            }
            free(A), free(W), free(bias), free(row), free(C), free(R), free(got), free(Q), free(P);
        }
    }
    /* sizes: panels of 16 rows, blocks of 32 */
    CHECK(cdx_wmat_bytes(CDX_W_F32P, 17, 8) == 2 * 16 * 8 * 4 && cdx_wmat_bytes(CDX_W_Q8P, 16, 64) == 2 * 576 &&
              cdx_wmat_bytes(CDX_W_Q4P, 33, 32) == 3 * 320 && cdx_wmat_bytes(CDX_W_Q8P, 16, 48) == 0 &&
              cdx_wmat_bytes(CDX_W_F16P, 16, 3) == 16 * 3 * 2,
          "packed sizes");
}

/* 1, 2 and 3-thread contexts running g_kern. */
static void ctxs_new(clipdex_ctx *ctx[3])
{
    for (int t = 0; t < 3; t++) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = t + 1;
        CHECK(clipdex_ctx_new(&ctx[t], &p) == CLIPDEX_OK, "ctx");
        ctx[t]->kern = g_kern;
    }
}

/* max |c - r| / (sum_p |a_p w_p| + |bias| + 1): the rounding of the terms
 * an output sums (fused vs separate multiply-adds, other orders). */
static double err_of_sum(const float *C, const float *R, const float *A, size_t lda, const float *Wd,
                         const float *bias, size_t m, size_t n, size_t k)
{
    double e = 0;
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double mag = fabs(bias[j]) + 1;
            for (size_t p = 0; p < k; p++) mag += fabs((double)A[i * lda + p] * Wd[j * k + p]);
            e = fmax(e, fabs((double)C[i * n + j] - R[i * n + j]) / mag);
        }
    return e;
}

/* W (n, k) of `type` made from random floats; Wd: its dequantized values. */
static void *make_w(int type, size_t n, size_t k, float *Wd)
{
    int base = cdx_wtype_base(type);
    size_t rb = cdx_wtype_row_bytes(base, k);
    uint8_t *rows = malloc(n * rb);
    void *out = rows;
    fill(Wd, n * k);
    for (size_t j = 0; j < n; j++) {
        cdx_quant_row(base, Wd + j * k, k, rows + j * rb);
        cdx_dequant_row(base, rows + j * rb, 0, k, Wd + j * k);
    }
    if (cdx_wtype_is_packed(type)) {
        size_t pb = cdx_wmat_bytes(type, n, k);
        struct cdx_wmat rm = {base, rows};
        out = aligned_alloc(64, (pb + 63) / 64 * 64);
        CHECK(cdx_wmat_pack(type, &rm, n, k, out) == 0, "pack %s", cdx_wtype_name(type));
        free(rows);
    }
    return out;
}

/* The fp32 linear layer of g_kern on odd shapes (rows 1 .. 481: the
 * streaming path up to 48 rows for F32P/F16P, two row tiles at 481; widths
 * off the 16-panel and 64-tile grid; odd k), every weight type, every
 * activation, with and without ACCUM: against the scalar reference to
 * rounding; bitwise the same for 1, 2 and 3 threads and for a row computed
 * alone; bitwise avx2's (both paths keep one FMA chain per output). */
static void odd_linear(void)
{
    static const size_t shapes[][3] = {{1, 33, 37}, {5, 64, 96}, {7, 50, 288}, {13, 17, 64}, {48, 100, 160},
                                       {49, 64, 37}, {97, 33, 96}, {481, 70, 64}};
    static const int types[] = {CDX_W_F32,  CDX_W_F16,  CDX_W_Q8_0, CDX_W_Q4_0, CDX_W_Q4_1,
                                CDX_W_Q5_0, CDX_W_Q5_1, CDX_W_F32P, CDX_W_F16P};
    const struct cdx_kernels *avx2 = cdx_kernels_for(CDX_ISA_AVX2);
    clipdex_ctx *ctx[3];
    ctxs_new(ctx);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *A = malloc(m * k * 4), *Wd = malloc(n * k * 4), *bias = malloc(n * 4), *C0 = malloc(m * n * 4);
        float *R = malloc(m * n * 4), *C[3] = {malloc(m * n * 4), malloc(m * n * 4), malloc(m * n * 4)};
        fill(A, m * k), fill(bias, n), fill(C0, m * n);
        for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
            if (!cdx_wtype_row_bytes(cdx_wtype_base(types[ti]), k)) continue; /* Q types: k % 32 == 0 */
            struct cdx_wmat w = {types[ti], make_w(types[ti], n, k, Wd)};
            const char *tn = cdx_wtype_name(types[ti]);
            for (int act = 0; act < 3; act++)
                for (unsigned fl = 0; fl < 2; fl++) {
                    memcpy(R, C0, m * n * 4);
                    cdx_linear_w_ref(A, k, &w, bias, R, n, m, n, k, act, fl);
                    for (int t = 0; t < 3; t++) {
                        memcpy(C[t], C0, m * n * 4);
                        cdx_linear_w(ctx[t], A, k, &w, bias, C[t], n, m, n, k, act, fl);
                    }
                    double e = err_of_sum(C[0], R, A, k, Wd, bias, m, n, k);
                    CHECK(e < 1e-5, "%s %s %zux%zux%zu act %d accum %u: err %g of sum |a w|", g_kern->name, tn, m,
                          n, k, act, fl, e);
                    CHECK(!memcmp(C[0], C[1], m * n * 4) && !memcmp(C[0], C[2], m * n * 4),
                          "%s %s %zux%zux%zu act %d accum %u: thread counts differ", g_kern->name, tn, m, n, k, act, fl);
                    if (avx2 && act != CDX_ACT_GELU) {
                        ctx[2]->kern = avx2;
                        memcpy(C[1], C0, m * n * 4);
                        cdx_linear_w(ctx[2], A, k, &w, bias, C[1], n, m, n, k, act, fl);
                        ctx[2]->kern = g_kern;
                        CHECK(!memcmp(C[0], C[1], m * n * 4), "%s %s %zux%zux%zu act %d accum %u: differs from avx2",
                              g_kern->name, tn, m, n, k, act, fl);
                    }
                }
            for (size_t i = 0; i < m; i += m / 3 + 1) { /* rows alone (F32P/F16P: streamed) == in the batch */
                cdx_linear_w(ctx[1], A + i * k, k, &w, bias, R, n, 1, n, k, CDX_ACT_QUICK_GELU, 0);
                cdx_linear_w(ctx[1], A, k, &w, bias, C[0], n, m, n, k, CDX_ACT_QUICK_GELU, 0);
                CHECK(!memcmp(R, C[0] + i * n, n * 4), "%s %s %zux%zux%zu: row %zu alone differs", g_kern->name, tn,
                      m, n, k, i);
            }
            free((void *)w.data);
        }
        free(A), free(Wd), free(bias), free(C0), free(R), free(C[0]), free(C[1]), free(C[2]);
    }
    for (int t = 0; t < 3; t++) clipdex_ctx_free(ctx[t]);
}

/* The epilogue's activations of g_kern on their own (k = 0: C = act(bias))
 * on x in [-12, 12] against double precision: within 2e-6 relative plus
 * 2e-7 absolute (libm's 1 + erff cancels on the negative side). */
static void act_accuracy(void)
{
    enum { N = 24001 };
    static float x[N], y[N];
    clipdex_ctx *ctx[3];
    ctxs_new(ctx);
    struct cdx_wmat none = {CDX_W_F32, NULL};
    for (int i = 0; i < N; i++) x[i] = -12.0f + 24.0f * (float)i / (N - 1);
    for (int act = CDX_ACT_QUICK_GELU; act <= CDX_ACT_GELU; act++) {
        cdx_linear_w(ctx[1], NULL, 0, &none, x, y, N, 1, N, 0, act, 0);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double v = x[i], want = act == CDX_ACT_GELU ? 0.5 * v * erfc(-v / sqrt(2.0)) : v / (1.0 + exp(-1.702 * v));
            worst = fmax(worst, fabs(y[i] - want) / (2e-6 * fabs(want) + 2e-7));
        }
        CHECK(worst <= 1.0, "%s act %d: error %.2f x (2e-6 |y| + 2e-7)", g_kern->name, act, worst);
    }
    for (int t = 0; t < 3; t++) clipdex_ctx_free(ctx[t]);
}

/* LayerNorm (CLIP widths and odd ones) and attention (causal or not, all
 * rows or one selected row per sequence) of g_kern: against the scalar
 * table to rounding, bitwise the same for 1, 2 and 3 threads, and a selected
 * row bitwise the row of the full attention. */
static void odd_rows(void)
{
    clipdex_ctx *ctx[3];
    ctxs_new(ctx);
    static const size_t widths[] = {1, 15, 17, 37, 512, 768, 1024, 1280};
    for (size_t wi = 0; wi < sizeof widths / sizeof widths[0]; wi++) {
        size_t nn = widths[wi], mm = 19;
        float *x = malloc(mm * nn * 4), *y[3] = {malloc(mm * nn * 4), malloc(mm * nn * 4), malloc(mm * nn * 4)};
        float *w = malloc(nn * 4), *b = malloc(nn * 4), *r = malloc(mm * nn * 4);
        fill(x, mm * nn), fill(w, nn), fill(b, nn);
        for (size_t i = 0; i < mm * nn; i++) x[i] = x[i] * 4.0f - 1.5f;
        for (int t = 0; t < 3; t++) cdx_layernorm(ctx[t], x, nn, y[t], nn, mm, nn, w, b, 1e-5f);
        for (size_t i = 0; i < mm; i++) cdx_layernorm_row_ref(x + i * nn, r + i * nn, nn, w, b, 1e-5f);
        double e = max_rel_err(y[0], r, mm * nn);
        CHECK(e < 1e-6, "%s layernorm width %zu: rel err %g", g_kern->name, nn, e);
        CHECK(!memcmp(y[0], y[1], mm * nn * 4) && !memcmp(y[0], y[2], mm * nn * 4),
              "%s layernorm width %zu: thread counts differ", g_kern->name, nn);
        free(x), free(y[0]), free(y[1]), free(y[2]), free(w), free(b), free(r);
    }
    static const size_t aw[][3] = {{4, 24, 3},   {50, 768, 12}, {7, 512, 8},
                                   {13, 160, 2}, {33, 120, 2},  {77, 512, 8}, {130, 136, 2}};
    for (size_t ai = 0; ai < sizeof aw / sizeof aw[0]; ai++) {
        size_t nseq = 3, t = aw[ai][0], width = aw[ai][1], heads = aw[ai][2], rows = nseq * t;
        float *q = malloc(rows * width * 4), *kk = malloc(rows * width * 4), *v = malloc(rows * width * 4);
        float *o[3] = {malloc(rows * width * 4), malloc(rows * width * 4), malloc(rows * width * 4)};
        float *r = malloc(rows * width * 4), *sc = malloc(cdx_attention_scratch(nseq, heads, t, width) * 4);
        size_t sel[3] = {0, t / 2, t - 1};
        fill(q, rows * width), fill(kk, rows * width), fill(v, rows * width);
        for (size_t i = 0; i < rows * width; i++) q[i] *= 3.0f; /* sharper softmax */
        for (int causal = 0; causal < 2; causal++) {
            for (int th = 0; th < 3; th++) cdx_attention(ctx[th], q, kk, v, o[th], width, nseq, t, width, heads, causal, sc);
            ctx[0]->kern = cdx_kernels_for(CDX_ISA_SCALAR);
            cdx_attention(ctx[0], q, kk, v, r, width, nseq, t, width, heads, causal, sc);
            ctx[0]->kern = g_kern;
            double e = max_rel_err(o[0], r, rows * width);
            CHECK(e < 1e-5, "%s attention t %zu width %zu heads %zu causal %d: rel err %g", g_kern->name, t, width,
                  heads, causal, e);
            CHECK(!memcmp(o[0], o[1], rows * width * 4) && !memcmp(o[0], o[2], rows * width * 4),
                  "%s attention t %zu width %zu causal %d: thread counts differ", g_kern->name, t, width, causal);
            float *qs = o[1], *os = o[2]; /* one selected row per sequence */
            for (size_t s = 0; s < nseq; s++) memcpy(qs + s * width, q + (s * t + sel[s]) * width, width * 4);
            cdx_attention_sel(ctx[2], qs, kk, v, os, width, nseq, t, width, heads, causal, sel, sc);
            int same = 1;
            for (size_t s = 0; s < nseq; s++) same &= !memcmp(os + s * width, o[0] + (s * t + sel[s]) * width, width * 4);
            CHECK(same, "%s attention_sel t %zu width %zu causal %d: differs from the full rows", g_kern->name, t,
                  width, causal);
        }
        free(q), free(kk), free(v), free(o[0]), free(o[1]), free(o[2]), free(r), free(sc);
    }
    for (int t = 0; t < 3; t++) clipdex_ctx_free(ctx[t]);
}

/* ggml's block layouts on hand-made blocks, and quantization error bounds. */
CHECK_NO_VECTORIZE static void quant_formats(void)
{
    float out[32];
    uint8_t q8[34] = {0x00, 0x3c}; /* d = 1.0 */
    for (int j = 0; j < 32; j++) q8[2 + j] = (uint8_t)(int8_t)(j - 16);
    cdx_dequant_row(CDX_W_Q8_0, q8, 0, 32, out);
    CHECK(out[0] == -16 && out[31] == 15, "Q8_0 layout: %g %g", out[0], out[31]);
    uint8_t q4[18] = {0x00, 0x40}; /* d = 2.0 */
    q4[2] = 0x9f;                  /* element 0: 15 - 8 = 7; element 16: 9 - 8 = 1 */
    q4[17] = 0x03;                 /* element 15: 3 - 8 = -5; element 31: 0 - 8 = -8 */
    cdx_dequant_row(CDX_W_Q4_0, q4, 0, 32, out);
    CHECK(out[0] == 14 && out[16] == 2 && out[15] == -10 && out[31] == -16, "Q4_0 layout: %g %g %g %g", out[0],
          out[16], out[15], out[31]);
    uint8_t q41[20] = {0x00, 0x3c, 0x00, 0xbc}; /* d = 1, m = -1 */
    q41[4] = 0x21;
    cdx_dequant_row(CDX_W_Q4_1, q41, 0, 32, out);
    CHECK(out[0] == 0 && out[16] == 1 && out[1] == -1, "Q4_1 layout: %g %g %g", out[0], out[16], out[1]);
    uint8_t q5[22] = {0x00, 0x3c, 0x01, 0x00, 0x01, 0x00}; /* qh bits 0 and 16 */
    q5[6] = 0x21;                                          /* element 0: 1|16 - 16 = 1; element 16: 2|16 - 16 = 2 */
    cdx_dequant_row(CDX_W_Q5_0, q5, 0, 32, out);
    CHECK(out[0] == 1 && out[16] == 2 && out[1] == -16 && out[17] == -16, "Q5_0 layout: %g %g %g", out[0], out[16],
          out[1]);
    uint8_t q51[24] = {0x00, 0x3c, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x80}; /* d 1, m 1, qh bit 31 */
    cdx_dequant_row(CDX_W_Q5_1, q51, 0, 32, out);
    CHECK(out[0] == 1 && out[31] == 17, "Q5_1 layout: %g %g", out[0], out[31]);
    /* round trips stay within one quantization step of the block's range */
    for (size_t ti = 1; ti < sizeof qtypes / sizeof qtypes[0]; ti++) {
        int type = qtypes[ti];
        float x[256], y[256];
        uint8_t buf[256 / 32 * 34];
        fill(x, 256);
        cdx_quant_row(type, x, 256, buf);
        cdx_dequant_row(type, buf, 0, 256, y);
        double levels = type == CDX_W_Q8_0 ? 127 : type == CDX_W_Q5_0 ? 16 : type == CDX_W_Q5_1 ? 31
                      : type == CDX_W_Q4_0 ? 8 : 15;
        double worst = 0;
        for (int b = 0; b < 8; b++) {
            double amax = 0;
            for (int j = 0; j < 32; j++) amax = fmax(amax, fabs(x[b * 32 + j]));
            double step = (type == CDX_W_Q4_1 || type == CDX_W_Q5_1 ? 2 * amax : amax) / levels;
            for (int j = 0; j < 32; j++) worst = fmax(worst, fabs(x[b * 32 + j] - y[b * 32 + j]) / step);
        }
        CHECK(worst <= 1.01, "%s round trip error %.3f steps", cdx_wtype_name(type), worst);
    }
    /* F32 -> F16: every half round-trips; halfway cases round to even */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN */
        if (cdx_float_to_half(cdx_half_to_float((uint16_t)h)) != h) bad++;
    }
    CHECK(bad == 0, "%d halves do not round-trip through float", bad);
    CHECK(cdx_float_to_half(1.0f + ldexpf(1, -11)) == 0x3c00 && cdx_float_to_half(1.0f + 3 * ldexpf(1, -11)) == 0x3c02 &&
          cdx_float_to_half(65520.0f) == 0x7c00 && cdx_float_to_half(65519.0f) == 0x7bff &&
          cdx_float_to_half(ldexpf(1, -25)) == 0 && cdx_float_to_half(ldexpf(1.5f, -25)) == 1 &&
          isnan(cdx_half_to_float(cdx_float_to_half(NAN))), "F32 -> F16 rounding");
}

/* Everything above, for the path g_kern with 1, 2 and 3 threads. */
static void path_tests(void)
{
    static const size_t shapes[][3] = {{1, 1, 1}, {1, 7, 5}, {3, 4, 8}, {5, 9, 17}, {50, 70, 64},
                                       {49, 65, 33}, {97, 130, 200}, {2, 512, 768}, {7, 3, 1029}};
    const int acts[] = {CDX_ACT_NONE, CDX_ACT_QUICK_GELU, CDX_ACT_GELU};
    for (int threads = 1; threads <= 3; threads++) {
        clipdex_ctx *ctx;
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = threads;
        CHECK(clipdex_ctx_new(&ctx, &p) == CLIPDEX_OK, "ctx");
        ctx->kern = g_kern;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            float *A = malloc(m * (k + 3) * 4), *W = malloc(n * k * 4), *bias = malloc(n * 4);
            float *C = malloc(m * n * 4), *R = malloc(m * n * 4), *C0 = malloc(m * n * 4);
            fill(A, m * (k + 3));
            fill(W, n * k);
            fill(bias, n);
            for (int a = 0; a < 3; a++)
                for (unsigned fl = 0; fl < 2; fl++) {
                    fill(C0, m * n);
                    memcpy(C, C0, m * n * 4);
                    memcpy(R, C0, m * n * 4);
                    /* lda = k + 3 exercises the row stride */
                    cdx_linear(ctx, A, k + 3, W, a ? bias : NULL, C, n, m, n, k, acts[a], fl);
                    cdx_linear_ref(A, k + 3, W, a ? bias : NULL, R, n, m, n, k, acts[a], fl);
                    double e = max_rel_err(C, R, m * n);
                    CHECK(e < 1e-5, "linear %zux%zux%zu act %d accum %u threads %d: rel err %g", m, n,
                          k, acts[a], fl, threads, e);
                }
            /* any subset of rows gives bitwise the same rows (batch independence) */
            if (m > 2) {
                cdx_linear(ctx, A, k + 3, W, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
                cdx_linear(ctx, A + (k + 3), k + 3, W, bias, R, n, 1, n, k, CDX_ACT_NONE, 0);
                CHECK(memcmp(C + n, R, n * 4) == 0, "row 1 alone differs from row 1 in a batch (%zux%zux%zu)", m, n, k);
            }
            free(A), free(W), free(bias), free(C), free(R), free(C0);
        }
        /* attention: SIMD vs forced scalar, causal and not; head sizes 8, 64
         * (the register path) and 80 (64 + a remainder) */
        static const size_t aw[][2] = {{24, 3}, {128, 2}, {160, 2}};
        for (size_t ai = 0; ai < 3; ai++) {
        size_t nseq = 3, t = 13, width = aw[ai][0], heads = aw[ai][1], rows = nseq * t;
        float *q = malloc(rows * width * 4), *kk = malloc(rows * width * 4), *v = malloc(rows * width * 4);
        float *o1 = malloc(rows * width * 4), *o2 = malloc(rows * width * 4);
        float *sc = malloc(cdx_attention_scratch(nseq, heads, t, width) * 4);
        fill(q, rows * width), fill(kk, rows * width), fill(v, rows * width);
        for (int causal = 0; causal < 2; causal++) {
            cdx_attention(ctx, q, kk, v, o1, width, nseq, t, width, heads, causal, sc);
            ctx->kern = cdx_kernels_for(CDX_ISA_SCALAR);
            cdx_attention(ctx, q, kk, v, o2, width, nseq, t, width, heads, causal, sc);
            ctx->kern = g_kern;
            double e = max_rel_err(o1, o2, rows * width);
            CHECK(e < 1e-5, "attention width %zu causal=%d threads %d: rel err %g", width, causal, threads, e);
            if (causal) { /* first token attends only to itself: output = its v */
                double d = 0;
                for (size_t h = 0; h < width; h++) d = fmax(d, fabs(o1[h] - v[h]));
                CHECK(d < 1e-6, "causal first row should equal v, diff %g", d);
            }
        }
        free(q), free(kk), free(v), free(o1), free(o2), free(sc);
        }
        /* LayerNorm against a double-precision formula */
        float x[2 * 37], y[2 * 37], w[37], b[37];
        fill(x, 74), fill(w, 37), fill(b, 37);
        cdx_layernorm(ctx, x, 37, y, 37, 2, 37, w, b, 1e-5f);
        double worst = 0;
        for (int r = 0; r < 2; r++) {
            double mu = 0, var = 0;
            for (int i = 0; i < 37; i++) mu += x[r * 37 + i];
            mu /= 37;
            for (int i = 0; i < 37; i++) var += (x[r * 37 + i] - mu) * (x[r * 37 + i] - mu);
            var /= 37;
            for (int i = 0; i < 37; i++)
                worst = fmax(worst, fabs(y[r * 37 + i] - ((x[r * 37 + i] - mu) / sqrt(var + 1e-5) * w[i] + b[i])));
        }
        CHECK(worst < 1e-5, "layernorm err %g", worst);
        /* AVX2 rows vs the scalar reference on CLIP widths (and 37: tails), in place too */
        for (size_t wi = 0; wi < 3; wi++) {
            size_t nn = wi == 0 ? 37 : wi == 1 ? 512 : 768, mm = 5;
            float *lx = malloc(mm * nn * 4), *l1 = malloc(mm * nn * 4), *l2 = malloc(mm * nn * 4);
            float *lw = malloc(nn * 4), *lb = malloc(nn * 4);
            fill(lx, mm * nn), fill(lw, nn), fill(lb, nn);
            for (size_t i = 0; i < mm * nn; i++) lx[i] = lx[i] * 3.0f + 0.5f; /* an offset mean */
            cdx_layernorm(ctx, lx, nn, l1, nn, mm, nn, lw, lb, 1e-5f);
            ctx->kern = cdx_kernels_for(CDX_ISA_SCALAR);
            cdx_layernorm(ctx, lx, nn, l2, nn, mm, nn, lw, lb, 1e-5f);
            ctx->kern = g_kern;
            double le = max_rel_err(l1, l2, mm * nn);
            CHECK(le < 1e-6, "layernorm width %zu: SIMD vs scalar rel err %g", nn, le);
            memcpy(l2, lx, mm * nn * 4);
            cdx_layernorm(ctx, l2, nn, l2, nn, mm, nn, lw, lb, 1e-5f); /* x and y alias */
            CHECK(memcmp(l1, l2, mm * nn * 4) == 0, "layernorm width %zu: in place differs", nn);
            free(lx), free(l1), free(l2), free(lw), free(lb);
        }
        typed_linear(ctx, threads);
        packed_linear(ctx, threads);
        clipdex_ctx_free(ctx);
    }
}

int main(void)
{
    quant_formats();
    for (int isa = CDX_ISA_SCALAR + 1; isa < CDX_ISA_COUNT; isa++) {
        g_kern = cdx_kernels_for(isa);
        if (!g_kern) {
            check_skipped++;
            fprintf(stderr, "SKIP %s: CPU lacks it\n", cdx_isa_name(isa));
            continue;
        }
        int passed = check_passed, failed = check_failed;
        path_tests();
        odd_linear();
        act_accuracy();
        odd_rows();
        printf("path %s (%s): %d passed, %d failed\n", g_kern->name, g_kern->describe, check_passed - passed,
               check_failed - failed);
    }
    /* F16 -> F32 for all 65536 bit patterns against ldexp arithmetic; BF16 on a sample */
    int f16_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        int sign = h >> 15, e = (h >> 10) & 31, man = h & 1023;
        double want;
        if (e == 0) want = ldexp(man, -24);
        else if (e == 31) want = man ? NAN : INFINITY;
        else want = ldexp(1024 + man, e - 25);
        if (sign) want = -want;
        float got = cdx_half_to_float((uint16_t)h);
        if (isnan(want) ? !isnan(got) : (got != (float)want || !signbit(got) != !signbit(want))) f16_bad++;
    }
    CHECK(f16_bad == 0, "%d of 65536 half values convert wrongly", f16_bad);
    CHECK(cdx_bf16_to_float(0x3f80) == 1.0f && cdx_bf16_to_float(0xc040) == -3.0f &&
          cdx_bf16_to_float(0x0001) == ldexpf(1.0f, -133), "bf16 conversion");
    /* activations */
    CHECK(fabsf(cdx_act_apply(CDX_ACT_GELU, 1.0f) - 0.8413447f) < 1e-6, "gelu(1)");
    CHECK(fabsf(cdx_act_apply(CDX_ACT_QUICK_GELU, 1.0f) - (float)(1.0 / (1.0 + exp(-1.702)))) < 1e-6, "quick_gelu(1)");
    return check_done("test_kernels");
}
