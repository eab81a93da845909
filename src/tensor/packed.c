/*
 * packed.c - panel-packed weight matrices (CDX_W_F32P, F16P, BF16P, Q8P, Q4P, I8P; the
 * layouts are in ops.h): their sizes, sub-views, exact dequantization of one
 * row (for the scalar reference and for re-quantizing) and packing from the
 * row layout. Packing copies values (floats, halves, int8, nibbles and their
 * scales) without re-rounding, so a packed matrix holds exactly the numbers
 * of the row matrix it was made from; I8P, which has no row type, is
 * quantized from any matrix (qgemm.c). Rows past n are zero in every type.
 */
#include <string.h>

#include "tensor/ops.h"
#include "tensor/qgemm.h"

#define NR CDX_PANEL

static inline float ld_half(const uint8_t *p) { return cdx_half_to_float((uint16_t)(p[0] | p[1] << 8)); }

int cdx_wtype_packed_of(int type)
{
    switch (type) {
    case CDX_W_F32: return CDX_W_F32P;
    case CDX_W_F16: return CDX_W_F16P;
    case CDX_W_Q8_0: return CDX_W_Q8P;
    case CDX_W_Q4_0: return CDX_W_Q4P;
    case CDX_W_BF16: return CDX_W_BF16P;
    case CDX_W_I8: return CDX_W_I8P;
    default: return -1;
    }
}

/* Bytes of one panel (16 outputs x k inputs); 0 if k does not fit the type. */
static size_t panel_bytes(int type, size_t k)
{
    size_t r;
    switch (type) {
    case CDX_W_F32P: return cdx_mul(k, NR * 4, &r) ? 0 : r;
    case CDX_W_F16P: return cdx_mul(k, NR * 2, &r) ? 0 : r;
    case CDX_W_Q8P: return k % CDX_QK || cdx_mul(k / CDX_QK, 576, &r) ? 0 : r;
    case CDX_W_Q4P: return k % CDX_QK || cdx_mul(k / CDX_QK, 320, &r) ? 0 : r;
    case CDX_W_BF16P: return cdx_mul((k + 1) / 2, NR * 4, &r) ? 0 : r;
    case CDX_W_I8P: return cdx_i8p_bytes(NR, k);
    default: return 0;
    }
}

size_t cdx_wmat_bytes(int type, size_t n, size_t k)
{
    size_t r, pb;
    if (cdx_wtype_is_packed(type)) {
        pb = panel_bytes(type, k);
        return !pb || cdx_mul((n + NR - 1) / NR, pb, &r) ? 0 : r;
    }
    pb = cdx_wtype_row_bytes(type, k);
    return !pb || cdx_mul(n, pb, &r) ? 0 : r;
}

struct cdx_wmat cdx_wmat_sub(const struct cdx_wmat *W, size_t k, size_t j0)
{
    struct cdx_wmat s = {W->type, NULL};
    if (cdx_wtype_is_packed(W->type))
        s.data = (const uint8_t *)W->data + j0 / NR * panel_bytes(W->type, k);
    else
        s.data = cdx_wmat_row(W, k, j0);
    return s;
}

void cdx_wmat_dequant(const struct cdx_wmat *W, size_t k, size_t j, size_t k0, size_t kc, float *out)
{
    if (!cdx_wtype_is_packed(W->type)) {
        cdx_dequant_row(W->type, cdx_wmat_row(W, k, j), k0, kc, out);
        return;
    }
    const uint8_t *pan = (const uint8_t *)W->data + j / NR * panel_bytes(W->type, k);
    size_t r = j % NR;
    for (size_t p = k0; p < k0 + kc; p++) {
        size_t b = p / CDX_QK, e = p % CDX_QK, g = e / 4;
        switch (W->type) {
        case CDX_W_F32P: memcpy(&out[p - k0], pan + (p * NR + r) * 4, 4); break;
        case CDX_W_F16P: out[p - k0] = ld_half(pan + (p * NR + r) * 2); break;
        case CDX_W_BF16P: {
            const uint8_t *e2 = pan + ((p / 2 * NR + r) * 2 + p % 2) * 2;
            out[p - k0] = cdx_bf16_to_float((uint16_t)(e2[0] | e2[1] << 8));
            break;
        }
        case CDX_W_Q8P: {
            const uint8_t *blk = pan + b * 576;
            float d;
            memcpy(&d, blk + r * 4, 4);
            out[p - k0] = (float)(int8_t)blk[64 + (g * NR + r) * 4 + e % 4] * d;
            break;
        }
        case CDX_W_I8P: {
            float d;
            memcpy(&d, pan + r * 4, 4);
            out[p - k0] = (float)((int)pan[64 + (p / 4 * NR + r) * 4 + p % 4] - 128) * d;
            break;
        }
        default: { /* Q4P */
            const uint8_t *blk = pan + b * 320;
            float d;
            memcpy(&d, blk + r * 4, 4);
            uint8_t byte = blk[64 + g * 32 + (r % 8) * 4 + e % 4];
            int q = r < 8 ? byte & 15 : byte >> 4;
            out[p - k0] = (float)(q - 8) * d;
            break;
        }
        }
    }
}

int cdx_wmat_pack(int dst, const struct cdx_wmat *src, size_t n, size_t k, void *out)
{
    if (dst == CDX_W_I8P) return cdx_i8p_bytes(n, k) ? cdx_i8p_quant(src, n, k, out) : -1;
    if (cdx_wtype_packed_of(src->type) != dst) return -1;
    size_t pb = panel_bytes(dst, k), np = (n + NR - 1) / NR;
    size_t rb = cdx_wtype_row_bytes(src->type, k);
    if (!pb || !rb) return -1;
    if (dst == CDX_W_Q8P) {
        cdx_q8p_pack(src->data, n, k, out);
        return 0;
    }
    if (dst == CDX_W_Q4P) {
        cdx_q4p_pack(src->data, n, k, out);
        return 0;
    }
    size_t es = dst == CDX_W_F32P ? 4 : 2; /* F32P / F16P / BF16P: element bytes */
    uint8_t *o = out;
    memset(o, 0, np * pb);
    for (size_t q = 0; q < np; q++)
        for (size_t r = 0; r < NR && q * NR + r < n; r++) {
            const uint8_t *row = (const uint8_t *)src->data + (q * NR + r) * rb;
            for (size_t p = 0; p < k; p++) {
                size_t at = dst == CDX_W_BF16P ? (p / 2 * NR + r) * 2 + p % 2 : p * NR + r;
                memcpy(o + q * pb + at * es, row + p * es, es);
            }
        }
    return 0;
}
