/*
 * linear_neon.c - the fp32 kernels of the aarch64 NEON paths (dispatch.c puts
 * them in the neon and neon-dot tables): the linear tile, its epilogue, one
 * LayerNorm row and one attention row. Advanced SIMD is part of ARMv8-A, so
 * nothing here needs a target attribute. Compiled only on aarch64.
 *
 * Linear layer C (m,n) = A (m,k) @ W (n,k)^T: W comes as panels of 16
 * outputs x kc inputs, k-major (one k step is four float32x4 loads): F32P
 * panels are read in place, F16P panels widened with vcvt_f32_f16, every
 * other type packed per task (F32 and F16 rows through 4x4 register
 * transposes, the rest through the exact cdx_wmat_dequant). The
 * micro-kernel keeps R x 4 accumulators (R = 1 .. 6 rows, 24 of the 32
 * vector registers at R = 6) and multiplies each weight vector by one A
 * element per row (fmla by element). Invariant, as on x86: every output is
 * one sequential FMA chain over k = 0 .. K-1 from 0 (partial sums between k
 * blocks stored as floats, which is exact), then + bias, the activation,
 * the optional accumulate. Row groups are balanced (1 to 6 rows, never
 * padded), so results do not depend on the batch, the tiling or the thread
 * count. With at most SMALL_M rows and F32P/F16P weights the loops turn
 * around (panel by panel in k chunks, as linear_avx2.c): each panel streams
 * from memory once with prefetch; the same chains, so the same bits.
 */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define MR 6   /* rows per micro-kernel at most */
#define NR 16  /* outputs per panel */
#define KC 256 /* k block of the blocked path */
#define SMALL_M 48 /* at most this many rows: the streaming path */
#define SKC 128 /* its k chunk when it has more than one row group */
#define INL inline __attribute__((always_inline))
/* The loops over rows and vectors of the micro-kernels are unrolled fully,
 * so their accumulator arrays become registers. */
#define UNROLL _Pragma("GCC unroll 24")

_Static_assert(CDX_LINEAR_TILE_N % NR == 0, "tile width must be a multiple of the panel width");

static _Thread_local float pack_buf[KC * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));
static _Thread_local float acc_buf[CDX_LINEAR_TILE_M * CDX_LINEAR_TILE_N] __attribute__((aligned(64)));

/* acc (R, 16; stride ldacc) (+)= rows a[0..R) (kc values each) @ P (kc, 16).
 * P holds floats or, with `half`, binary16 (widened exactly); pf: prefetch
 * pfd elements ahead. R, half and pf are constants in every instance. */
static INL void micro_t(const float *const a[MR], const void *Pv, size_t kc, float *acc, size_t ldacc, int first,
                        const int R, const int half, const int pf, size_t pfd)
{
    float32x4_t c[MR][4];
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int v = 0; v < 4; v++) c[r][v] = first ? vdupq_n_f32(0.0f) : vld1q_f32(acc + r * ldacc + 4 * v);
    const float *P = Pv;
    const float16_t *H = Pv;
    for (size_t p = 0; p < kc; p++, P += NR, H += NR) {
        float32x4_t b[4];
        if (half) {
            if (pf) __builtin_prefetch(H + pfd);
            UNROLL
            for (int v = 0; v < 4; v++) b[v] = vcvt_f32_f16(vld1_f16(H + 4 * v));
        } else {
            if (pf) __builtin_prefetch(P + pfd);
            UNROLL
            for (int v = 0; v < 4; v++) b[v] = vld1q_f32(P + 4 * v);
        }
        UNROLL
        for (int r = 0; r < R; r++) {
            float t = a[r][p];
            UNROLL
            for (int v = 0; v < 4; v++) c[r][v] = vfmaq_n_f32(c[r][v], b[v], t);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++)
        UNROLL
        for (int v = 0; v < 4; v++) vst1q_f32(acc + r * ldacc + 4 * v, c[r][v]);
}

typedef void (*micro_fn)(const float *const a[MR], const void *P, size_t kc, float *acc, size_t ldacc, int first,
                         size_t pfd);
#define DEF_MICRO(R)                                                                                              \
    static void micro_f##R(const float *const a[MR], const void *P, size_t kc, float *acc, size_t ldacc,         \
                           int first, size_t pfd)                                                                 \
    {                                                                                                             \
        micro_t(a, P, kc, acc, ldacc, first, R, 0, pfd != 0, pfd);                                                \
    }                                                                                                             \
    static void micro_h##R(const float *const a[MR], const void *P, size_t kc, float *acc, size_t ldacc,         \
                           int first, size_t pfd)                                                                 \
    {                                                                                                             \
        micro_t(a, P, kc, acc, ldacc, first, R, 1, 1, pfd);                                                       \
    }
DEF_MICRO(1)
DEF_MICRO(2)
DEF_MICRO(3)
DEF_MICRO(4)
DEF_MICRO(5)
DEF_MICRO(6)
static const micro_fn micro_f[MR + 1] = {0, micro_f1, micro_f2, micro_f3, micro_f4, micro_f5, micro_f6};
static const micro_fn micro_h[MR + 1] = {0, micro_h1, micro_h2, micro_h3, micro_h4, micro_h5, micro_h6};

/* r[i] = row i in, column i out (4 x 4). */
static INL void transpose4(float32x4_t r[4])
{
    float32x4x2_t t01 = vtrnq_f32(r[0], r[1]), t23 = vtrnq_f32(r[2], r[3]);
    r[0] = vcombine_f32(vget_low_f32(t01.val[0]), vget_low_f32(t23.val[0]));
    r[1] = vcombine_f32(vget_low_f32(t01.val[1]), vget_low_f32(t23.val[1]));
    r[2] = vcombine_f32(vget_high_f32(t01.val[0]), vget_high_f32(t23.val[0]));
    r[3] = vcombine_f32(vget_high_f32(t01.val[1]), vget_high_f32(t23.val[1]));
}

/* P (kc, 16) <- rows j0 .. j0+15 of W (zero from n1 on), columns k0 .. k0+kc.
 * F32/F16 rows: 4 x 4 transposes where four rows and four columns exist,
 * the rest element by element; other types: cdx_wmat_dequant (exact). */
static void pack_panel(const struct cdx_wmat *W, size_t k, size_t j0, size_t n1, size_t k0, size_t kc, float *P)
{
    float tmp[KC];
    int f32 = W->type == CDX_W_F32, f16 = W->type == CDX_W_F16;
    for (size_t h = 0; h < NR; h += 4) {
        size_t jb = j0 + h, p = 0;
        if ((f32 || f16) && jb + 4 <= n1)
            for (; p + 4 <= kc; p += 4) {
                float32x4_t r[4];
                for (size_t i = 0; i < 4; i++)
                    r[i] = f32 ? vld1q_f32((const float *)W->data + (jb + i) * k + k0 + p)
                               : vcvt_f32_f16(vld1_f16((const float16_t *)W->data + (jb + i) * k + k0 + p));
                transpose4(r);
                for (size_t i = 0; i < 4; i++) vst1q_f32(P + (p + i) * NR + h, r[i]);
            }
        if (p == kc) continue;
        for (size_t jj = h; jj < h + 4; jj++) {
            size_t j = j0 + jj;
            if (j < n1) cdx_wmat_dequant(W, k, j, k0, kc, tmp); /* p is 0 here for block types */
            for (size_t q = p; q < kc; q++) P[q * NR + jj] = j < n1 ? tmp[q] : 0.0f;
        }
    }
}

/* e^x for 4 floats, the arithmetic of linear_avx2.c's exp8 (Cephes
 * polynomial, round to nearest even, 2^n through the exponent bits). */
static INL float32x4_t exp4(float32x4_t x)
{
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.7f));
    float32x4_t n = vrndnq_f32(vmulq_f32(x, vdupq_n_f32(1.44269504088896341f)));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    float32x4_t y = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), vmulq_f32(p, r), r);
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtnq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

/* quick_gelu(x) = x / (1 + e^(-1.702 x)); quick_gelu1 is lane 0 of it. */
static INL float32x4_t quick_gelu4(float32x4_t x)
{
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(vmulq_f32(x, vdupq_n_f32(-1.702f)))));
}
static INL float quick_gelu1(float x) { return vgetq_lane_f32(quick_gelu4(vdupq_n_f32(x)), 0); }

/* C rows [m0, m1) x cols [n0, n1) (+)= act(acc + bias), acc row i at
 * acc + (i - m0) * ldacc; quick_gelu vectorized (the same arithmetic in the
 * tail), GELU through cdx_act_apply. Column arithmetic never depends on the
 * row, so batches stay exact. */
void cdx_linear_epilogue_neon(const float *acc, size_t ldacc, const float *bias, float *C, size_t ldc, size_t m0,
                              size_t m1, size_t n0, size_t n1, int act, unsigned flags)
{
    size_t nt = n1 - n0;
    for (size_t i = m0; i < m1; i++) {
        const float *a = acc + (i - m0) * ldacc;
        float *c = C + i * ldc + n0;
        size_t j = 0;
        if (act == CDX_ACT_QUICK_GELU || act == CDX_ACT_NONE)
            for (; j + 4 <= nt; j += 4) {
                float32x4_t s = vld1q_f32(a + j);
                if (bias) s = vaddq_f32(s, vld1q_f32(bias + n0 + j));
                if (act == CDX_ACT_QUICK_GELU) s = quick_gelu4(s);
                if (flags & CDX_LIN_ACCUM) s = vaddq_f32(vld1q_f32(c + j), s);
                vst1q_f32(c + j, s);
            }
        for (; j < nt; j++) {
            float s = a[j];
            if (bias) s += bias[n0 + j];
            s = act == CDX_ACT_QUICK_GELU ? quick_gelu1(s) : cdx_act_apply(act, s);
            c[j] = (flags & CDX_LIN_ACCUM) ? c[j] + s : s;
        }
    }
}

/* Rows [i, i + rows) of A at column k0 in ng balanced groups (1 to 6 rows):
 * acc (+)= each group @ the panels P (kc, 16), panel q at P + q * pstride. */
static void row_groups(const float *A, size_t lda, size_t i, size_t rows, size_t k0, const void *P, size_t pstride,
                       size_t panels, size_t kc, float *acc, size_t ldacc, int first, const micro_fn *fn, size_t pfd)
{
    size_t ng = (rows + MR - 1) / MR;
    for (size_t gi = 0; gi < ng; gi++) {
        size_t R = rows / ng + (gi < rows % ng);
        const float *r[MR];
        for (size_t j = 0; j < MR; j++) r[j] = A + (i + (j < R ? j : 0)) * lda + k0;
        for (size_t q = 0; q < panels; q++)
            fn[R](r, (const uint8_t *)P + q * pstride, kc, acc + q * NR, ldacc, first, pfd);
        i += R, acc += R * ldacc;
    }
}

void cdx_linear_tile_neon(const float *A, size_t lda, const struct cdx_wmat *W, const float *bias, float *C,
                          size_t ldc, size_t m0, size_t m1, size_t n0, size_t n1, size_t k, int act, unsigned flags)
{
    size_t nt = n1 - n0, panels = (nt + NR - 1) / NR, ldacc = CDX_LINEAR_TILE_N, rows = m1 - m0;
    float *acc = acc_buf;
    int inplace = W->type == CDX_W_F32P || W->type == CDX_W_F16P;
    size_t esz = W->type == CDX_W_F16P ? sizeof(uint16_t) : sizeof(float);
    const micro_fn *fn = W->type == CDX_W_F16P ? micro_h : micro_f;
    if (k == 0) memset(acc, 0, rows * ldacc * sizeof *acc);
    if (inplace && rows <= SMALL_M) { /* few rows: each panel streamed once, in k chunks */
        size_t ks = rows <= MR ? k : SKC, pfd = rows <= MR ? 64 * NR : ks * NR;
        for (size_t q = 0; q < panels; q++) {
            const uint8_t *Pq = (const uint8_t *)W->data + (n0 / NR + q) * k * NR * esz;
            for (size_t k0 = 0; k0 < k; k0 += ks) {
                size_t kc = k - k0 < ks ? k - k0 : ks;
                row_groups(A, lda, m0, rows, k0, Pq + k0 * NR * esz, 0, 1, kc, acc + q * NR, ldacc, k0 == 0,
                           fn, pfd);
            }
        }
    } else {
        for (size_t k0 = 0; k0 < k; k0 += KC) {
            size_t kc = k - k0 < KC ? k - k0 : KC, pstride = KC * NR * sizeof(float);
            const void *P = pack_buf;
            if (inplace) { /* the file's panels as they are (F16P widened in the kernel) */
                P = (const uint8_t *)W->data + (n0 / NR * k + k0) * NR * esz;
                pstride = k * NR * esz;
            } else {
                for (size_t q = 0; q < panels; q++) pack_panel(W, k, n0 + q * NR, n1, k0, kc, pack_buf + q * KC * NR);
                fn = micro_f;
            }
            row_groups(A, lda, m0, rows, k0, P, pstride, panels, kc, acc, ldacc, k0 == 0, fn, 0);
        }
    }
    cdx_linear_epilogue_neon(acc, ldacc, bias, C, ldc, m0, m1, n0, n1, act, flags);
}

/* Horizontal sum of four lanes in a fixed order: (l0 + l1) + (l2 + l3). */
static INL float hsum4(float32x4_t v)
{
    float32x2_t s = vpadd_f32(vget_low_f32(v), vget_high_f32(v));
    return vget_lane_f32(s, 0) + vget_lane_f32(s, 1);
}

/* a (n,) . b (n,): 4-lane FMA chains, the fixed horizontal sum, FMA tail. */
static float dot_neon(const float *a, const float *b, size_t n)
{
    float32x4_t acc = vdupq_n_f32(0.0f);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) acc = vfmaq_f32(acc, vld1q_f32(a + i), vld1q_f32(b + i));
    float s = hsum4(acc);
    for (; i < n; i++) s = fmaf(a[i], b[i], s);
    return s;
}

/* y (n) = LayerNorm(x (n)) * w + b: mean and variance summed in double, two
 * lanes (then the lanes in order), the normalization in float. */
void cdx_layernorm_row_neon(const float *x, float *y, size_t n, const float *w, const float *b, float eps)
{
    size_t n2 = n - n % 2, i;
    float64x2_t s = vdupq_n_f64(0.0);
    for (i = 0; i < n2; i += 2) s = vaddq_f64(s, vcvt_f64_f32(vld1_f32(x + i)));
    double sum = vgetq_lane_f64(s, 0) + vgetq_lane_f64(s, 1);
    for (; i < n; i++) sum += x[i];
    double mean = sum / (double)n;
    float64x2_t mv = vdupq_n_f64(mean), v = vdupq_n_f64(0.0);
    for (i = 0; i < n2; i += 2) {
        float64x2_t dlt = vsubq_f64(vcvt_f64_f32(vld1_f32(x + i)), mv);
        v = vfmaq_f64(v, dlt, dlt);
    }
    double var = vgetq_lane_f64(v, 0) + vgetq_lane_f64(v, 1);
    for (; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
    float inv = (float)(1.0 / sqrt(var / (double)n + (double)eps)), fm = (float)mean;
    float32x4_t vm = vdupq_n_f32(fm), vi = vdupq_n_f32(inv);
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t t = vmulq_f32(vsubq_f32(vld1q_f32(x + i), vm), vi);
        vst1q_f32(y + i, vaddq_f32(vmulq_f32(t, vld1q_f32(w + i)), vld1q_f32(b + i)));
    }
    for (; i < n; i++) y[i] = (x[i] - fm) * inv * w[i] + b[i];
}

/* One attention row: p[c] = (q . K_c) * scale for c < lim, softmax, o (d) =
 * sum_c (p_c / sum) V_c, K_c = K + c ld. o is built 16 values at a time in
 * registers across the keys (one FMA chain per value, key order), the
 * rest with the same chain element by element. */
void cdx_attn_row_neon(const float *q, const float *K, const float *V, size_t ld, size_t lim, size_t d, float scale,
                       float *p, float *o)
{
    float mx = -INFINITY;
    for (size_t c = 0; c < lim; c++) {
        p[c] = dot_neon(q, K + c * ld, d) * scale;
        if (p[c] > mx) mx = p[c];
    }
    float sum = 0.0f;
    for (size_t c = 0; c < lim; c++) {
        p[c] = expf(p[c] - mx);
        sum += p[c];
    }
    float inv = 1.0f / sum;
    size_t e0 = 0;
    for (; e0 + 16 <= d; e0 += 16) {
        float32x4_t o0 = vdupq_n_f32(0.0f), o1 = o0, o2 = o0, o3 = o0;
        for (size_t c = 0; c < lim; c++) {
            const float *v = V + c * ld + e0;
            float wc = p[c] * inv;
            o0 = vfmaq_n_f32(o0, vld1q_f32(v), wc), o1 = vfmaq_n_f32(o1, vld1q_f32(v + 4), wc);
            o2 = vfmaq_n_f32(o2, vld1q_f32(v + 8), wc), o3 = vfmaq_n_f32(o3, vld1q_f32(v + 12), wc);
        }
        vst1q_f32(o + e0, o0), vst1q_f32(o + e0 + 4, o1), vst1q_f32(o + e0 + 8, o2), vst1q_f32(o + e0 + 12, o3);
    }
    for (; e0 < d; e0++) {
        float s = 0.0f;
        for (size_t c = 0; c < lim; c++) s = fmaf(p[c] * inv, V[c * ld + e0], s);
        o[e0] = s;
    }
}

#endif /* aarch64 */
