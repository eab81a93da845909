/*
 * test_bf16.c - BF16 weights: the float <-> bfloat16 conversions (round to
 * nearest even, NaN, inf, overflow, subnormals), BF16 rows packed into BF16P
 * panels and read back exactly, and the AVX512_BF16 kernel against its exact
 * scalar model (cdx_linear_bf16_ref) bit for bit on odd shapes, with bias,
 * accumulation and special activation values; bitwise the same for any
 * thread count and with a row computed alone; and every fp32 path's
 * widened BF16P product (the default for BF16 on Intel CPUs, and on any CPU
 * without AVX512_BF16) bitwise equal to the same path's F32P product with
 * the weights converted to floats. The golden accuracy of BF16 models is
 * checked in test_quant.c. Without AVX512_BF16 the vdpbf16ps part is
 * reported as skipped.
 */
#include <stdint.h>

#include "check.h"
#include "clipdex.h"
#include "core/core.h"
#include "core/cpu.h"
#include "tensor/dispatch.h"
#include "tensor/ops.h"

static uint64_t rng = 0x2545f4914f6cdd1dull;
static float frand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

static float from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_convert(void)
{
    static const struct {
        uint32_t in;
        uint16_t out;
    } cases[] = {
        {0x3f800000u, 0x3f80}, /* 1 */
        {0x3f808000u, 0x3f80}, /* 1 + 2^-8: a tie, to even (down) */
        {0x3f818000u, 0x3f82}, /* 1 + 3 * 2^-8: a tie, to even (up) */
        {0x3f808001u, 0x3f81}, /* just above the tie */
        {0xbf80ffffu, 0xbf81}, /* negative, rounds away */
        {0x7f7fffffu, 0x7f80}, /* FLT_MAX overflows to inf */
        {0x7f800000u, 0x7f80}, /* inf */
        {0xff800000u, 0xff80}, /* -inf */
        {0x7fc00000u, 0x7fc0}, /* quiet NaN */
        {0x7f800001u, 0x7fc0}, /* signalling NaN: stays NaN, made quiet */
        {0x00400000u, 0x0040}, /* subnormal weight: kept */
        {0x80000000u, 0x8000}, /* -0 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint16_t h = cdx_float_to_bf16(from_bits(cases[i].in));
        CHECK(h == cases[i].out, "bf16(%08x) = %04x, expected %04x", cases[i].in, h, cases[i].out);
    }
    CHECK(cdx_float_to_bf16_act(from_bits(0x00400000u)) == 0x0000 &&
              cdx_float_to_bf16_act(from_bits(0x80400000u)) == 0x8000,
          "activation rounding must flush subnormals to a signed zero");
    int bad = 0;
    for (int i = 0; i < 100000; i++) { /* exact round trip and nearest */
        float x = frand() * 1000.0f, y = cdx_bf16_to_float(cdx_float_to_bf16(x));
        uint16_t h = cdx_float_to_bf16(x);
        float lo = cdx_bf16_to_float((uint16_t)(h - 1)), hi = cdx_bf16_to_float((uint16_t)(h + 1));
        if (fabsf(y - x) > fabsf(lo - x) || fabsf(y - x) > fabsf(hi - x)) bad++;
        if (cdx_float_to_bf16(y) != h) bad++;
    }
    CHECK(bad == 0, "%d values not rounded to the nearest bfloat16", bad);
}

/* BF16 rows (n, k) of random values, and their BF16P panels. */
static void make_weights(size_t n, size_t k, uint8_t *rows, uint8_t *P)
{
    float *x = malloc(k * 4);
    for (size_t j = 0; j < n; j++) {
        for (size_t p = 0; p < k; p++) x[p] = frand() * 0.1f;
        cdx_quant_row(CDX_W_BF16, x, k, rows + j * 2 * k);
    }
    struct cdx_wmat r = {CDX_W_BF16, rows};
    CHECK(cdx_wmat_pack(CDX_W_BF16P, &r, n, k, P) == 0, "pack BF16P %zux%zu", n, k);
    free(x);
}

static void test_pack(void)
{
    static const size_t shapes[][2] = {{1, 1}, {16, 2}, {17, 33}, {40, 768}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t n = shapes[s][0], k = shapes[s][1], pb = cdx_wmat_bytes(CDX_W_BF16P, n, k);
        CHECK(pb == (n + 15) / 16 * ((k + 1) / 2) * 64, "BF16P %zux%zu bytes %zu", n, k, pb);
        uint8_t *rows = malloc(n * k * 2), *P = malloc(pb);
        make_weights(n, k, rows, P);
        struct cdx_wmat pm = {CDX_W_BF16P, P};
        float *a = malloc(k * 4), *b = malloc(k * 4);
        int same = 1;
        for (size_t j = 0; j < n; j++) {
            cdx_dequant_row(CDX_W_BF16, rows + j * 2 * k, 0, k, a);
            cdx_wmat_dequant(&pm, k, j, 0, k, b);
            same &= memcmp(a, b, k * 4) == 0;
        }
        CHECK(same, "BF16P %zux%zu: panels differ from the rows", n, k);
        /* padding: rows past n and the odd k's second half are zero */
        int zero = 1;
        if (k % 2)
            for (size_t r = 0; r < 16; r++) zero &= P[((k / 2) * 16 + r) * 4 + 2] == 0 && P[((k / 2) * 16 + r) * 4 + 3] == 0;
        CHECK(zero, "BF16P %zux%zu: the padding of an odd k is not zero", n, k);
        free(rows), free(P), free(a), free(b);
    }
}

/* Panels as a model file holds them: 64-byte aligned (the kernels use
 * aligned loads on them). */
static void *panels_alloc(int type, size_t n, size_t k)
{
    return aligned_alloc(64, (cdx_wmat_bytes(type, n, k) + 63) / 64 * 64);
}

/* Two contexts on the kernel table K, with 1 and 3 threads. */
static void ctx_pair(clipdex_ctx **ctx1, clipdex_ctx **ctx3, const struct cdx_kernels *K)
{
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = 1;
    clipdex_ctx_new(ctx1, &cp);
    cp.n_threads = 3;
    clipdex_ctx_new(ctx3, &cp);
    (*ctx1)->kern = (*ctx3)->kern = K;
}

/* The avx512 table with the vdpbf16ps kernel for BF16P whether or not
 * dispatch prefers it on this CPU (it widens on Intel); NULL without
 * AVX512_BF16. */
static const struct cdx_kernels *dot_kernels(void)
{
    static struct cdx_kernels t;
    const struct cdx_kernels *K = cdx_kernels_for(CDX_ISA_AVX512);
    if (!K || !cdx_cpu()->avx512_bf16) return NULL;
    t = *K;
    t.linear_tile_bf16 = cdx_linear_tile_bf16_avx512;
    return &t;
}

/* Widened BF16P on each fp32 path: bitwise that path's F32P product with
 * the weights as floats, for streaming (few rows) and blocked shapes, odd
 * k and n, bias and ACCUM, and 3 threads as 1. */
static void test_widen(void)
{
    static const size_t shapes[][3] = {{1, 1, 1},     {1, 16, 2},    {5, 7, 3},      {7, 33, 65},
                                       {13, 64, 255}, {48, 17, 768}, {49, 130, 257}, {97, 80, 512}};
    static const int paths[] = {CDX_ISA_AVX2, CDX_ISA_AVX512, CDX_ISA_NEON};
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        const struct cdx_kernels *K = cdx_kernels_for(paths[pi]);
        if (!K) {
            SKIP("widened BF16P on %s: the CPU lacks it", cdx_isa_name(paths[pi]));
            continue;
        }
        struct cdx_kernels t = *K;
        t.linear_tile_bf16 = NULL;
        clipdex_ctx *ctx1, *ctx3;
        ctx_pair(&ctx1, &ctx3, &t);
        int bad = 0;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            uint8_t *rows = malloc(n * k * 2), *P = panels_alloc(CDX_W_BF16P, n, k);
            float *wf = malloc(n * k * 4), *F = panels_alloc(CDX_W_F32P, n, k);
            make_weights(n, k, rows, P);
            for (size_t j = 0; j < n; j++) cdx_dequant_row(CDX_W_BF16, rows + j * 2 * k, 0, k, wf + j * k);
            struct cdx_wmat fr = {CDX_W_F32, wf}, pm = {CDX_W_BF16P, P}, fm = {CDX_W_F32P, F};
            CHECK(cdx_wmat_pack(CDX_W_F32P, &fr, n, k, F) == 0, "pack F32P %zux%zu", n, k);
            float *A = malloc(m * k * 4), *bias = malloc(n * 4), *C = malloc(m * n * 4), *R = malloc(m * n * 4);
            float *C0 = malloc(m * n * 4);
            for (size_t i = 0; i < m * k; i++) A[i] = frand();
            for (size_t j = 0; j < n; j++) bias[j] = frand();
            for (size_t i = 0; i < m * n; i++) C0[i] = frand();
            for (int v = 0; v < 3; v++) { /* plain, bias, bias + ACCUM */
                const float *bb = v ? bias : NULL;
                unsigned fl = v == 2 ? CDX_LIN_ACCUM : 0;
                memcpy(C, C0, m * n * 4), memcpy(R, C0, m * n * 4);
                cdx_linear_w(ctx1, A, k, &fm, bb, R, n, m, n, k, CDX_ACT_QUICK_GELU, fl);
                cdx_linear_w(ctx1, A, k, &pm, bb, C, n, m, n, k, CDX_ACT_QUICK_GELU, fl);
                int same1 = !memcmp(C, R, m * n * 4);
                memcpy(C, C0, m * n * 4);
                cdx_linear_w(ctx3, A, k, &pm, bb, C, n, m, n, k, CDX_ACT_QUICK_GELU, fl);
                int same3 = !memcmp(C, R, m * n * 4);
                CHECK(same1 && same3, "%s %zux%zux%zu variant %d: widened BF16P != F32P (1 thread %s, 3 threads %s)",
                      t.name, m, n, k, v, same1 ? "same" : "differs", same3 ? "same" : "differs");
                bad += !(same1 && same3);
            }
            free(rows), free(P), free(wf), free(F), free(A), free(bias), free(C), free(R), free(C0);
        }
        if (!bad) printf("widened BF16P on %s: bitwise F32P on %zu shapes\n", t.name, sizeof shapes / sizeof shapes[0]);
        clipdex_ctx_free(ctx1);
        clipdex_ctx_free(ctx3);
    }
}

static void test_kernel(void)
{
    const struct cdx_kernels *K = dot_kernels();
    if (!K) {
        SKIP("AVX512_BF16 kernel: the CPU lacks AVX512_BF16 (BF16 weights are widened to floats there)");
        return;
    }
    static const size_t shapes[][3] = {{1, 1, 1}, {1, 16, 2}, {5, 7, 3},      {7, 33, 64},    {13, 64, 255},
                                       {48, 17, 768}, {49, 130, 257}, {97, 80, 512}, {481, 50, 96}};
    clipdex_ctx *ctx1, *ctx3;
    ctx_pair(&ctx1, &ctx3, K);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        uint8_t *rows = malloc(n * k * 2), *P = panels_alloc(CDX_W_BF16P, n, k);
        make_weights(n, k, rows, P);
        float *A = malloc(m * k * 4), *bias = malloc(n * 4), *C = malloc(m * n * 4), *R = malloc(m * n * 4);
        float *C0 = malloc(m * n * 4), *C1 = malloc(n * 4);
        for (size_t i = 0; i < m * k; i++) A[i] = frand() * (i % 7 == 0 ? 100.0f : 1.0f);
        if (m * k > 8) A[3] = from_bits(0x00000007u), A[5] = -from_bits(0x00200000u); /* subnormal activations */
        for (size_t j = 0; j < n; j++) bias[j] = frand();
        for (size_t i = 0; i < m * n; i++) C0[i] = frand();
        struct cdx_wmat pm = {CDX_W_BF16P, P}, rm = {CDX_W_BF16, rows};
        for (int v = 0; v < 3; v++) { /* plain, bias, bias + ACCUM */
            const float *bb = v ? bias : NULL;
            unsigned fl = v == 2 ? CDX_LIN_ACCUM : 0;
            memcpy(C, C0, m * n * 4), memcpy(R, C0, m * n * 4);
            cdx_linear_w(ctx1, A, k, &pm, bb, C, n, m, n, k, CDX_ACT_NONE, fl);
            cdx_linear_bf16_ref(A, k, &rm, bb, R, n, m, n, k, CDX_ACT_NONE, fl);
            CHECK(!memcmp(C, R, m * n * 4), "%zux%zux%zu variant %d: AVX512_BF16 kernel != exact reference", m, n,
                  k, v);
            memcpy(R, C, m * n * 4), memcpy(C, C0, m * n * 4);
            cdx_linear_w(ctx3, A, k, &pm, bb, C, n, m, n, k, CDX_ACT_NONE, fl);
            CHECK(!memcmp(C, R, m * n * 4), "%zux%zux%zu variant %d: 3 threads != 1 thread", m, n, k, v);
        }
        if (m > 2) {
            cdx_linear_w(ctx1, A + 2 * k, k, &pm, bias, C1, n, 1, n, k, CDX_ACT_NONE, 0);
            cdx_linear_w(ctx3, A, k, &pm, bias, C, n, m, n, k, CDX_ACT_NONE, 0);
            CHECK(!memcmp(C + 2 * n, C1, n * 4), "%zux%zux%zu: row 2 alone differs", m, n, k);
        }
        for (int act = CDX_ACT_QUICK_GELU; act <= CDX_ACT_GELU; act++) {
            cdx_linear_w(ctx3, A, k, &pm, bias, C, n, m, n, k, act, 0);
            cdx_linear_bf16_ref(A, k, &pm, bias, R, n, m, n, k, act, 0);
            double worst = 0, scale = 1e-3;
            for (size_t i = 0; i < m * n; i++) scale = fmax(scale, fabs(R[i]));
            for (size_t i = 0; i < m * n; i++) worst = fmax(worst, fabs(C[i] - R[i]) / scale);
            CHECK(worst < 1e-5, "%zux%zux%zu act %d: error %g of the largest output", m, n, k, act, worst);
        }
        free(rows), free(P), free(A), free(bias), free(C), free(R), free(C0), free(C1);
    }
    clipdex_ctx_free(ctx1);
    clipdex_ctx_free(ctx3);
}

/* Embeds CLIP.png and a text with the model at dir on the given path. */
static int embed2(const char *dir, const char *shared, const struct cdx_kernels *K, float *img, float *txt, int e,
                  char *dtype, size_t dlen)
{
    clipdex_ctx *ctx;
    clipdex_model *m = NULL;
    clipdex_image *im = NULL;
    char path[1024];
    snprintf(path, sizeof path, "%s/data/images/CLIP.png", shared);
    if (clipdex_ctx_new(&ctx, NULL)) return -1;
    ctx->kern = K;
    int rc = clipdex_model_load(ctx, dir, NULL, &m);
    if (!rc) rc = clipdex_image_load(ctx, path, NULL, &im);
    if (!rc) rc = clipdex_image_embed(ctx, m, (const clipdex_image *const *)&im, 1, img, (size_t)e, 0);
    if (!rc) rc = clipdex_text_embed(ctx, m, (const char *const[]){"a diagram of two towers"}, 1, txt, (size_t)e, 0);
    clipdex_model_info info;
    if (!rc && !clipdex_model_get_info(m, &info)) snprintf(dtype, dlen, "%s", info.dtype);
    if (rc) fprintf(stderr, "embed2: %s\n", clipdex_ctx_errmsg(ctx));
    clipdex_image_free(im);
    clipdex_model_free(m);
    clipdex_ctx_free(ctx);
    return rc;
}

/* A BF16 OpenCLIP checkpoint: on AVX512_BF16 its matrices are packed at load
 * and multiplied in bf16; on AVX2 they are widened to F32 exactly. Both
 * embeddings agree to the BF16 bound. */
static void test_load(void)
{
    const char *shared = check_shared();
    const struct cdx_kernels *K = dot_kernels(), *K2 = cdx_kernels_for(CDX_ISA_AVX2);
    if (!shared || !K || !K2) {
        SKIP("BF16 checkpoint load: needs ../shared, AVX2 and AVX512_BF16");
        return;
    }
    char dir[512], cmd[2048];
    snprintf(dir, sizeof dir, "%s/models/bf16-small-oc", check_build());
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/models' && rm -rf '%s' && '%s/tools/genmodel' --config small "
             "--layout openclip --dtype bf16 --seed 11 --out '%s' --vocab '%s/data/vocab' >/dev/null",
             check_build(), dir, check_build(), dir, shared);
    CHECK(system(cmd) == 0, "genmodel: %s", cmd);
    enum { E = 1024 };
    float a[2][E], b[2][E];
    char d1[32] = "", d2[32] = "";
    int rc1 = embed2(dir, shared, K, a[0], a[1], 24, d1, sizeof d1);
    int rc2 = embed2(dir, shared, K2, b[0], b[1], 24, d2, sizeof d2);
    CHECK(rc1 == 0 && rc2 == 0, "embedding with the BF16 checkpoint failed");
    if (rc1 || rc2) return;
    CHECK(strcmp(d1, "BF16") == 0, "dtype %s, expected BF16", d1);
    for (int t = 0; t < 2; t++) {
        double c = clipdex_cosine(a[t], b[t], 24);
        CHECK(c >= 0.9995, "%s: bf16 kernels vs widened weights cosine %.7f", t ? "text" : "image", c);
        printf("BF16 checkpoint, %s: vdpbf16ps vs widened weights cosine %.7f\n", t ? "text" : "image", c);
    }
}

int main(void)
{
    test_convert();
    test_pack();
    test_widen();
    test_kernel();
    test_load();
    return check_done("test_bf16");
}
