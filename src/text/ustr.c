/*
 * ustr.c - code point buffers and UTF-8 for the tokenizer.
 *
 * Invariants: buffers grow geometrically with overflow-checked sizes and are
 * never shared; the decoder accepts any bytes, never reads past `len` and
 * replaces each maximal invalid subpart by one U+FFFD, which is what Python's
 * `bytes.decode('utf-8', errors='replace')` does (the reference tokenizer
 * works on Python strings, so this is how its input would have been made).
 */
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

int cdx_u32_reserve(struct cdx_u32buf *b, size_t extra)
{
    size_t need;
    if (cdx_add(b->n, extra, &need)) return CLIPDEX_E_NOMEM;
    if (need <= b->cap) return CLIPDEX_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need) {
        if (cdx_mul(cap, 2, &cap)) return CLIPDEX_E_NOMEM;
    }
    size_t bytes;
    if (cdx_mul(cap, sizeof(uint32_t), &bytes)) return CLIPDEX_E_NOMEM;
    uint32_t *v = realloc(b->v, bytes);
    if (!v) return CLIPDEX_E_NOMEM;
    b->v = v;
    b->cap = cap;
    return CLIPDEX_OK;
}

int cdx_u32_append(struct cdx_u32buf *b, const uint32_t *v, size_t n)
{
    if (!n) return CLIPDEX_OK;
    if (cdx_u32_reserve(b, n)) return CLIPDEX_E_NOMEM;
    memcpy(b->v + b->n, v, n * sizeof *v);
    b->n += n;
    return CLIPDEX_OK;
}

void cdx_u32_free(struct cdx_u32buf *b)
{
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

static int is_cont(uint8_t c) { return (c & 0xC0) == 0x80; }

uint32_t cdx_utf8_next(const uint8_t *s, size_t len, size_t *pos)
{
    size_t i = *pos;
    uint8_t b0 = s[i];
    if (b0 < 0x80) {
        *pos = i + 1;
        return b0;
    }
    if (b0 < 0xC2 || b0 > 0xF4) { /* continuation, overlong lead or beyond U+10FFFF */
        *pos = i + 1;
        return 0xFFFD;
    }
    int need = b0 < 0xE0 ? 1 : b0 < 0xF0 ? 2 : 3;
    /* The range the second byte must fall in (Unicode table 3-7). */
    uint8_t lo = 0x80, hi = 0xBF;
    if (b0 == 0xE0) lo = 0xA0;
    else if (b0 == 0xED) hi = 0x9F;
    else if (b0 == 0xF0) lo = 0x90;
    else if (b0 == 0xF4) hi = 0x8F;
    uint32_t c = b0 & (0x3F >> need);
    size_t j = i + 1;
    for (int k = 0; k < need; k++, j++) {
        if (j >= len) break;
        uint8_t b = s[j];
        if (k == 0 ? (b < lo || b > hi) : !is_cont(b)) break;
        c = (c << 6) | (b & 0x3F);
        if (k == need - 1) {
            *pos = j + 1;
            return c;
        }
    }
    *pos = j; /* the valid prefix [i, j) is one error */
    return 0xFFFD;
}

size_t cdx_utf8_put(uint32_t c, uint8_t out[4])
{
    if (c < 0x80) {
        out[0] = (uint8_t)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (uint8_t)(0xC0 | (c >> 6));
        out[1] = (uint8_t)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (uint8_t)(0xE0 | (c >> 12));
        out[1] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (uint8_t)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (uint8_t)(0xF0 | (c >> 18));
    out[1] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (uint8_t)(0x80 | (c & 0x3F));
    return 4;
}

int cdx_utf8_valid(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t start = i;
        uint32_t c = cdx_utf8_next(s, len, &i);
        /* A real U+FFFD is 3 bytes EF BF BD; a replacement never is. */
        if (c == 0xFFFD && !(i - start == 3 && s[start] == 0xEF)) return 0;
    }
    return 1;
}
