/*
 * safetensors.c - parse and map safetensors files. Every number read from the
 * file is validated before use: header length against the file size and the
 * 100 MB format limit, dtypes, shapes (non-negative, overflow-checked
 * products), and data offsets against the data section. Hostile files give
 * CLIPDEX_E_FORMAT with a message naming the file and the tensor.
 */
#include "model/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct {
    const char *name;
    int dtype;
    size_t size;
} dtypes[] = {
    {"F32", CDX_F32, 4}, {"F16", CDX_F16, 2}, {"BF16", CDX_BF16, 2}, {"F64", CDX_F64, 8},
    {"I64", CDX_I64, 8}, {"I32", CDX_I32, 4}, {"I16", CDX_I16, 2},   {"I8", CDX_I8, 1},
    {"U8", CDX_U8, 1},   {"BOOL", CDX_BOOL, 1},
};

const char *cdx_dtype_name(int dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype) return dtypes[i].name;
    return "other";
}

size_t cdx_dtype_size(int dtype)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (dtypes[i].dtype == dtype) return dtypes[i].size;
    return 0;
}

const char *cdx_shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
    size_t o = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    o += (size_t)snprintf(buf + o, len - o, "[");
    for (int i = 0; i < ndim && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)shape[i]);
    if (o < len) snprintf(buf + o, len - o, "]");
    return buf;
}

void cdx_st_close(struct cdx_st_file *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->n_tensors; i++) free(f->tensors[i].name);
    free(f->tensors);
    if (f->map) munmap(f->map, f->map_len);
    free(f->path);
    memset(f, 0, sizeof *f);
}

static int parse_dtype(const char *s)
{
    for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(s, dtypes[i].name) == 0) return dtypes[i].dtype;
    return CDX_OTHER;
}

static int get_u64(json_t *v, uint64_t *out)
{
    if (!json_is_integer(v)) return 0;
    json_int_t x = json_integer_value(v);
    if (x < 0) return 0;
    *out = (uint64_t)x;
    return 1;
}

int cdx_st_parse(clipdex_ctx *ctx, const uint8_t *buf, size_t len, const char *label,
                 struct cdx_st_file *f)
{
    if (len < 8)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': %zu bytes is too short for a safetensors file",
                         label, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | buf[i];
    if (hlen > CDX_ST_MAX_HEADER)
        return cdx_error(ctx, CLIPDEX_E_FORMAT,
                         "cannot read '%s': header length %llu is over the 100 MB limit (not a safetensors file?)",
                         label, (unsigned long long)hlen);
    if (hlen > len - 8)
        return cdx_error(ctx, CLIPDEX_E_FORMAT,
                         "cannot read '%s': truncated: header of %llu bytes but the file has %zu",
                         label, (unsigned long long)hlen, len);
    if (hlen < 2 || buf[8] != '{')
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': header is not a JSON object", label);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)buf + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': bad JSON header: %s (offset %d)",
                         label, jerr.text, jerr.position);
    int st = CLIPDEX_OK;
    if (!json_is_object(root)) {
        st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': header is not a JSON object", label);
        goto out;
    }
    size_t n = json_object_size(root);
    if (n > CDX_ST_MAX_TENSORS) {
        st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': %zu tensors is too many", label, n);
        goto out;
    }
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    if (!f->tensors) {
        st = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", label);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) continue;
        struct cdx_st_tensor *t = &f->tensors[f->n_tensors];
        json_t *jd = json_object_get(val, "dtype");
        json_t *js = json_object_get(val, "shape");
        json_t *jo = json_object_get(val, "data_offsets");
        if (!json_is_object(val) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
            json_array_size(jo) != 2) {
            st = cdx_error(ctx, CLIPDEX_E_FORMAT,
                           "cannot read '%s': tensor '%s' lacks dtype, shape or data_offsets", label, key);
            goto out;
        }
        t->name = strdup(key);
        if (!t->name) {
            st = cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", label);
            goto out;
        }
        f->n_tensors++;
        t->dtype = parse_dtype(json_string_value(jd));
        size_t nd = json_array_size(js);
        if (nd > CDX_ST_MAX_DIMS) {
            st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': tensor '%s' has %zu dimensions",
                           label, key, nd);
            goto out;
        }
        t->ndim = (int)nd;
        uint64_t numel = 1;
        for (size_t i = 0; i < nd; i++) {
            uint64_t d;
            if (!get_u64(json_array_get(js, i), &d) || d > (1ull << 40)) {
                st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': tensor '%s' has a bad shape",
                               label, key);
                goto out;
            }
            t->shape[i] = (int64_t)d;
            if (__builtin_mul_overflow(numel, d, &numel)) {
                st = cdx_error(ctx, CLIPDEX_E_FORMAT, "cannot read '%s': tensor '%s' shape overflows",
                               label, key);
                goto out;
            }
        }
        t->numel = numel;
        uint64_t b, e;
        if (!get_u64(json_array_get(jo, 0), &b) || !get_u64(json_array_get(jo, 1), &e) || b > e ||
            e > f->data_len) {
            st = cdx_error(ctx, CLIPDEX_E_FORMAT,
                           "cannot read '%s': tensor '%s' data_offsets lie outside the %zu-byte data section (truncated file?)",
                           label, key, f->data_len);
            goto out;
        }
        t->offset = (size_t)b;
        t->nbytes = (size_t)(e - b);
        size_t es = cdx_dtype_size(t->dtype);
        uint64_t want;
        if (es && (__builtin_mul_overflow(numel, (uint64_t)es, &want) || want != t->nbytes)) {
            st = cdx_error(ctx, CLIPDEX_E_FORMAT,
                           "cannot read '%s': tensor '%s' holds %zu bytes but its shape and dtype need %llu",
                           label, key, t->nbytes, (unsigned long long)want);
            goto out;
        }
    }
out:
    json_decref(root);
    return st;
}

int cdx_st_open(clipdex_ctx *ctx, const char *path, struct cdx_st_file *f)
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
    if (len < 8) {
        close(fd);
        return cdx_error(ctx, CLIPDEX_E_FORMAT,
                         "cannot read '%s': %zu bytes is too short for a safetensors file", path, len);
    }
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return cdx_error(ctx, CLIPDEX_E_IO, "cannot map '%s': %s", path, strerror(errno));
    f->map = map;
    f->map_len = len;
    f->path = strdup(path);
    int rc = f->path ? cdx_st_parse(ctx, map, len, path, f)
                     : cdx_error(ctx, CLIPDEX_E_NOMEM, "out of memory");
    if (rc != CLIPDEX_OK) cdx_st_close(f);
    return rc;
}

const struct cdx_st_tensor *cdx_st_find(const struct cdx_st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}
