/*
 * dispatch.c - fills the kernel tables (dispatch.h) once from the CPU's
 * features and picks one per context. A path is offered only if the CPU has
 * every instruction its kernels use; inside a path each family may pick its
 * best variant (e.g. AVX-512 int8 uses VNNI only if present). Only this file
 * knows which ISA file implements what.
 */
#include "tensor/dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "core/cpu.h"
#include "tensor/ops.h"
#include "tensor/qgemm.h"
#include "tensor/vecdot.h"

static struct cdx_kernels g_tab[CDX_ISA_COUNT];
static int g_have[CDX_ISA_COUNT];
static char g_desc[CDX_ISA_COUNT][96];
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *const isa_names[CDX_ISA_COUNT] = {"scalar", "avx2", "avx-vnni", "avx512", "neon", "neon-dot"};

static void fill_scalar(struct cdx_kernels *t)
{
    t->qmax[0] = CDX_QA_MAX_Q8, t->qmax[1] = CDX_QA_MAX_Q4;
    t->linear_tile = cdx_linear_tile_ref;
    t->layernorm_row = cdx_layernorm_row_ref;
    t->attn_row = cdx_attn_row_ref;
    t->act_q8 = cdx_act_q8_ref;
    t->qgemm_tile = cdx_qgemm_tile_ref;
    t->qmax_i8 = CDX_IA_MAX;
    t->act_i8 = cdx_act_i8_ref;
    t->i8gemm_tile = cdx_i8gemm_tile_ref;
    t->vec_dot = cdx_vec_dot_ref;
    t->vec_dot8 = cdx_vec_dot8_ref;
    t->vec_dot4 = cdx_vec_dot4_ref;
    snprintf(g_desc[CDX_ISA_SCALAR], sizeof g_desc[0], "fp32 scalar, int8 scalar");
}

#if defined(__x86_64__) || defined(__i386__)
static void fill_avx2(struct cdx_kernels *t)
{
    t->qmax[0] = CDX_QA_MAX_Q8, t->qmax[1] = CDX_QA_MAX_Q4;
    t->linear_tile = cdx_linear_tile_avx2;
    t->layernorm_row = cdx_layernorm_row_avx2;
    t->attn_row = cdx_attn_row_avx2;
    t->act_q8 = cdx_act_q8_avx2;
    t->qgemm_tile = cdx_qgemm_tile_avx2;
    t->qmax_i8 = CDX_IA_MAX;
    t->act_i8 = cdx_act_i8_avx2;
    t->i8gemm_tile = cdx_i8gemm_tile_avx2;
    t->vec_dot = cdx_vec_dot_avx2;
    t->vec_dot8 = cdx_vec_dot8_avx2;
    t->vec_dot4 = cdx_vec_dot4_avx2;
    snprintf(g_desc[CDX_ISA_AVX2], sizeof g_desc[0], "fp32 avx2, int8 avx2");
}

/* AVX2 + AVX-VNNI: AVX2's fp32 kernels; the int8 product will use the
 * 256-bit vpdpbusd. */
static void fill_avxvnni(struct cdx_kernels *t)
{
    fill_avx2(t);
    t->qgemm_tile = cdx_qgemm_tile_avxvnni;
    t->qmax[0] = t->qmax[1] = CDX_QA_MAX_VNNI;
    t->i8gemm_tile = cdx_i8gemm_tile_avxvnni;
    t->qmax_i8 = CDX_QA_MAX_VNNI;
    snprintf(g_desc[CDX_ISA_AVXVNNI], sizeof g_desc[0], "fp32 avx2, int8 avx-vnni");
}

/* BF16P weights: vdpbf16ps (activations rounded to bf16) or widened to
 * floats exactly in the fp32 kernel (linear_avx512.c). Intel's cores issue
 * vdpbf16ps at half their FMA rate (bench/peak.c, Emerald Rapids VM: 85 vs
 * 174 G ops/s per thread), so widening is twice as fast there; AMD's Zen 4
 * and 5 issue it at full rate, twice the FMA's work per instruction.
 * CLIPDEX_BF16=dot|widen overrides the choice. */
static int bf16_dot_preferred(const struct cdx_cpu *c)
{
    const char *e = getenv("CLIPDEX_BF16");
    if (e && strcmp(e, "dot") == 0) return 1;
    if (e && strcmp(e, "widen") == 0) return 0;
    return !c->intel;
}

/* AVX-512 (F/BW/VL/DQ). Families without a 512-bit kernel yet keep AVX2's. */
static void fill_avx512(struct cdx_kernels *t, const struct cdx_cpu *c)
{
    fill_avx2(t);
    t->linear_tile = cdx_linear_tile_avx512;
    t->layernorm_row = cdx_layernorm_row_avx512;
    t->attn_row = cdx_attn_row_avx512;
    t->attn_rows = cdx_attn_rows_avx512;
    t->act_q8 = cdx_act_q8_avx512;
    t->act_i8 = cdx_act_i8_avx512;
    if (c->avx512_vnni) {
        t->qgemm_tile = cdx_qgemm_tile_avx512;
        t->qmax[0] = t->qmax[1] = CDX_QA_MAX_VNNI;
        t->i8gemm_tile = cdx_i8gemm_tile_avx512;
        t->qmax_i8 = CDX_QA_MAX_VNNI;
    } else if (c->avx_vnni) {
        t->i8gemm_tile = cdx_i8gemm_tile_avxvnni;
        t->qmax_i8 = CDX_QA_MAX_VNNI;
    }
    int dot = c->avx512_bf16 && bf16_dot_preferred(c);
    if (dot) t->linear_tile_bf16 = cdx_linear_tile_bf16_avx512;
    snprintf(g_desc[CDX_ISA_AVX512], sizeof g_desc[0], "fp32 avx512, int8 %s, bf16 %s",
             c->avx512_vnni ? "avx512-vnni" : "avx2",
             dot ? "avx512-bf16" : c->avx512_bf16 ? "widened (vdpbf16ps is slower on this CPU)" : "widened");
}
#endif

#if defined(__aarch64__)
/* NEON: fp32 kernels, int8 with widening multiplies (no saturation, so
 * activations use the full |q| <= 127); neon-dot: the int8 tile with sdot. */
static void fill_neon(struct cdx_kernels *t, int isa)
{
    t->qmax[0] = t->qmax[1] = CDX_QA_MAX_NEON;
    t->linear_tile = cdx_linear_tile_neon;
    t->layernorm_row = cdx_layernorm_row_neon;
    t->attn_row = cdx_attn_row_neon;
    t->act_q8 = cdx_act_q8_neon;
    t->qgemm_tile = isa == CDX_ISA_NEONDOT ? cdx_qgemm_tile_neondot : cdx_qgemm_tile_neon;
    t->qmax_i8 = CDX_QA_MAX_NEON;
    t->act_i8 = cdx_act_i8_ref;
    t->i8gemm_tile = isa == CDX_ISA_NEONDOT ? cdx_i8gemm_tile_neondot : cdx_i8gemm_tile_neon;
    t->vec_dot = cdx_vec_dot_neon;
    t->vec_dot8 = isa == CDX_ISA_NEONDOT ? cdx_vec_dot8_neondot : cdx_vec_dot8_neon;
    t->vec_dot4 = isa == CDX_ISA_NEONDOT ? cdx_vec_dot4_neondot : cdx_vec_dot4_neon;
    snprintf(g_desc[isa], sizeof g_desc[0], "fp32 neon, int8 %s", isa_names[isa]);
}
#endif

static void init(void)
{
    g_have[CDX_ISA_SCALAR] = 1;
    fill_scalar(&g_tab[CDX_ISA_SCALAR]);
#if defined(__x86_64__) || defined(__i386__)
    const struct cdx_cpu *c = cdx_cpu();
    if (c->avx2) g_have[CDX_ISA_AVX2] = 1, fill_avx2(&g_tab[CDX_ISA_AVX2]);
    if (c->avx_vnni) g_have[CDX_ISA_AVXVNNI] = 1, fill_avxvnni(&g_tab[CDX_ISA_AVXVNNI]);
    if (c->avx512) g_have[CDX_ISA_AVX512] = 1, fill_avx512(&g_tab[CDX_ISA_AVX512], c);
#elif defined(__aarch64__)
    const struct cdx_cpu *c = cdx_cpu();
    if (c->neon) g_have[CDX_ISA_NEON] = 1, fill_neon(&g_tab[CDX_ISA_NEON], CDX_ISA_NEON);
    if (c->neon_dot) g_have[CDX_ISA_NEONDOT] = 1, fill_neon(&g_tab[CDX_ISA_NEONDOT], CDX_ISA_NEONDOT);
#endif
    for (int i = 0; i < CDX_ISA_COUNT; i++) {
        g_tab[i].isa = i;
        g_tab[i].name = isa_names[i];
        g_tab[i].describe = g_desc[i];
    }
}

const struct cdx_kernels *cdx_kernels_for(int isa)
{
    pthread_once(&g_once, init);
    return isa >= 0 && isa < CDX_ISA_COUNT && g_have[isa] ? &g_tab[isa] : NULL;
}

const struct cdx_kernels *cdx_kernels_best(void)
{
    for (int i = CDX_ISA_COUNT - 1; i > 0; i--)
        if (cdx_kernels_for(i)) return cdx_kernels_for(i);
    return cdx_kernels_for(CDX_ISA_SCALAR);
}

const char *cdx_isa_name(int isa) { return isa >= 0 && isa < CDX_ISA_COUNT ? isa_names[isa] : "?"; }

int cdx_isa_parse(const char *name)
{
    for (int i = 0; i < CDX_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0) return i;
    return -1;
}


const struct cdx_kernels *cdx_kernels_from_env(void)
{
    const char *fs = getenv("CLIPDEX_FORCE_SCALAR");
    if (fs && fs[0] && strcmp(fs, "0") != 0) return cdx_kernels_for(CDX_ISA_SCALAR);
    const char *want = getenv("CLIPDEX_ISA");
    if (!want || !want[0] || strcmp(want, "best") == 0 || strcmp(want, "auto") == 0) return cdx_kernels_best();
    int isa = cdx_isa_parse(want);
    if (isa < 0) return NULL;
    for (; isa > 0; isa--) /* a path above the CPU's: the best below it */
        if (cdx_kernels_for(isa)) return cdx_kernels_for(isa);
    return cdx_kernels_for(CDX_ISA_SCALAR);
}
