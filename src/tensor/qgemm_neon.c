/*
 * qgemm_neon.c - the int8 kernels of the plain NEON path (ARMv8-A, no dot
 * product: the Cortex-A53): activation quantization and the product tile.
 * Compiled only on aarch64; dispatch.c puts them in the neon table (the
 * quantization in the neon-dot table too).
 *
 * Quantization: eight float32x4 per block of 32, the float operations of
 * cdx_act_q8_ref (max |x| is exact in any order; one division for d, one
 * for 1/d, one multiply, round-half-even conversion fcvtns), so bitwise
 * equal to it.
 *
 * Product (body in qgemm_neon.inc): per group of 4 k and activation row,
 * the four weight vectors (4 rows x 4 k each) are multiplied by the row's
 * 4 bytes repeated with smull / smull2 into int16 (|product| <= 128 * 127,
 * exact) and pairwise accumulated into int32 with sadalp: 8 accumulators
 * per row, folded by addp into the 16 row sums after the block's 8 groups.
 * 16 instructions per 64 multiply-adds; 2 rows per micro-kernel keep the
 * 16 integer and 8 float accumulators in registers.
 */
#include <float.h>
#include <math.h>
#include <string.h>

#include "tensor/qgemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define QN_TILE cdx_qgemm_tile_neon
#define QN_TGT
#define QN_R 2
#define UNROLL _Pragma("GCC unroll 16")
#define QN_NA 8

static inline __attribute__((always_inline)) void qn_step(int32x4_t *acc, const int8x16_t w[4], int32_t a4)
{
    int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(a4));
    UNROLL
    for (int v = 0; v < 4; v++) {
        acc[2 * v] = vpadalq_s16(acc[2 * v], vmull_s8(vget_low_s8(w[v]), vget_low_s8(x)));
        acc[2 * v + 1] = vpadalq_s16(acc[2 * v + 1], vmull_high_s8(w[v], x));
    }
}

/* acc[2v] lanes: row 4v (k pairs 0-1, 2-3), row 4v+1 (the same); acc[2v+1]:
 * rows 4v+2, 4v+3; addp sums the pairs in row order. */
static inline __attribute__((always_inline)) void qn_sums(const int32x4_t *acc, int32x4_t s[4])
{
    UNROLL
    for (int v = 0; v < 4; v++) s[v] = vpaddq_s32(acc[2 * v], acc[2 * v + 1]);
}

#include "tensor/qgemm_neon.inc"

/* The I8P tile (i8gemm.inc): 4 rows x one panel (16 int32x4 accumulators);
 * the weights are loaded signed (w + 128 ^ 0x80), so the sums start at 0. */
#define TGT 
#define INL inline __attribute__((always_inline))
#define EPILOGUE cdx_linear_epilogue_neon
#define PFX neon
#define VW 4
#define QV_R 4
#define QI_P 1
#define VI int32x4_t
#define VF float32x4_t
#define VI_SET1(x) vdupq_n_s32(x)
#define VI_LOAD(p) vld1q_s32((const int32_t *)(const void *)(p))
#define VI_STORE(p, v) vst1q_s32((int32_t *)(void *)(p), v)
#define I8_WLOAD(p) vreinterpretq_s32_u8(veorq_u8(vld1q_u8((const uint8_t *)(p)), vdupq_n_u8(0x80)))
#define I8_OFF 0
#define VF_SET1(x) vdupq_n_f32(x)
#define VF_LOADU(p) vld1q_f32(p)
#define VF_STORE(p, v) vst1q_f32(p, v)
#define VF_MUL(a, b) vmulq_f32(a, b)
#define VI_TO_VF(v) vcvtq_f32_s32(v)
#define BCAST4(p) i8_bcast4((const int8_t *)(p))
TGT static INL int32x4_t i8_bcast4(const int8_t *p)
{
    int32_t v;
    memcpy(&v, p, 4);
    return vdupq_n_s32(v);
}
/* 4 products per int32 lane: smull / smull2 (products <= 127 * 127), a
 * pairwise add (pairs <= 32258 fit int16), sadalp into the lane. */
static INL int32x4_t i8_dot(int32x4_t acc, int32x4_t w, int32x4_t x)
{
    int8x16_t a = vreinterpretq_s8_s32(w), b = vreinterpretq_s8_s32(x);
    int16x8_t lo = vmull_s8(vget_low_s8(a), vget_low_s8(b)), hi = vmull_high_s8(a, b);
    return vpadalq_s16(acc, vpaddq_s16(lo, hi));
}
#define DPBUSD(acc, u, s) i8_dot(acc, u, s)
#include "tensor/i8gemm.inc"

void cdx_act_q8_neon(const float *x, size_t k, int qmax, int8_t *q, float *d, int32_t *s)
{
    const float fmax_q = (float)qmax;
    for (size_t b = 0; b < k / CDX_QK; b++, x += CDX_QK, q += CDX_QK) {
        float32x4_t v[8], m = vdupq_n_f32(0.0f);
        uint32x4_t fin = vdupq_n_u32(~0u);
        for (int i = 0; i < 8; i++) {
            v[i] = vld1q_f32(x + 4 * i);
            fin = vandq_u32(fin, vcltq_f32(vabsq_f32(v[i]), vdupq_n_f32(INFINITY)));
            m = vmaxq_f32(m, vabsq_f32(v[i]));
        }
        if (vminvq_u32(fin) == 0) { /* NaN or inf: as cdx_act_q8_ref */
            memset(q, 0, CDX_QK);
            d[b] = NAN;
            s[b] = 0;
            continue;
        }
        float amax = vmaxvq_f32(m);
        float db = amax / fmax_q, id = db >= FLT_MIN ? 1.0f / db : 0.0f;
        int32x4_t sum = vdupq_n_s32(0);
        for (int i = 0; i < 8; i += 2) {
            int32x4_t i0 = vcvtnq_s32_f32(vmulq_n_f32(v[i], id)), i1 = vcvtnq_s32_f32(vmulq_n_f32(v[i + 1], id));
            sum = vaddq_s32(sum, vaddq_s32(i0, i1));
            vst1_s8(q + 4 * i, vqmovn_s16(vcombine_s16(vqmovn_s32(i0), vqmovn_s32(i1))));
        }
        d[b] = id != 0.0f ? db : 0.0f;
        s[b] = vaddvq_s32(sum);
    }
}

#endif /* aarch64 */
