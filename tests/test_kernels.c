/*
 * test_kernels.c - every fast kernel against its scalar reference on odd
 * shapes, with 1, 2 and 3 threads; and thread-count invariance (bitwise).
 */
#include <stdint.h>

#include "check.h"
#include "core/core.h"
#include "tensor/ops.h"

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

int main(void)
{
    static const size_t shapes[][3] = {{1, 1, 1}, {1, 7, 5}, {3, 4, 8}, {5, 9, 17}, {50, 70, 64},
                                       {49, 65, 33}, {97, 130, 200}, {2, 512, 768}, {7, 3, 1029}};
    const int acts[] = {CDX_ACT_NONE, CDX_ACT_QUICK_GELU, CDX_ACT_GELU};
    for (int threads = 1; threads <= 3; threads++) {
        clipdex_ctx *ctx;
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = threads;
        CHECK(clipdex_ctx_new(&ctx, &p) == CLIPDEX_OK, "ctx");
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
        /* attention: SIMD vs forced scalar, causal and not */
        size_t nseq = 3, t = 13, width = 24, heads = 3, rows = nseq * t;
        float *q = malloc(rows * width * 4), *kk = malloc(rows * width * 4), *v = malloc(rows * width * 4);
        float *o1 = malloc(rows * width * 4), *o2 = malloc(rows * width * 4);
        float *sc = malloc(cdx_attention_scratch(nseq, heads, t) * 4);
        fill(q, rows * width), fill(kk, rows * width), fill(v, rows * width);
        for (int causal = 0; causal < 2; causal++) {
            cdx_attention(ctx, q, kk, v, o1, width, nseq, t, width, heads, causal, sc);
            ctx->force_scalar = 1;
            cdx_attention(ctx, q, kk, v, o2, width, nseq, t, width, heads, causal, sc);
            ctx->force_scalar = 0;
            double e = max_rel_err(o1, o2, rows * width);
            CHECK(e < 1e-5, "attention causal=%d threads %d: rel err %g", causal, threads, e);
            if (causal) { /* first token attends only to itself: output = its v */
                double d = 0;
                for (size_t h = 0; h < width; h++) d = fmax(d, fabs(o1[h] - v[h]));
                CHECK(d < 1e-6, "causal first row should equal v, diff %g", d);
            }
        }
        free(q), free(kk), free(v), free(o1), free(o2), free(sc);
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
        clipdex_ctx_free(ctx);
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
