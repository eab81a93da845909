/*
 * cpu.c - CPU feature detection for the kernel dispatch (dispatch.c). x86:
 * CPUID leaves 1 and 7 (sub-leaves 0 and 1) for the instruction sets, and
 * XGETBV(0) for the register state the OS saves (XMM|YMM for AVX, plus
 * opmask|ZMM_Hi256|Hi16_ZMM for AVX-512): a CPU that has AVX-512 under an OS
 * that does not save ZMM registers must not run AVX-512 code. aarch64: the
 * kernel's HWCAP bits (getauxval), which it sets only for what it enables.
 * Computed once under pthread_once; read-only afterwards.
 */
#include "core/cpu.h"

#include <pthread.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static void detect(struct cdx_cpu *c)
{
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d)) return;
    int osxsave = (cx >> 27) & 1, avx = (cx >> 28) & 1, fma = (cx >> 12) & 1, f16c = (cx >> 29) & 1;
    if (!osxsave || !avx) return;
    unsigned long long xcr0 = xgetbv0();
    int ymm_ok = (xcr0 & 0x6) == 0x6, zmm_ok = (xcr0 & 0xe6) == 0xe6;
    unsigned vendor[3];
    unsigned max_leaf = __get_cpuid_max(0, vendor);
    __cpuid(0, max_leaf, vendor[0], vendor[2], vendor[1]); /* ebx, edx, ecx: "Genu" "ineI" "ntel" */
    c->intel = memcmp(vendor, "GenuineIntel", 12) == 0;
    if (max_leaf < 7 || !ymm_ok) return;
    unsigned a7, b7, c7, d7, a71 = 0, b71, c71, d71;
    __cpuid_count(7, 0, a7, b7, c7, d7);
    if (a7 >= 1) __cpuid_count(7, 1, a71, b71, c71, d71);
    (void)d7, (void)b71, (void)c71, (void)d71;
    c->avx2 = ((b7 >> 5) & 1) && fma && f16c;
    int f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
    c->avx512 = c->avx2 && zmm_ok && f && dq && bw && vl;
    c->avx512_vnni = c->avx512 && ((c7 >> 11) & 1);
    c->avx_vnni = c->avx2 && ((a71 >> 4) & 1);
    c->avx512_bf16 = c->avx512 && ((a71 >> 5) & 1);
}
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>

/* The bits of <asm/hwcap.h>, spelled out for older headers. */
#define HWCAP_ASIMD_BIT (1ul << 1)
#define HWCAP_ASIMDHP_BIT (1ul << 10)
#define HWCAP_ASIMDDP_BIT (1ul << 20)
#define HWCAP2_I8MM_BIT (1ul << 13)

static void detect(struct cdx_cpu *c)
{
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    c->neon = (hw & HWCAP_ASIMD_BIT) != 0;
    c->neon_dot = c->neon && (hw & HWCAP_ASIMDDP_BIT);
    c->neon_fp16 = c->neon && (hw & HWCAP_ASIMDHP_BIT);
    c->neon_i8mm = c->neon && (hw2 & HWCAP2_I8MM_BIT);
}
#elif defined(__aarch64__)
static void detect(struct cdx_cpu *c) { c->neon = 1; } /* Advanced SIMD is part of ARMv8-A */
#else
static void detect(struct cdx_cpu *c) { (void)c; }
#endif

static struct cdx_cpu g_cpu;
static char g_names[96];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void init(void)
{
    detect(&g_cpu);
    const struct { int on; const char *name; } f[] = {
        {g_cpu.avx2, "avx2"}, {g_cpu.avx512, "avx512"}, {g_cpu.avx512_vnni, "avx512_vnni"},
        {g_cpu.avx_vnni, "avx_vnni"}, {g_cpu.avx512_bf16, "avx512_bf16"}, {g_cpu.neon, "neon"},
        {g_cpu.neon_dot, "neon_dot"}, {g_cpu.neon_fp16, "neon_fp16"}, {g_cpu.neon_i8mm, "neon_i8mm"},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!f[i].on) continue;
        if (g_names[0]) strcat(g_names, " ");
        strcat(g_names, f[i].name);
    }
}

const struct cdx_cpu *cdx_cpu(void)
{
    pthread_once(&g_once, init);
    return &g_cpu;
}

const char *cdx_cpu_feature_string(void)
{
    pthread_once(&g_once, init);
    return g_names;
}
