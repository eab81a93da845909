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

#endif /* aarch64 */
