/*
 * gguf.c - parse, map and write GGUF files. The reader walks the header with
 * a cursor that checks every read against the end of the file; counts,
 * string lengths, array lengths, dimensions and offsets are validated (and
 * overflow-checked) before use, so hostile files give CLIPDEX_E_FORMAT (or
 * CLIPDEX_E_UNSUPPORTED for a valid file with a tensor type clipdex cannot
 * compute with) with a message naming the file and the key or tensor. The
 * writer lays out a v3 file with 32-byte alignment and writes it atomically.
 */
#include "model/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/ops.h"

#define GGUF_MAGIC "GGUF"

int cdx_gguf_sniff(const void *buf, size_t len) { return len >= 4 && memcmp(buf, GGUF_MAGIC, 4) == 0; }

/* ---------------------------------------------------------------- reading */

struct cur {
    const uint8_t *p, *end;
};

static int rd(struct cur *c, void *out, size_t n)
{
    if ((size_t)(c->end - c->p) < n) return 0;
    memcpy(out, c->p, n);
    c->p += n;
    return 1;
}

static int rd_u32(struct cur *c, uint32_t *v)
{
    uint8_t b[4];
    if (!rd(c, b, 4)) return 0;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

static int rd_u64(struct cur *c, uint64_t *v)
{
    uint32_t lo, hi;
    if (!rd_u32(c, &lo) || !rd_u32(c, &hi)) return 0;
    *v = (uint64_t)hi << 32 | lo;
    return 1;
}

/* A string: u64 length + bytes. *s points into the buffer. */
static int rd_str(struct cur *c, const uint8_t **s, uint64_t *len)
{
    if (!rd_u64(c, len) || *len > (uint64_t)(c->end - c->p)) return 0;
    *s = c->p;
    c->p += *len;
    return 1;
}

static size_t scalar_size(int t)
{
    switch (t) {
    case CDX_GGUF_U8: case CDX_GGUF_I8: case CDX_GGUF_BOOL: return 1;
    case CDX_GGUF_U16: case CDX_GGUF_I16: return 2;
    case CDX_GGUF_U32: case CDX_GGUF_I32: case CDX_GGUF_F32: return 4;
    case CDX_GGUF_U64: case CDX_GGUF_I64: case CDX_GGUF_F64: return 8;
    default: return 0;
    }
}

/* Skips one value of type t (arrays nest at most `depth` more levels). */
static int skip_value(struct cur *c, int t, int depth)
{
    size_t sz = scalar_size((int)t);
    if (sz) {
        if ((size_t)(c->end - c->p) < sz) return 0;
        c->p += sz;
        return 1;
    }
    if (t == CDX_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        return rd_str(c, &s, &n);
    }
    if (t != CDX_GGUF_ARRAY || depth <= 0) return 0;
    uint32_t at;
    uint64_t n;
    if (!rd_u32(c, &at) || !rd_u64(c, &n) || n > CDX_GGUF_MAX_ARRAY) return 0;
    size_t es = scalar_size((int)at);
    if (es) {
        if (n > (uint64_t)(c->end - c->p) / es) return 0;
        c->p += (size_t)n * es;
        return 1;
    }
    for (uint64_t i = 0; i < n; i++)
        if (!skip_value(c, (int)at, depth - 1)) return 0;
    return 1;
}

static char *dup_name(const uint8_t *s, uint64_t n)
{
    char *d = malloc((size_t)n + 1);
    if (!d) return NULL;
    memcpy(d, s, (size_t)n);
    d[n] = '\0';
    return d;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 1 if two of the n names are equal (the duplicate in *dup). */
static int has_duplicate(char **names, size_t n, const char **dup)
{
    if (n < 2) return 0;
    char **s = malloc(n * sizeof *s);
    if (!s) return -1;
    memcpy(s, names, n * sizeof *s);
    qsort(s, n, sizeof *s, cmp_names);
    int found = 0;
    for (size_t i = 1; i < n && !found; i++)
        if (strcmp(s[i - 1], s[i]) == 0) found = 1, *dup = s[i];
    free(s);
    return found;
}

void cdx_gguf_close(struct cdx_gguf_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_kv; i++) free(f->kv[i].key);
    free(f->kv);
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

#define BAD(...) (st = cdx_error(ctx, CLIPDEX_E_FORMAT, __VA_ARGS__))

int cdx_gguf_parse(clipdex_ctx *ctx, const uint8_t *buf, size_t len, const char *label,
                   struct cdx_gguf_file *f)
{
    struct cur c = {buf, buf + len};
    uint8_t magic[4];
    uint32_t version;
    uint64_t n_t, n_kv;
    int st = CLIPDEX_OK;
    if (!rd(&c, magic, 4) || memcmp(magic, GGUF_MAGIC, 4) != 0)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': not a GGUF file (bad magic)", label);
    if (!rd_u32(&c, &version) || !rd_u64(&c, &n_t) || !rd_u64(&c, &n_kv))
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': truncated GGUF header", label);
    if (version != 2 && version != 3)
        return cdx_error(ctx, version == 1 ? CLIPDEX_E_UNSUPPORTED : CLIPDEX_E_FORMAT,
                         "cannot read '%s': GGUF version %u is not supported (2 or 3)", label, version);
    if (n_t > CDX_GGUF_MAX_TENSORS || n_kv > CDX_GGUF_MAX_KV || n_t > len / 24 || n_kv > len / 12)
        return cdx_error(ctx, CLIPDEX_E_FORMAT,
                         "cannot read '%s': %llu tensors and %llu keys is more than the file can hold",
                         label, (unsigned long long)n_t, (unsigned long long)n_kv);
    f->version = version;
    f->alignment = CDX_GGUF_DEFAULT_ALIGNMENT;
    f->kv = calloc(n_kv ? (size_t)n_kv : 1, sizeof *f->kv);
    f->tensors = calloc(n_t ? (size_t)n_t : 1, sizeof *f->tensors);
    char **names = malloc((n_t > n_kv ? (size_t)n_t : (size_t)n_kv) * sizeof *names + 1);
    if (!f->kv || !f->tensors || !names) {
        free(names);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", label);
    }
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *ks;
        uint64_t kl;
        uint32_t vt;
        struct cdx_gguf_kv *kv = &f->kv[f->n_kv];
        if (!rd_str(&c, &ks, &kl) || kl > CDX_GGUF_MAX_NAME || !rd_u32(&c, &vt)) {
            BAD("cannot read '%s': key/value %llu is truncated or its key is too long", label,
                (unsigned long long)i);
            goto out;
        }
        if (!(kv->key = dup_name(ks, kl))) {
            st = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", label);
            goto out;
        }
        f->n_kv++;
        if (strlen(kv->key) != kl) {
            BAD("cannot read '%s': key %llu holds a NUL byte", label, (unsigned long long)i);
            goto out;
        }
        kv->type = (int)vt;
        if (vt == CDX_GGUF_ARRAY) {
            uint32_t at;
            const uint8_t *save = c.p;
            if (!rd_u32(&c, &at) || !rd_u64(&c, &kv->n)) {
                BAD("cannot read '%s': key '%s': truncated array", label, kv->key);
                goto out;
            }
            kv->arr_type = (int)at;
            kv->val = c.p;
            c.p = save;
        } else if (vt == CDX_GGUF_STRING) {
            struct cur c2 = c;
            if (!rd_u64(&c2, &kv->n)) {
                BAD("cannot read '%s': key '%s': truncated string", label, kv->key);
                goto out;
            }
            kv->val = c2.p;
        } else {
            kv->val = c.p;
        }
        if (vt > CDX_GGUF_F64 || !skip_value(&c, (int)vt, 2)) {
            BAD("cannot read '%s': key '%s': bad value type %u, or the value runs past the end of the file",
                label, kv->key, vt);
            goto out;
        }
        if (strcmp(kv->key, "general.alignment") == 0) {
            uint32_t a;
            if (vt != CDX_GGUF_U32 || (memcpy(&a, kv->val, 4), a == 0) || (a & (a - 1)) || a > 65536) {
                BAD("cannot read '%s': general.alignment must be a u32 power of two up to 65536", label);
                goto out;
            }
            f->alignment = a;
        }
    }
    for (size_t i = 0; i < f->n_kv; i++) names[i] = f->kv[i].key;
    const char *dup = NULL;
    int d = has_duplicate(names, f->n_kv, &dup);
    if (d) {
        if (d < 0) st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        else BAD("cannot read '%s': key '%s' appears twice", label, dup);
        goto out;
    }
    for (uint64_t i = 0; i < n_t; i++) {
        struct cdx_gguf_tensor *t = &f->tensors[f->n_tensors];
        const uint8_t *ns;
        uint64_t nl, off;
        uint32_t nd, ty;
        if (!rd_str(&c, &ns, &nl) || nl > CDX_GGUF_MAX_NAME) {
            BAD("cannot read '%s': tensor info %llu is truncated or its name is too long", label,
                (unsigned long long)i);
            goto out;
        }
        if (!(t->name = dup_name(ns, nl))) {
            st = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", label);
            goto out;
        }
        f->n_tensors++;
        if (strlen(t->name) != nl) {
            BAD("cannot read '%s': tensor name %llu holds a NUL byte", label, (unsigned long long)i);
            goto out;
        }
        if (!rd_u32(&c, &nd) || nd < 1 || nd > CDX_GGUF_MAX_DIMS) {
            BAD("cannot read '%s': tensor '%s' has a bad dimension count", label, t->name);
            goto out;
        }
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (uint32_t k = 0; k < nd; k++) {
            if (!rd_u64(&c, &t->ne[k]) || t->ne[k] > (1ull << 40) ||
                __builtin_mul_overflow(numel, t->ne[k], &numel)) {
                BAD("cannot read '%s': tensor '%s' has a bad or truncated shape", label, t->name);
                goto out;
            }
        }
        t->numel = numel;
        if (!rd_u32(&c, &ty) || !rd_u64(&c, &off)) {
            BAD("cannot read '%s': tensor '%s': truncated info", label, t->name);
            goto out;
        }
        t->type = (int)ty;
        if (!cdx_wtype_name((int)ty) || ty == CDX_W_I8) { /* I8 exists only as I8P panels */
            st = cdx_error(ctx, CLIPDEX_E_UNSUPPORTED,
                           "cannot read '%s': tensor '%s' has ggml type %u; clipdex reads F32, F16, Q4_0, "
                           "Q4_1, Q5_0, Q5_1 and Q8_0 (and its own packed types %u..%u)", label, t->name, ty,
                           (unsigned)CDX_W_PACKED, (unsigned)CDX_W_Q8P);
            goto out;
        }
        /* packed types: n = outermost dimension, k = the rest (panels of 16 outputs) */
        size_t nb, outer = (size_t)t->ne[nd - 1], inner = outer ? (size_t)(numel / outer) : 0;
        if (cdx_wtype_is_packed((int)ty)) {
            nb = cdx_wmat_bytes((int)ty, outer, inner);
            if (nd < 2 || !outer || !inner || !nb) {
                BAD("cannot read '%s': tensor '%s': shape does not fit the packed type %s", label, t->name,
                    cdx_wtype_name((int)ty));
                goto out;
            }
        } else {
            size_t blk = cdx_wtype_block((int)ty);
            if (t->ne[0] % blk || cdx_mul((size_t)(numel / blk), cdx_wtype_block_bytes((int)ty), &nb)) {
                BAD("cannot read '%s': tensor '%s': row length %llu is not a multiple of the %s block",
                    label, t->name, (unsigned long long)t->ne[0], cdx_wtype_name((int)ty));
                goto out;
            }
        }
        t->nbytes = nb;
        if (off % f->alignment) {
            BAD("cannot read '%s': tensor '%s': offset %llu is not aligned to %u", label, t->name,
                (unsigned long long)off, f->alignment);
            goto out;
        }
        t->offset = (size_t)off;
    }
    for (size_t i = 0; i < f->n_tensors; i++) names[i] = f->tensors[i].name;
    d = has_duplicate(names, f->n_tensors, &dup);
    if (d) {
        if (d < 0) st = cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
        else BAD("cannot read '%s': tensor '%s' appears twice", label, dup);
        goto out;
    }
    size_t hdr = (size_t)(c.p - buf), start = (hdr + f->alignment - 1) / f->alignment * f->alignment;
    if (start > len) start = len; /* no data section: only empty tensors can fit */
    f->data = buf + start;
    f->data_len = len - start;
    for (size_t i = 0; i < f->n_tensors; i++) {
        const struct cdx_gguf_tensor *t = &f->tensors[i];
        if (t->offset > f->data_len || t->nbytes > f->data_len - t->offset) {
            BAD("cannot read '%s': tensor '%s' (%zu bytes at offset %zu) lies outside the %zu-byte data "
                "section (truncated file?)", label, t->name, t->nbytes, t->offset, f->data_len);
            goto out;
        }
    }
out:
    free(names);
    return st;
}

int cdx_gguf_open(clipdex_ctx *ctx, const char *path, struct cdx_gguf_file *f)
{
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot open '%s': not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 24) {
        close(fd);
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': %zu bytes is too short for a GGUF file",
                         path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return cdx_error(ctx, CLIPDEX_E_IO, "cannot map '%s': %s", path, strerror(errno));
    f->map = map;
    f->map_len = len;
    f->path = strdup(path);
    int rc = f->path ? cdx_gguf_parse(ctx, map, len, path, f) : cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    if (rc != CLIPDEX_OK) cdx_gguf_close(f);
    return rc;
}

const struct cdx_gguf_tensor *cdx_gguf_find(const struct cdx_gguf_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const struct cdx_gguf_kv *cdx_gguf_get(const struct cdx_gguf_file *f, const char *key)
{
    for (size_t i = 0; i < f->n_kv; i++)
        if (strcmp(f->kv[i].key, key) == 0) return &f->kv[i];
    return NULL;
}

static uint64_t le(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

int cdx_gguf_get_u32(const struct cdx_gguf_file *f, const char *key, uint32_t *out)
{
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    if (!kv) return 0;
    int t = kv->type;
    size_t sz = scalar_size(t);
    if (!sz || t == CDX_GGUF_F32 || t == CDX_GGUF_F64 || t == CDX_GGUF_BOOL) return -1;
    uint64_t v = le(kv->val, sz);
    int sgn = t == CDX_GGUF_I8 || t == CDX_GGUF_I16 || t == CDX_GGUF_I32 || t == CDX_GGUF_I64;
    if (sgn && sz < 8 && (v >> (sz * 8 - 1)) & 1) return -1; /* negative */
    if ((sgn && sz == 8 && (v >> 63)) || v > UINT32_MAX) return -1;
    *out = (uint32_t)v;
    return 1;
}

static int num_at(int t, const uint8_t *p, double *out)
{
    if (t == CDX_GGUF_F32) {
        float x;
        uint32_t b = (uint32_t)le(p, 4);
        memcpy(&x, &b, 4);
        *out = x;
        return 1;
    }
    if (t == CDX_GGUF_F64) {
        uint64_t b = le(p, 8);
        memcpy(out, &b, 8);
        return 1;
    }
    return 0;
}

int cdx_gguf_get_f32(const struct cdx_gguf_file *f, const char *key, float *out)
{
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    double d;
    if (!kv) return 0;
    if (!num_at(kv->type, kv->val, &d)) return -1;
    *out = (float)d;
    return 1;
}

int cdx_gguf_get_bool(const struct cdx_gguf_file *f, const char *key, int *out)
{
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    if (!kv) return 0;
    if (kv->type != CDX_GGUF_BOOL) return -1;
    *out = kv->val[0] != 0;
    return 1;
}

int cdx_gguf_get_str(const struct cdx_gguf_file *f, const char *key, const char **s, size_t *len)
{
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    if (!kv) return 0;
    if (kv->type != CDX_GGUF_STRING) return -1;
    *s = (const char *)kv->val;
    *len = (size_t)kv->n;
    return 1;
}

int cdx_gguf_get_f32s(const struct cdx_gguf_file *f, const char *key, float *out, size_t n)
{
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    if (!kv) return 0;
    if (kv->type != CDX_GGUF_ARRAY || kv->n != n || (kv->arr_type != CDX_GGUF_F32 && kv->arr_type != CDX_GGUF_F64))
        return -1;
    size_t es = scalar_size(kv->arr_type);
    for (size_t i = 0; i < n; i++) {
        double d;
        num_at(kv->arr_type, kv->val + i * es, &d);
        out[i] = (float)d;
    }
    return 1;
}

void cdx_gguf_strs_free(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) free(v[i]);
    free(v);
}

int cdx_gguf_get_strs(const struct cdx_gguf_file *f, const char *key, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const struct cdx_gguf_kv *kv = cdx_gguf_get(f, key);
    if (!kv) return 0;
    if (kv->type != CDX_GGUF_ARRAY || kv->arr_type != CDX_GGUF_STRING) return -1;
    char **v = calloc(kv->n ? (size_t)kv->n : 1, sizeof *v);
    if (!v) return -1;
    /* the parse checked that every string of the array lies before the data section's end */
    struct cur c = {kv->val, f->data + f->data_len};
    for (uint64_t i = 0; i < kv->n; i++) {
        const uint8_t *s;
        uint64_t len;
        if (!rd_str(&c, &s, &len) || memchr(s, 0, (size_t)len) || !(v[i] = dup_name(s, len))) {
            cdx_gguf_strs_free(v, (size_t)i);
            return -1;
        }
    }
    *out = v;
    *n = (size_t)kv->n;
    return 1;
}

/* ---------------------------------------------------------------- writing */

#define MAX_HEADER (64u << 20)

struct wtensor {
    char *name;
    int type, ndim;
    uint64_t ne[CDX_GGUF_MAX_DIMS];
    const void *data;
    size_t nbytes;
    int owned;
};

struct cdx_gguf_writer {
    clipdex_ctx *ctx;
    uint8_t *kv;          /* serialized key/values */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    struct wtensor *t;
    size_t n_t, cap_t;
    int failed;           /* an add failed: write refuses */
};

int cdx_gguf_writer_new(clipdex_ctx *ctx, struct cdx_gguf_writer **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    (*out)->ctx = ctx;
    return CLIPDEX_OK;
}

void cdx_gguf_writer_free(struct cdx_gguf_writer *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (w->t[i].owned) free((void *)w->t[i].data);
    }
    free(w->t);
    free(w->kv);
    free(w);
}

static int put(struct cdx_gguf_writer *w, const void *p, size_t n)
{
    if (w->kv_len + n > w->kv_cap) {
        size_t nc = w->kv_cap ? w->kv_cap : 4096;
        while (nc < w->kv_len + n) nc *= 2;
        if (nc > MAX_HEADER) {
            w->failed = 1;
            return cdx_error(w->ctx, CLIPDEX_E_LIMIT, "GGUF writer: header over %u bytes", MAX_HEADER);
        }
        uint8_t *nk = realloc(w->kv, nc);
        if (!nk) {
            w->failed = 1;
            return cdx_error(w->ctx, CLIPDEX_E_NOMEM, "out of memory");
        }
        w->kv = nk;
        w->kv_cap = nc;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return CLIPDEX_OK;
}

static int put_u32(struct cdx_gguf_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(w, b, 4);
}

static int put_u64(struct cdx_gguf_writer *w, uint64_t v)
{
    return put_u32(w, (uint32_t)v) || put_u32(w, (uint32_t)(v >> 32)) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

static int put_str(struct cdx_gguf_writer *w, const char *s)
{
    size_t n = strlen(s);
    return put_u64(w, n) || put(w, s, n) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

static int key(struct cdx_gguf_writer *w, const char *k, uint32_t type)
{
    w->n_kv++;
    return put_str(w, k) || put_u32(w, type) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

static uint32_t f32_bits(float v)
{
    uint32_t b;
    memcpy(&b, &v, 4);
    return b;
}

int cdx_gguf_add_u32(struct cdx_gguf_writer *w, const char *k, uint32_t v)
{
    return key(w, k, CDX_GGUF_U32) || put_u32(w, v) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

int cdx_gguf_add_f32(struct cdx_gguf_writer *w, const char *k, float v)
{
    return key(w, k, CDX_GGUF_F32) || put_u32(w, f32_bits(v)) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

int cdx_gguf_add_bool(struct cdx_gguf_writer *w, const char *k, int v)
{
    uint8_t b = v ? 1 : 0;
    return key(w, k, CDX_GGUF_BOOL) || put(w, &b, 1) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

int cdx_gguf_add_str(struct cdx_gguf_writer *w, const char *k, const char *v)
{
    return key(w, k, CDX_GGUF_STRING) || put_str(w, v) ? CLIPDEX_E_NOMEM : CLIPDEX_OK;
}

int cdx_gguf_add_f32s(struct cdx_gguf_writer *w, const char *k, const float *v, size_t n)
{
    if (key(w, k, CDX_GGUF_ARRAY) || put_u32(w, CDX_GGUF_F32) || put_u64(w, n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (put_u32(w, f32_bits(v[i]))) return CLIPDEX_E_NOMEM;
    return CLIPDEX_OK;
}

int cdx_gguf_add_strs(struct cdx_gguf_writer *w, const char *k, char *const *v, size_t n)
{
    if (key(w, k, CDX_GGUF_ARRAY) || put_u32(w, CDX_GGUF_STRING) || put_u64(w, n)) return CLIPDEX_E_NOMEM;
    for (size_t i = 0; i < n; i++)
        if (put_str(w, v[i])) return CLIPDEX_E_NOMEM;
    return CLIPDEX_OK;
}

int cdx_gguf_add_tensor(struct cdx_gguf_writer *w, const char *name, int type, int ndim, const uint64_t *ne,
                        const void *data, size_t nbytes, int owned)
{
    if (w->n_t == w->cap_t) {
        size_t nc = w->cap_t ? w->cap_t * 2 : 256;
        struct wtensor *nt = realloc(w->t, nc * sizeof *nt);
        if (!nt) {
            if (owned) free((void *)data);
            w->failed = 1;
            return cdx_error(w->ctx, CLIPDEX_E_NOMEM, "out of memory");
        }
        w->t = nt;
        w->cap_t = nc;
    }
    struct wtensor *t = &w->t[w->n_t];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    if (!t->name || ndim < 1 || ndim > CDX_GGUF_MAX_DIMS) {
        free(t->name);
        if (owned) free((void *)data);
        w->failed = 1;
        return cdx_error(w->ctx, t->name ? CLIPDEX_E_INTERNAL : CLIPDEX_E_NOMEM, "GGUF writer: cannot add '%s'", name);
    }
    t->type = type;
    t->ndim = ndim;
    memcpy(t->ne, ne, (size_t)ndim * sizeof *ne);
    t->data = data;
    t->nbytes = nbytes;
    t->owned = owned;
    w->n_t++;
    return CLIPDEX_OK;
}

static size_t align_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

int cdx_gguf_write(struct cdx_gguf_writer *w, const char *path)
{
    clipdex_ctx *ctx = w->ctx;
    if (w->failed) return cdx_error(ctx, CLIPDEX_E_INTERNAL, "GGUF writer: an earlier step failed");
    /* header = magic, version, counts, key/values, then the tensor infos */
    size_t kv_end = w->kv_len;
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        if (put_str(w, t->name) || put_u32(w, (uint32_t)t->ndim)) return CLIPDEX_E_NOMEM;
        for (int d = 0; d < t->ndim; d++)
            if (put_u64(w, t->ne[d])) return CLIPDEX_E_NOMEM;
        if (put_u32(w, (uint32_t)t->type) || put_u64(w, off)) return CLIPDEX_E_NOMEM;
        off = align_up(off + t->nbytes, CDX_GGUF_WRITE_ALIGNMENT);
    }
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return cdx_error(ctx, CLIPDEX_E_ARG, "path '%s' is too long", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return cdx_error(ctx, CLIPDEX_E_IO, "cannot write '%s': %s", tmp, strerror(errno));
    uint8_t head[24] = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
    for (int i = 0; i < 8; i++) head[8 + i] = (uint8_t)((uint64_t)w->n_t >> (8 * i));
    for (int i = 0; i < 8; i++) head[16 + i] = (uint8_t)(w->n_kv >> (8 * i));
    static const uint8_t zeros[CDX_GGUF_WRITE_ALIGNMENT];
    size_t pos = 24 + w->kv_len;
    int ok = fwrite(head, 1, 24, f) == 24 && fwrite(w->kv, 1, w->kv_len, f) == w->kv_len;
    size_t pad = align_up(pos, CDX_GGUF_WRITE_ALIGNMENT) - pos;
    ok = ok && fwrite(zeros, 1, pad, f) == pad;
    for (size_t i = 0; ok && i < w->n_t; i++) {
        const struct wtensor *t = &w->t[i];
        ok = fwrite(t->data, 1, t->nbytes, f) == t->nbytes;
        pad = align_up(t->nbytes, CDX_GGUF_WRITE_ALIGNMENT) - t->nbytes;
        ok = ok && fwrite(zeros, 1, pad, f) == pad; /* ggml's readers expect the last one padded too */
    }
    w->kv_len = kv_end; /* the infos can be laid out again */
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot write '%s': %s", path, strerror(e));
    }
    return CLIPDEX_OK;
}
