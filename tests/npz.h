/*
 * npz.h - a small reader for UNCOMPRESSED .npz files (a zip of .npy arrays,
 * as written by numpy.savez), for tests and tools. Header-only.
 *
 *   npz_file *z;
 *   if (npz_open("golden_inputs.npz", &z) == 0) {
 *       npz_array a;
 *       if (npz_find(z, "images", &a) == 0 && strcmp(a.dtype, "<f4") == 0) {
 *           const float *x = a.data;   // a.shape[0..ndim), a.count elements
 *       }
 *       npz_close(z);
 *   }
 *
 * The whole file is read into memory; array data points into it (aligned as
 * in the file, so copy before type-punning on strict-alignment machines --
 * numpy aligns .npy data to 64 bytes within the member, zip offsets may not).
 * Only stored (method 0) members are supported; ZIP64 extra fields are
 * understood. Every offset is bounds-checked. Return values: 0 ok, -1 I/O
 * error, -2 malformed, -3 not found, -4 unsupported (compressed, big-endian,
 * Fortran order).
 */
#ifndef CLIPDEX_TESTS_NPZ_H
#define CLIPDEX_TESTS_NPZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPZ_MAX_DIMS 8

typedef struct npz_file {
    uint8_t *buf;
    size_t len;
} npz_file;

typedef struct npz_array {
    char dtype[16];               /* numpy descr, e.g. "<f4", "<i8", "|u1" */
    size_t itemsize;              /* bytes per element */
    int ndim;
    size_t shape[NPZ_MAX_DIMS];
    size_t count;                 /* product of shape */
    const void *data;             /* count * itemsize bytes, C order */
} npz_array;

static inline uint32_t npz__u16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static inline uint32_t npz__u32(const uint8_t *p) { return npz__u16(p) | npz__u16(p + 2) << 16; }
static inline uint64_t npz__u64(const uint8_t *p) { return (uint64_t)npz__u32(p) | (uint64_t)npz__u32(p + 4) << 32; }

static inline int npz_open(const char *path, npz_file **out)
{
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return -1; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return -1; }
    npz_file *z = calloc(1, sizeof *z);
    uint8_t *buf = malloc((size_t)n + 1);
    if (!z || !buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(z);
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    z->buf = buf;
    z->len = (size_t)n;
    *out = z;
    return 0;
}

static inline void npz_close(npz_file *z)
{
    if (!z) return;
    free(z->buf);
    free(z);
}

/* Parses a .npy member (data, len) into *a. */
static inline int npz__parse_npy(const uint8_t *d, size_t len, npz_array *a)
{
    if (len < 10 || memcmp(d, "\x93NUMPY", 6) != 0) return -2;
    size_t hl, off;
    if (d[6] == 1) { hl = npz__u16(d + 8); off = 10; }
    else if (len >= 12) { hl = npz__u32(d + 8); off = 12; }
    else return -2;
    if (hl > len - off) return -2;
    char hdr[1024];
    if (hl >= sizeof hdr) return -2;
    memcpy(hdr, d + off, hl);
    hdr[hl] = '\0';
    const char *p = strstr(hdr, "'descr':");
    if (!p || !(p = strchr(p + 8, '\''))) return -2;
    const char *q = strchr(p + 1, '\'');
    if (!q || (size_t)(q - p - 1) >= sizeof a->dtype) return -2;
    memcpy(a->dtype, p + 1, (size_t)(q - p - 1));
    a->dtype[q - p - 1] = '\0';
    if (a->dtype[0] == '>') return -4;
    a->itemsize = (size_t)strtoul(a->dtype + 2, NULL, 10);
    if (a->itemsize == 0 || a->itemsize > 16) return -4;
    p = strstr(hdr, "'fortran_order':");
    if (!p) return -2;
    if (strncmp(p + 16, " True", 5) == 0 || strncmp(p + 16, "True", 4) == 0) return -4;
    p = strstr(hdr, "'shape':");
    if (!p || !(p = strchr(p, '('))) return -2;
    a->ndim = 0;
    a->count = 1;
    p++;
    for (;;) {
        while (*p == ' ' || *p == ',') p++;
        if (*p == ')') break;
        if (*p < '0' || *p > '9' || a->ndim >= NPZ_MAX_DIMS) return -2;
        char *e;
        unsigned long long v = strtoull(p, &e, 10);
        a->shape[a->ndim++] = (size_t)v;
        if (v && a->count > SIZE_MAX / v) return -2;
        a->count *= (size_t)v;
        p = e;
    }
    size_t body = len - off - hl;
    if (a->count > body / a->itemsize) return -2;
    a->data = d + off + hl;
    return 0;
}

/* Finds member `name` (with or without ".npy") and parses it. */
static inline int npz_find(const npz_file *z, const char *name, npz_array *a)
{
    memset(a, 0, sizeof *a);
    const uint8_t *b = z->buf;
    size_t n = z->len;
    if (n < 22) return -2;
    /* End of central directory: scan back over a possible comment. */
    size_t eocd = n - 22, lim = n > 22 + 65535 ? n - 22 - 65535 : 0;
    for (;; eocd--) {
        if (npz__u32(b + eocd) == 0x06054b50) break;
        if (eocd == lim) return -2;
    }
    uint32_t entries = npz__u16(b + eocd + 10);
    uint64_t cd = npz__u32(b + eocd + 16);
    size_t want = strlen(name);
    int has_ext = want > 4 && strcmp(name + want - 4, ".npy") == 0;
    for (uint32_t i = 0; i < entries; i++) {
        if (cd > n || n - cd < 46 || npz__u32(b + cd) != 0x02014b50) return -2;
        const uint8_t *e = b + cd;
        uint32_t method = npz__u16(e + 10);
        uint64_t csize = npz__u32(e + 20), usize = npz__u32(e + 24), loff = npz__u32(e + 42);
        size_t nl = npz__u16(e + 28), xl = npz__u16(e + 30), cl = npz__u16(e + 32);
        if (n - cd - 46 < nl + xl + cl) return -2;
        const char *fname = (const char *)e + 46;
        /* ZIP64 extra: the 0xFFFFFFFF fields follow in order usize, csize, offset */
        const uint8_t *x = e + 46 + nl, *xe = x + xl;
        while (xe - x >= 4) {
            uint32_t id = npz__u16(x), sz = npz__u16(x + 2);
            if ((size_t)(xe - x - 4) < sz) break;
            if (id == 1) {
                const uint8_t *v = x + 4, *ve = v + sz;
                if (usize == 0xFFFFFFFFu && ve - v >= 8) { usize = npz__u64(v); v += 8; }
                if (csize == 0xFFFFFFFFu && ve - v >= 8) { csize = npz__u64(v); v += 8; }
                if (loff == 0xFFFFFFFFu && ve - v >= 8) { loff = npz__u64(v); v += 8; }
            }
            x += 4 + sz;
        }
        int match = has_ext ? (nl == want && memcmp(fname, name, want) == 0)
                            : (nl == want + 4 && memcmp(fname, name, want) == 0 &&
                               memcmp(fname + want, ".npy", 4) == 0);
        if (match) {
            if (method != 0 || csize != usize) return -4;
            if (loff > n || n - loff < 30 || npz__u32(b + loff) != 0x04034b50) return -2;
            uint64_t data = loff + 30 + npz__u16(b + loff + 26) + npz__u16(b + loff + 28);
            if (data > n || n - data < csize) return -2;
            return npz__parse_npy(b + data, (size_t)csize, a);
        }
        cd += 46 + nl + xl + cl;
    }
    return -3;
}

#endif
