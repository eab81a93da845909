/*
 * decode_pnm.c - a small, bounds-checked PNM reader (P1..P6) following
 * Pillow 9.4's PpmImagePlugin: P1/P4 -> 1 (1 bit = black), P2/P5 -> L,
 * P3/P6 -> RGB. maxval 255 is copied; any other maxval is scaled to
 * round(v / maxval * 255) (half to even, like Python's round) and clipped;
 * two bytes per sample (big-endian) when maxval > 255. Pillow opens gray
 * files with maxval > 255 as mode I (and its convert("RGB") then clips);
 * we scale them to L instead. Plain formats reject values above maxval.
 * Invariant: every read is checked against the buffer end; a short raster
 * is "truncated PNM"; the size is checked before allocating.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

static int pnm_space(uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

/* Pillow's _read_token: skips whitespace and '#' comments, reads up to 10
 * non-space bytes, consumes the one whitespace byte that ends it. */
static int read_token(const uint8_t *d, size_t n, size_t *pos, uint64_t *val)
{
    char tok[12];
    size_t k = 0;
    while (*pos < n) {
        uint8_t c = d[(*pos)++];
        if (pnm_space(c)) {
            if (k == 0) continue;
            break;
        }
        if (c == '#') {
            while (*pos < n && d[*pos] != '\r' && d[*pos] != '\n') (*pos)++;
            if (*pos < n) (*pos)++;
            continue;
        }
        if (k > 10) return -1;
        tok[k++] = (char)c;
    }
    if (k == 0 || k > 10) return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < k; i++) {
        if (tok[i] < '0' || tok[i] > '9') return -1;
        v = v * 10 + (uint64_t)(tok[i] - '0');
    }
    *val = v;
    return 0;
}

static uint8_t scale(uint32_t v, uint32_t maxval)
{
    if (maxval == 255) return (uint8_t)v;
    double t = rint((double)v / maxval * 255.0);
    return t > 255.0 ? 255 : (uint8_t)t;
}

int cdx_decode_pnm(clipdex_ctx *ctx, const uint8_t *d, size_t n, const struct cdx_decode_opts *o,
                   clipdex_image *img, struct cdx_decode_out *out)
{
    (void)out;
    int kind = d[1] - '0'; /* 1..6, checked by the sniffer */
    size_t pos = 3;        /* magic and its whitespace */
    uint64_t w, h, maxval = 1;
    if (read_token(d, n, &pos, &w) || read_token(d, n, &pos, &h))
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated PNM header");
    int bitonal = kind == 1 || kind == 4;
    if (!bitonal && read_token(d, n, &pos, &maxval))
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt or truncated PNM header");
    if (maxval == 0 || maxval > 65535)
        return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt PNM: maxval %llu", (unsigned long long)maxval);
    int st = cdx_image_check_size(ctx, o, "PNM", w, h);
    if (st) return st;
    int mode = bitonal ? CLIPDEX_MODE_1 : (kind == 2 || kind == 5) ? CLIPDEX_MODE_L : CLIPDEX_MODE_RGB;
    if ((st = cdx_image_alloc(ctx, img, (uint32_t)w, (uint32_t)h, mode, "pnm"))) return st;
    size_t count = (size_t)w * h * img->channels; /* samples */
    uint8_t *px = img->pixels;
    const uint32_t mv = (uint32_t)maxval;

    if (kind == 4) { /* packed bits, rows padded to a byte, 1 = black */
        size_t rb = ((size_t)w + 7) / 8;
        if (rb > (n - pos) / h) goto truncated;
        for (size_t y = 0; y < h; y++)
            for (size_t x = 0; x < w; x++)
                px[y * w + x] = (d[pos + y * rb + x / 8] >> (7 - x % 8)) & 1 ? 0 : 255;
    } else if (kind == 5 || kind == 6) {
        size_t bps = mv > 255 ? 2 : 1;
        if (count > (n - pos) / bps) goto truncated;
        for (size_t i = 0; i < count; i++) {
            uint32_t v = bps == 2 ? (uint32_t)d[pos + 2 * i] << 8 | d[pos + 2 * i + 1] : d[pos + i];
            px[i] = scale(v, mv);
        }
    } else if (kind == 1) { /* '0'/'1' characters, whitespace optional */
        size_t i = 0;
        while (i < count && pos < n) {
            uint8_t c = d[pos++];
            if (c == '#') {
                while (pos < n && d[pos] != '\r' && d[pos] != '\n') pos++;
                continue;
            }
            if (pnm_space(c)) continue;
            if (c != '0' && c != '1') {
                free(img->pixels);
                img->pixels = NULL;
                return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt PNM: invalid bit '%c'", c);
            }
            px[i++] = c == '1' ? 0 : 255;
        }
        if (i < count) goto truncated;
    } else { /* P2/P3: decimal samples */
        size_t i = 0;
        while (i < count) {
            while (pos < n && (pnm_space(d[pos]) || d[pos] == '#')) {
                if (d[pos] == '#')
                    while (pos < n && d[pos] != '\r' && d[pos] != '\n') pos++;
                else
                    pos++;
            }
            if (pos >= n) goto truncated;
            uint32_t v = 0;
            int digits = 0;
            while (pos < n && d[pos] >= '0' && d[pos] <= '9') {
                if (++digits > 10) break;
                v = v * 10 + (uint32_t)(d[pos++] - '0');
                if (v > 65535) break;
            }
            if (digits == 0 || digits > 10 || v > mv || (pos < n && !pnm_space(d[pos]) && d[pos] != '#')) {
                free(img->pixels);
                img->pixels = NULL;
                return cdx_error(ctx, CLIPDEX_E_IMAGE, "corrupt PNM: bad sample value");
            }
            px[i++] = scale(v, mv);
        }
    }
    return CLIPDEX_OK;
truncated:
    free(img->pixels);
    img->pixels = NULL;
    return cdx_error(ctx, CLIPDEX_E_IMAGE, "truncated PNM (image data ends early)");
}
