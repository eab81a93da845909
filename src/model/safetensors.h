/*
 * safetensors.h - a bounds-checked reader for the safetensors format:
 * 8-byte little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {...}}, then the data. Offsets are relative to the data
 * section. The file is mmapped read-only; tensors point into the mapping.
 * Invariant after a successful open: every tensor's [offset, offset+nbytes)
 * lies inside the data section and nbytes == product(shape) * dtype size
 * (for the dtypes we know); tensor names are unique.
 */
#ifndef CDX_SAFETENSORS_H
#define CDX_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define CDX_ST_MAX_HEADER (100u * 1024u * 1024u) /* the format's own limit */
#define CDX_ST_MAX_DIMS 8
#define CDX_ST_MAX_TENSORS 1000000u

enum cdx_dtype { CDX_F32 = 1, CDX_F16, CDX_BF16, CDX_F64, CDX_I64, CDX_I32, CDX_I16, CDX_I8,
                 CDX_U8, CDX_BOOL, CDX_OTHER };

struct cdx_st_tensor {
    char *name;
    int dtype;                      /* enum cdx_dtype */
    int ndim;
    int64_t shape[CDX_ST_MAX_DIMS];
    uint64_t numel;
    size_t offset;                  /* into the data section */
    size_t nbytes;
};

struct cdx_st_file {
    char *path;
    void *map;                      /* whole-file mapping (NULL when parsed from memory) */
    size_t map_len;
    const uint8_t *data;            /* data section */
    size_t data_len;
    struct cdx_st_tensor *tensors;
    size_t n_tensors;
};

/* Maps and parses `path`. On failure *f is left empty (safe to close). */
CDX_INTERNAL int cdx_st_open(clipdex_ctx *ctx, const char *path, struct cdx_st_file *f);
/* Parses a safetensors image already in memory (used by open and the fuzzer).
 * `label` names the source in messages. `buf` must outlive f. */
CDX_INTERNAL int cdx_st_parse(clipdex_ctx *ctx, const uint8_t *buf, size_t len, const char *label,
                              struct cdx_st_file *f);
CDX_INTERNAL const struct cdx_st_tensor *cdx_st_find(const struct cdx_st_file *f, const char *name);
CDX_INTERNAL void cdx_st_close(struct cdx_st_file *f);
CDX_INTERNAL const char *cdx_dtype_name(int dtype);
CDX_INTERNAL size_t cdx_dtype_size(int dtype); /* 0 for unknown */
/* "[a,b,c]" into buf. */
CDX_INTERNAL const char *cdx_shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

#endif
