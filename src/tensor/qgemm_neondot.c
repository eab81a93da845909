/*
 * qgemm_neondot.c - the int8 product tile of the neon-dot path: ARMv8.2's
 * dot product (sdot; Cortex-A55, A76 and later, HWCAP_ASIMDDP), compiled
 * for it with a target attribute so that one binary runs on every aarch64
 * core (dispatch.c offers this path only where cpu.c found the feature).
 * Per group of 4 k and activation row: one sdot per weight vector (4 rows x
 * 4 k), i.e. 4 instructions per 64 multiply-adds, into 4 int32x4
 * accumulators per row that are the row sums themselves. Body:
 * qgemm_neon.inc; 3 rows per micro-kernel (12 integer and 12 float
 * accumulators in registers). Compiled only on aarch64.
 */
#include <string.h>

#include "tensor/qgemm.h"

#if defined(__aarch64__)
#include <arm_neon.h>

#define QN_TILE cdx_qgemm_tile_neondot
/* arm_neon.h declares vdotq_s32 under arch=armv8.2-a+dotprod; a bare
 * "+dotprod" on the ARMv8-A baseline cannot inline it (GCC 12) */
#define QN_TGT __attribute__((target("arch=armv8.2-a+dotprod")))
#define QN_R 3
#define UNROLL _Pragma("GCC unroll 16")
#define QN_NA 4

QN_TGT static inline __attribute__((always_inline)) void qn_step(int32x4_t *acc, const int8x16_t w[4], int32_t a4)
{
    int8x16_t x = vreinterpretq_s8_s32(vdupq_n_s32(a4));
    UNROLL
    for (int v = 0; v < 4; v++) acc[v] = vdotq_s32(acc[v], w[v], x);
}

QN_TGT static inline __attribute__((always_inline)) void qn_sums(const int32x4_t *acc, int32x4_t s[4])
{
    UNROLL
    for (int v = 0; v < 4; v++) s[v] = acc[v];
}

#include "tensor/qgemm_neon.inc"

/* The I8P tile (i8gemm.inc): 4 rows x one panel (16 int32x4 accumulators);
 * the weights are loaded signed (w + 128 ^ 0x80), so the sums start at 0. */
#define TGT QN_TGT
#define INL inline __attribute__((always_inline))
#define EPILOGUE cdx_linear_epilogue_neon
#define PFX neondot
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
TGT static INL int32x4_t i8_dot(int32x4_t acc, int32x4_t w, int32x4_t x)
{
    return vdotq_s32(acc, vreinterpretq_s8_s32(w), vreinterpretq_s8_s32(x));
}
#define DPBUSD(acc, u, s) i8_dot(acc, u, s)
#include "tensor/i8gemm.inc"

#endif /* aarch64 */
