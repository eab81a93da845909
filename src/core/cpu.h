/*
 * cpu.h - the CPU features the kernels may use, read once (CPUID + XGETBV on
 * x86, so a feature counts only when the OS also saves its registers;
 * getauxval(AT_HWCAP) on aarch64, where the kernel reports only what it
 * supports). On other architectures the flags of the others are 0.
 */
#ifndef CDX_CPU_H
#define CDX_CPU_H

#include "core/core.h"

struct cdx_cpu {
    int avx2;        /* AVX2 + FMA + F16C, YMM state saved by the OS */
    int avx512;      /* AVX-512 F, BW, VL and DQ, ZMM and opmask state saved */
    int avx512_vnni; /* AVX512_VNNI (512-bit vpdpbusd); implies avx512 */
    int avx_vnni;    /* AVX-VNNI (the VEX 256-bit vpdpbusd); implies avx2 */
    int avx512_bf16; /* AVX512_BF16 (vdpbf16ps); implies avx512 */
    int intel;       /* CPUID vendor "GenuineIntel" (a property, not a feature: not in the feature string) */
    int neon;        /* aarch64 Advanced SIMD (HWCAP_ASIMD; every ARMv8-A core) */
    int neon_dot;    /* ARMv8.2 dot product sdot/udot (HWCAP_ASIMDDP); implies neon */
    int neon_fp16;   /* ARMv8.2 half-precision arithmetic (HWCAP_ASIMDHP); reported, unused */
    int neon_i8mm;   /* ARMv8.6 int8 matrix multiply smmla (HWCAP2_I8MM); reported, unused */
};

/* The features of this CPU (computed on first use; thread-safe). */
CDX_INTERNAL const struct cdx_cpu *cdx_cpu(void);
/* Space-separated names of the features above that are present ("" if none). */
CDX_INTERNAL const char *cdx_cpu_feature_string(void);

#endif
