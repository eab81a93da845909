/*
 * quant.c - reduced-precision weight types: their block sizes, the exact
 * scalar dequantization of a row (the reference the SIMD pack step must match
 * bit for bit) and quantization with ggml's reference rounding, so files we
 * write hold the same bytes ggml's own quantizer would write.
 */
#include <math.h>
#include <string.h>

#include "tensor/ops.h"

static const struct {
    int type;
    const char *name;
    size_t block, bytes;
} types[] = {
    {CDX_W_F32, "F32", 1, 4},        {CDX_W_F16, "F16", 1, 2},        {CDX_W_Q4_0, "Q4_0", 32, 18},
    {CDX_W_Q4_1, "Q4_1", 32, 20},    {CDX_W_Q5_0, "Q5_0", 32, 22},    {CDX_W_Q5_1, "Q5_1", 32, 24},
    {CDX_W_Q8_0, "Q8_0", 32, 34},    {CDX_W_BF16, "BF16", 1, 2},
    {CDX_W_I8, "I8", 32, 0}, /* no row layout (ops.h): a request type only */
    /* packed (ops.h): block and bytes describe their panels, not rows */
    {CDX_W_F32P, "F32_P16", 1, 0},   {CDX_W_F16P, "F16_P16", 1, 0},   {CDX_W_Q8P, "Q8_0_P16", 32, 0},
    {CDX_W_Q4P, "Q4_0_P16", 32, 0},  {CDX_W_BF16P, "BF16_P16", 1, 0},   {CDX_W_I8P, "I8_P16", 32, 0},
};

static int find(int type)
{
    for (int i = 0; i < (int)(sizeof types / sizeof types[0]); i++)
        if (types[i].type == type) return i;
    return -1;
}

const char *cdx_wtype_name(int type)
{
    int i = find(type);
    return i < 0 ? NULL : types[i].name;
}

size_t cdx_wtype_block(int type)
{
    int i = find(type);
    return i < 0 ? 0 : types[i].block;
}

size_t cdx_wtype_block_bytes(int type)
{
    int i = find(type);
    return i < 0 ? 0 : types[i].bytes;
}

size_t cdx_wtype_row_bytes(int type, size_t k)
{
    int i = find(type);
    size_t r;
    if (i < 0 || !types[i].bytes || k % types[i].block || cdx_mul(k / types[i].block, types[i].bytes, &r)) return 0;
    return r;
}

uint16_t cdx_float_to_half(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu)); /* NaN */
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520: inf */
    if (ax < 0x38800000u) {                                    /* below 2^-14: subnormal */
        if (ax < 0x33000000u) return (uint16_t)sign;           /* below 2^-25: zero */
        uint32_t e = ax >> 23, m = (ax & 0x7fffffu) | 0x800000u, shift = 126 - e;
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q);
    }
    uint32_t r = ax - 0x38000000u, q = r >> 13, rem = r & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++;
    return (uint16_t)(sign | q);
}

uint16_t cdx_float_to_bf16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* NaN: keep it, quiet */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1u)) >> 16); /* round to nearest even; overflow gives inf */
}

static inline float ld_half(const uint8_t *p) { return cdx_half_to_float((uint16_t)(p[0] | p[1] << 8)); }
static inline float ld_bf16(const uint8_t *p) { return cdx_bf16_to_float((uint16_t)(p[0] | p[1] << 8)); }

static inline void st_half(uint8_t *p, float f)
{
    uint16_t h = cdx_float_to_half(f);
    p[0] = (uint8_t)h;
    p[1] = (uint8_t)(h >> 8);
}

static inline uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void cdx_dequant_row(int type, const void *row, size_t k0, size_t n, float *out)
{
    const uint8_t *r = row;
    switch (type) {
    case CDX_W_F32: memcpy(out, r + 4 * k0, n * sizeof *out); return;
    case CDX_W_F16:
        for (size_t i = 0; i < n; i++) out[i] = ld_half(r + 2 * (k0 + i));
        return;
    case CDX_W_BF16:
        for (size_t i = 0; i < n; i++) out[i] = ld_bf16(r + 2 * (k0 + i));
        return;
    default: break;
    }
    size_t bb = cdx_wtype_block_bytes(type);
    for (size_t b = k0 / CDX_QK; b < (k0 + n) / CDX_QK; b++, out += CDX_QK) {
        const uint8_t *blk = r + b * bb;
        float d = ld_half(blk);
        switch (type) {
        case CDX_W_Q8_0:
            for (int j = 0; j < 32; j++) out[j] = (float)(int8_t)blk[2 + j] * d;
            break;
        case CDX_W_Q4_0:
            for (int j = 0; j < 16; j++) {
                out[j] = (float)((blk[2 + j] & 15) - 8) * d;
                out[j + 16] = (float)((blk[2 + j] >> 4) - 8) * d;
            }
            break;
        case CDX_W_Q4_1: {
            float m = ld_half(blk + 2);
            for (int j = 0; j < 16; j++) {
                float t0 = (float)(blk[4 + j] & 15) * d, t1 = (float)(blk[4 + j] >> 4) * d;
                out[j] = t0 + m;
                out[j + 16] = t1 + m;
            }
            break;
        }
        case CDX_W_Q5_0: {
            uint32_t qh = ld_u32(blk + 2);
            for (int j = 0; j < 16; j++) {
                int x0 = (blk[6 + j] & 15) | (int)((qh >> j) & 1) << 4;
                int x1 = (blk[6 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
                out[j] = (float)(x0 - 16) * d;
                out[j + 16] = (float)(x1 - 16) * d;
            }
            break;
        }
        case CDX_W_Q5_1: {
            float m = ld_half(blk + 2);
            uint32_t qh = ld_u32(blk + 4);
            for (int j = 0; j < 16; j++) {
                int x0 = (blk[8 + j] & 15) | (int)((qh >> j) & 1) << 4;
                int x1 = (blk[8 + j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
                float t0 = (float)x0 * d, t1 = (float)x1 * d;
                out[j] = t0 + m;
                out[j + 16] = t1 + m;
            }
            break;
        }
        default: memset(out, 0, CDX_QK * sizeof *out); break;
        }
    }
}

static inline int mini(int a, int b) { return a < b ? a : b; }

/* One block of 32 values, ggml's quantize_row_*_ref arithmetic. */
static void quant_block(int type, const float *x, uint8_t *y)
{
    float amax = 0.0f, max = 0.0f, mn = x[0], mx = x[0];
    for (int j = 0; j < 32; j++) {
        if (amax < fabsf(x[j])) amax = fabsf(x[j]), max = x[j];
        if (x[j] < mn) mn = x[j];
        if (x[j] > mx) mx = x[j];
    }
    switch (type) {
    case CDX_W_Q8_0: {
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        st_half(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
        break;
    }
    case CDX_W_Q4_0: {
        float d = max / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        st_half(y, d);
        for (int j = 0; j < 16; j++) {
            int a = mini(15, (int8_t)(x[j] * id + 8.5f)), b = mini(15, (int8_t)(x[j + 16] * id + 8.5f));
            y[2 + j] = (uint8_t)(a | b << 4);
        }
        break;
    }
    case CDX_W_Q4_1: {
        float d = (mx - mn) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        st_half(y, d);
        st_half(y + 2, mn);
        for (int j = 0; j < 16; j++) {
            int a = mini(15, (int8_t)((x[j] - mn) * id + 0.5f)), b = mini(15, (int8_t)((x[j + 16] - mn) * id + 0.5f));
            y[4 + j] = (uint8_t)(a | b << 4);
        }
        break;
    }
    case CDX_W_Q5_0:
    case CDX_W_Q5_1: {
        int one = type == CDX_W_Q5_1, o = one ? 8 : 6;
        float d = one ? (mx - mn) / 31.0f : max / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        uint32_t qh = 0;
        st_half(y, d);
        if (one) st_half(y + 2, mn);
        for (int j = 0; j < 16; j++) {
            int a, b;
            if (one) {
                a = (uint8_t)((x[j] - mn) * id + 0.5f);
                b = (uint8_t)((x[j + 16] - mn) * id + 0.5f);
            } else {
                a = mini(31, (int8_t)(x[j] * id + 16.5f));
                b = mini(31, (int8_t)(x[j + 16] * id + 16.5f));
            }
            y[o + j] = (uint8_t)((a & 15) | (b & 15) << 4);
            qh |= (uint32_t)((a >> 4) & 1) << j;
            qh |= (uint32_t)((b >> 4) & 1) << (j + 16);
        }
        uint8_t *h = y + (one ? 4 : 2);
        h[0] = (uint8_t)qh, h[1] = (uint8_t)(qh >> 8), h[2] = (uint8_t)(qh >> 16), h[3] = (uint8_t)(qh >> 24);
        break;
    }
    default: break;
    }
}

void cdx_quant_row(int type, const float *x, size_t k, void *out)
{
    uint8_t *y = out;
    switch (type) {
    case CDX_W_F32: memcpy(out, x, k * sizeof *x); return;
    case CDX_W_F16:
        for (size_t i = 0; i < k; i++) st_half(y + 2 * i, x[i]);
        return;
    case CDX_W_BF16:
        for (size_t i = 0; i < k; i++) {
            uint16_t h = cdx_float_to_bf16(x[i]);
            y[2 * i] = (uint8_t)h, y[2 * i + 1] = (uint8_t)(h >> 8);
        }
        return;
    default: break;
    }
    size_t bb = cdx_wtype_block_bytes(type);
    for (size_t b = 0; b < k / CDX_QK; b++) quant_block(type, x + b * CDX_QK, y + b * bb);
}
