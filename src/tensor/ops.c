/*
 * ops.c - scalar reference kernels, the threaded dispatch of the linear
 * layer, LayerNorm and attention. Work is cut into tasks that each own a
 * disjoint block of the output; inside a task the arithmetic per output
 * element is fixed, so thread count and batch size never change results.
 */
#include "tensor/ops.h"

#include <math.h>
#include <string.h>

#include "core/pool.h"
#include "tensor/dispatch.h"
#include "tensor/qgemm.h"

float cdx_act_apply(int act, float x)
{
    switch (act) {
    case CDX_ACT_QUICK_GELU: return x / (1.0f + expf(-1.702f * x));
    case CDX_ACT_GELU: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    default: return x;
    }
}

/* Reference: C (m,n) [+]= act(A (m,k) @ W (n,k)^T + bias). */
void cdx_linear_ref(const float *A, size_t lda, const float *W, const float *bias, float *C,
                    size_t ldc, size_t m, size_t n, size_t k, int act, unsigned flags)
{
    for (size_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        for (size_t j = 0; j < n; j++) {
            const float *w = W + j * k;
            float s = 0.0f;
            for (size_t p = 0; p < k; p++) s += a[p] * w[p];
            if (bias) s += bias[j];
            s = cdx_act_apply(act, s);
            float *c = C + i * ldc + j;
            *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
        }
    }
}

/* Reference for any weight type: row j dequantized KC values at a time into
 * a stack buffer; the sum runs over p = 0..k-1 in order, exactly as
 * cdx_linear_ref on the dequantized matrix. */
#define REF_KC 256
void cdx_linear_w_ref(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias,
                      float *C, size_t ldc, size_t m, size_t n, size_t k, int act, unsigned flags)
{
    if (W->type == CDX_W_F32) {
        cdx_linear_ref(A, lda, W->data, bias, C, ldc, m, n, k, act, flags);
        return;
    }
    float buf[REF_KC];
    for (size_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        for (size_t j = 0; j < n; j++) {
            float s = 0.0f;
            for (size_t k0 = 0; k0 < k; k0 += REF_KC) {
                size_t kc = k - k0 < REF_KC ? k - k0 : REF_KC;
                cdx_wmat_dequant(W, k, j, k0, kc, buf);
                for (size_t p = 0; p < kc; p++) s += a[k0 + p] * buf[p];
            }
            if (bias) s += bias[j];
            s = cdx_act_apply(act, s);
            float *c = C + i * ldc + j;
            *c = (flags & CDX_LIN_ACCUM) ? *c + s : s;
        }
    }
}

#define TILE_M CDX_LINEAR_TILE_M /* rows per task */
#define TILE_N CDX_LINEAR_TILE_N /* weight rows (outputs) per task */

struct linear_job {
    const float *A, *bias;
    const struct cdx_wmat *W;
    float *C;
    size_t lda, ldc, m, n, k, n_mt;
    int act;
    const struct cdx_kernels *kern;
    unsigned flags;
    /* Q8P/Q4P: the int8 activations (qgemm.h layout) */
    int8_t *qa;
    float *da;
    int32_t *sa;
};

#define QROWS 8 /* rows per activation-quantization task */

static void quant_task(void *arg, size_t t)
{
    const struct linear_job *j = arg;
    size_t kb = j->k / CDX_QK;
    if (j->W->type == CDX_W_I8P) {
        for (size_t i = t * QROWS; i < j->m && i < (t + 1) * QROWS; i++)
            j->kern->act_i8(j->A + i * j->lda, j->k, j->kern->qmax_i8, j->qa + i * j->k, j->da + i, j->sa + i);
        return;
    }
    int qmax = j->kern->qmax[j->W->type == CDX_W_Q8P ? 0 : 1];
    for (size_t i = t * QROWS; i < j->m && i < (t + 1) * QROWS; i++)
        j->kern->act_q8(j->A + i * j->lda, j->k, qmax, j->qa + i * j->k, j->da + i * kb, j->sa + i * kb);
}

static void linear_task(void *arg, size_t t)
{
    const struct linear_job *j = arg;
    size_t mi = t % j->n_mt, ni = t / j->n_mt;
    size_t m0 = mi * TILE_M, m1 = m0 + TILE_M < j->m ? m0 + TILE_M : j->m;
    size_t n0 = ni * TILE_N, n1 = n0 + TILE_N < j->n ? n0 + TILE_N : j->n;
    if (j->qa && j->W->type == CDX_W_I8P) {
        j->kern->i8gemm_tile(j->qa, j->da, j->sa, j->W->data, j->k, j->bias, j->C, j->ldc, m0, m1, n0, n1, j->act,
                             j->flags);
        return;
    }
    if (j->qa) {
        int wt = j->W->type == CDX_W_Q8P ? CDX_QP_Q8 : CDX_QP_Q4;
        j->kern->qgemm_tile(wt, j->qa, j->da, j->sa, j->W->data, j->k, j->bias, j->C, j->ldc, m0, m1, n0, n1, j->act,
                            j->flags);
        return;
    }
    cdx_linear_tile_fn tile = j->W->type == CDX_W_BF16P && j->kern->linear_tile_bf16 ? j->kern->linear_tile_bf16
                                                                                     : j->kern->linear_tile;
    tile(j->A, j->lda, j->W, j->bias, j->C, j->ldc, m0, m1, n0, n1, j->k, j->act, j->flags);
}

/* The scalar table's tiles: the references on the tile's sub-blocks. */
void cdx_linear_tile_ref(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias, float *C,
                         size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k, int act, unsigned flags)
{
    struct cdx_wmat w = cdx_wmat_sub(W, k, n0);
    cdx_linear_w_ref(A + m0 * lda, lda, &w, bias ? bias + n0 : NULL, C + m0 * ldc + n0, ldc, m1 - m0, n1 - n0, k,
                     act, flags);
}

void cdx_qgemm_tile_ref(int wtype, const int8_t *qa, const float *da, const int32_t *sa, const void *Wp, size_t k,
                        const float *bias, float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, int act,
                        unsigned flags)
{
    size_t kb = k / CDX_QK;
    struct cdx_wmat full = {wtype == CDX_QP_Q8 ? CDX_W_Q8P : CDX_W_Q4P, Wp};
    struct cdx_wmat w = cdx_wmat_sub(&full, k, n0);
    cdx_qgemm_ref(wtype, qa + m0 * k, da + m0 * kb, sa + m0 * kb, m1 - m0, w.data, n1 - n0, k, bias ? bias + n0 : NULL,
                  C + m0 * ldc + n0, ldc, act, flags);
}

void cdx_i8gemm_tile_ref(const int8_t *qa, const float *da, const int32_t *sa, const void *Wp, size_t k,
                         const float *bias, float *C, size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1,
                         int act, unsigned flags)
{
    cdx_i8gemm_ref(qa + m0 * k, da + m0, sa + m0, m1 - m0, (const uint8_t *)Wp + n0 / 16 * cdx_i8p_bytes(16, k),
                   n1 - n0, k, bias ? bias + n0 : NULL, C + m0 * ldc + n0, ldc, act, flags);
}

static int is_int8_type(int type)
{
    return type == CDX_W_Q8P || type == CDX_W_Q4P || type == CDX_W_I8P;
}

/* Several products of one input, one pool job: task t of the job is task
 * t - first[o] of product o. */
struct multi_job {
    struct linear_job j[CDX_LIN_MAX_OUT];
    size_t first[CDX_LIN_MAX_OUT + 1];
    size_t n_out;
};

static void multi_task(void *arg, size_t t)
{
    struct multi_job *mj = arg;
    size_t o = 0;
    while (t >= mj->first[o + 1]) o++;
    linear_task(&mj->j[o], t - mj->first[o]);
}

/* Quantizes A once for every product of mj (all of one int8 type, k % 32 ==
 * 0): per row, so a row's result never depends on the batch. If the scratch
 * cannot grow, the products run the fp32 path on the dequantized weights. */
static void quantize_shared(clipdex_ctx *ctx, struct multi_job *mj)
{
    struct linear_job *j = &mj->j[0];
    size_t m = j->m, k = j->k;
    size_t kb = j->W->type == CDX_W_I8P ? 1 : k / CDX_QK, qbytes = (m * k + 63) / 64 * 64;
    if (cdx_ctx_reserve_q(ctx, qbytes + m * kb * (sizeof(float) + sizeof(int32_t))) != 0) return;
    j->qa = ctx->qscratch;
    j->da = (float *)(void *)((uint8_t *)ctx->qscratch + qbytes);
    j->sa = (int32_t *)(void *)(j->da + m * kb);
    cdx_pool_run(ctx->pool, quant_task, j, (m + QROWS - 1) / QROWS);
    for (size_t o = 1; o < mj->n_out; o++) {
        mj->j[o].qa = j->qa;
        mj->j[o].da = j->da;
        mj->j[o].sa = j->sa;
    }
}

void cdx_linear_multi(clipdex_ctx *ctx, const float *A, size_t lda, size_t m, size_t k,
                      const struct cdx_lin_out *out, size_t n_out, int act, unsigned flags)
{
    if (m == 0 || n_out == 0) return;
    int shared = n_out <= CDX_LIN_MAX_OUT;
    for (size_t o = 1; shared && o < n_out; o++) shared = out[o].W->type == out[0].W->type;
    if (!shared) { /* mixed types (or too many): one product at a time */
        for (size_t o = 0; o < n_out; o++) cdx_linear_multi(ctx, A, lda, m, k, &out[o], 1, act, flags);
        return;
    }
    struct multi_job mj = {.n_out = n_out};
    size_t n_mt = (m + TILE_M - 1) / TILE_M;
    for (size_t o = 0; o < n_out; o++) {
        mj.j[o] = (struct linear_job){A, out[o].bias, out[o].W, out[o].C, lda, out[o].ldc, m, out[o].n, k, n_mt,
                                      act, ctx->kern, flags, NULL, NULL, NULL};
        mj.first[o + 1] = mj.first[o] + n_mt * ((out[o].n + TILE_N - 1) / TILE_N);
    }
    if (is_int8_type(out[0].W->type) && k % CDX_QK == 0) quantize_shared(ctx, &mj);
    cdx_pool_run(ctx->pool, multi_task, &mj, mj.first[n_out]);
}

void cdx_linear_w(clipdex_ctx *ctx, const float *A, size_t lda, const struct cdx_wmat *W,
                  const float *bias, float *C, size_t ldc, size_t m, size_t n, size_t k, int act,
                  unsigned flags)
{
    struct cdx_lin_out o = {W, bias, C, ldc, n};
    cdx_linear_multi(ctx, A, lda, m, k, &o, 1, act, flags);
}

void cdx_linear(clipdex_ctx *ctx, const float *A, size_t lda, const float *W, const float *bias,
                float *C, size_t ldc, size_t m, size_t n, size_t k, int act, unsigned flags)
{
    struct cdx_wmat w = cdx_wmat_f32(W);
    cdx_linear_w(ctx, A, lda, &w, bias, C, ldc, m, n, k, act, flags);
}

struct ln_job {
    const float *x, *w, *b;
    float *y;
    size_t ldx, ldy, m, n, rows_per_task;
    float eps;
    cdx_layernorm_row_fn row;
};

/* Reference LayerNorm row: mean and variance in double, in order. */
void cdx_layernorm_row_ref(const float *x, float *y, size_t n, const float *w, const float *b, float eps)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += x[i];
    double mean = s / (double)n, v = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = x[i] - mean;
        v += d * d;
    }
    float inv = (float)(1.0 / sqrt(v / (double)n + (double)eps));
    float fm = (float)mean;
    for (size_t i = 0; i < n; i++) y[i] = (x[i] - fm) * inv * w[i] + b[i];
}

static void ln_task(void *arg, size_t t)
{
    const struct ln_job *j = arg;
    size_t r0 = t * j->rows_per_task, r1 = r0 + j->rows_per_task < j->m ? r0 + j->rows_per_task : j->m;
    for (size_t r = r0; r < r1; r++) j->row(j->x + r * j->ldx, j->y + r * j->ldy, j->n, j->w, j->b, j->eps);
}

void cdx_layernorm(clipdex_ctx *ctx, const float *x, size_t ldx, float *y, size_t ldy, size_t m,
                   size_t n, const float *w, const float *b, float eps)
{
    if (m == 0) return;
    struct ln_job j = {x, w, b, y, ldx, ldy, m, n, 16, eps, ctx->kern->layernorm_row};
    cdx_pool_run(ctx->pool, ln_task, &j, (m + j.rows_per_task - 1) / j.rows_per_task);
}

/* Per (sequence, head) task: CDX_ATTN_ROWS rows of scores (T64 = t rounded
 * up to 64 floats each), then the head's K (or K transposed) and V packed
 * into T64 x d floats each (see attn_task). */
#define ROUND16(t) (((t) + 15) / 16 * 16)
#define ROUND64(t) (((t) + 63) / 64 * 64)
size_t cdx_attention_scratch(size_t n_seq, size_t heads, size_t t, size_t width)
{
    return n_seq * heads * CDX_ATTN_ROWS * ROUND64(t) + 2 * n_seq * ROUND64(t) * width;
}

struct attn_job {
    const float *q, *k, *v;
    float *out, *scratch;
    const size_t *sel; /* NULL, or per sequence the one query row (q and out compact) */
    size_t ld, t, d, heads, n_seq;
    int causal;
    cdx_attn_row_fn row_fn;
    cdx_attn_rows_fn rows_fn; /* without a causal mask, if the path has it */
    float scale;
};

/* Reference attention row: o = softmax(q K[0..lim)^T * scale) V[0..lim). */
void cdx_attn_row_ref(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d, float scale,
                      float *p, float *o)
{
    float mx = -INFINITY;
    for (size_t c = 0; c < lim; c++) {
        const float *kc = K + c * ld;
        float sc = 0.0f;
        for (size_t e = 0; e < d; e++) sc += q[e] * kc[e];
        sc *= scale;
        p[c] = sc;
        if (sc > mx) mx = sc;
    }
    float sum = 0.0f;
    for (size_t c = 0; c < lim; c++) {
        p[c] = expf(p[c] - mx);
        sum += p[c];
    }
    float inv = 1.0f / sum;
    memset(o, 0, d * sizeof *o);
    for (size_t c = 0; c < lim; c++) {
        const float *vc = V + c * ld;
        float w = p[c] * inv;
        for (size_t e = 0; e < d; e++) o[e] += w * vc[e];
    }
}

/* The head's `keys` V rows (d floats every ld from v) into (ROUND16(keys),
 * d), the rows past the last key zero. */
static void pack_rows(float *dst, const float *src, size_t ld, size_t keys, size_t d)
{
    for (size_t c = 0; c < keys; c++) memcpy(dst + c * d, src + c * ld, d * sizeof *dst);
    memset(dst + keys * d, 0, (ROUND16(keys) - keys) * d * sizeof *dst);
}

/* Without a causal mask, with the path's attn_rows: K transposed into
 * (d, ROUND64(t)), zero past t; every query row (or the selected one) in
 * balanced groups of at most CDX_ATTN_ROWS. */
static void attn_rows_task(const struct attn_job *j, size_t s, size_t off, float *p, float *K, float *V)
{
    size_t t = j->t, d = j->d, L = ROUND64(t), base = s * t;
    const float *k0 = j->k + base * j->ld + off;
    for (size_t e = 0; e < d; e++) { /* the t rows' lines stay in L1 while e moves */
        float *ke = K + e * L;
        for (size_t c = 0; c < t; c++) ke[c] = k0[c * j->ld + e];
        memset(ke + t, 0, (L - t) * sizeof *K);
    }
    pack_rows(V, j->v + base * j->ld + off, j->ld, t, d);
    if (j->sel) {
        j->rows_fn(j->q + s * j->ld + off, j->ld, 1, K, V, t, d, j->scale, p, j->out + s * j->ld + off, j->ld);
        return;
    }
    size_t ng = (t + CDX_ATTN_ROWS - 1) / CDX_ATTN_ROWS;
    for (size_t g = 0, i = 0; g < ng; g++) {
        size_t r = t / ng + (g < t % ng);
        j->rows_fn(j->q + (base + i) * j->ld + off, j->ld, r, K, V, t, d, j->scale, p,
                   j->out + (base + i) * j->ld + off, j->ld);
        i += r;
    }
}

/* One (sequence, head): every query row (causal: row i sees keys 0..i), or
 * only the selected row of the sequence. The head's keys and values are
 * first copied into contiguous (lim, d) blocks: in place they are d floats
 * every ld (a 3 KB stride for width 768), which maps the 50 K and V rows of
 * an image onto a quarter of the L1 sets, and the row kernel then missed L1
 * on most loads (measured: attention 7.6 % of a batch-16 fp32 image, 14.6 %
 * of a Q8 one, before). The copy changes no value and no order: every
 * path's result is bitwise what it was with the strided rows. The rows
 * past the last key, up to a multiple of 16, are zeros: a row kernel may
 * read them (dispatch.h). Without a causal mask a path with attn_rows
 * takes several query rows per pass over K and V (attn_rows_task). */
static void attn_task(void *arg, size_t task)
{
    const struct attn_job *j = arg;
    size_t s = task / j->heads, h = task % j->heads, d = j->d;
    size_t base = s * j->t, off = h * d, L = ROUND64(j->t);
    float *p = j->scratch + task * CDX_ATTN_ROWS * L;
    float *K = j->scratch + j->n_seq * j->heads * CDX_ATTN_ROWS * L + task * 2 * L * d, *V = K + L * d;
    if (!j->causal && j->rows_fn) {
        attn_rows_task(j, s, off, p, K, V);
        return;
    }
    size_t keys = j->sel && j->causal ? j->sel[s] + 1 : j->t;
    pack_rows(K, j->k + base * j->ld + off, j->ld, keys, d);
    pack_rows(V, j->v + base * j->ld + off, j->ld, keys, d);
    if (j->sel) { /* the selected row sees `keys` keys */
        j->row_fn(j->q + s * j->ld + off, K, V, d, keys, d, j->scale, p, j->out + s * j->ld + off);
        return;
    }
    for (size_t i = 0; i < j->t; i++)
        j->row_fn(j->q + (base + i) * j->ld + off, K, V, d, j->causal ? i + 1 : j->t, d, j->scale, p,
                  j->out + (base + i) * j->ld + off);
}

void cdx_attention(clipdex_ctx *ctx, const float *q, const float *k, const float *v, float *out,
                   size_t ld, size_t n_seq, size_t t, size_t width, size_t heads, int causal,
                   float *scratch)
{
    cdx_attention_sel(ctx, q, k, v, out, ld, n_seq, t, width, heads, causal, NULL, scratch);
}

void cdx_attention_sel(clipdex_ctx *ctx, const float *q, const float *k, const float *v, float *out,
                       size_t ld, size_t n_seq, size_t t, size_t width, size_t heads, int causal,
                       const size_t *sel, float *scratch)
{
    size_t d = width / heads;
    struct attn_job j = {q, k, v, out, scratch, sel, ld, t, d, heads, n_seq, causal, ctx->kern->attn_row,
                         ctx->kern->attn_rows, 1.0f / sqrtf((float)d)};
    cdx_pool_run(ctx->pool, attn_task, &j, n_seq * heads);
}

float cdx_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalize */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float cdx_bf16_to_float(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void cdx_l2_normalize(float *x, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    if (s <= 0.0) return;
    float inv = (float)(1.0 / sqrt(s));
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}
