/*
 * gguf.h - a bounds-checked reader and a writer for GGUF (versions 2 and 3),
 * ggml's single-file container: "GGUF", u32 version, u64 tensor count, u64
 * key/value count, the key/values (u64-length strings, u32 value type, the
 * value), the tensor infos (name, u32 n_dims, u64 ne[n_dims] innermost first,
 * u32 ggml type, u64 offset into the data section), padding to
 * general.alignment (default 32), the data section. Little-endian only.
 *
 * Invariants after a successful open: every key/value and tensor info lies
 * inside the file; tensor types are ones clipdex computes with (enum
 * cdx_wtype); ne[0] is a multiple of the type's block; every tensor's
 * [offset, offset + nbytes) lies inside the data section and is aligned;
 * tensor names and keys are unique. The file is mmapped read-only and the
 * tensors point into the mapping.
 */
#ifndef CDX_GGUF_H
#define CDX_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define CDX_GGUF_MAX_DIMS 4
#define CDX_GGUF_MAX_TENSORS 65536u
#define CDX_GGUF_MAX_KV 65536u
#define CDX_GGUF_MAX_NAME 256u         /* tensor names and keys, bytes */
#define CDX_GGUF_MAX_ARRAY (1u << 24)  /* elements of one array value */
#define CDX_GGUF_DEFAULT_ALIGNMENT 32u
#define CDX_GGUF_WRITE_ALIGNMENT 64u   /* files we write: packed panels on cache lines */

/* GGUF value types */
enum cdx_gguf_vtype {
    CDX_GGUF_U8 = 0, CDX_GGUF_I8, CDX_GGUF_U16, CDX_GGUF_I16, CDX_GGUF_U32, CDX_GGUF_I32,
    CDX_GGUF_F32, CDX_GGUF_BOOL, CDX_GGUF_STRING, CDX_GGUF_ARRAY, CDX_GGUF_U64, CDX_GGUF_I64,
    CDX_GGUF_F64
};

struct cdx_gguf_kv {
    char *key;
    int type;            /* enum cdx_gguf_vtype */
    int arr_type;        /* element type when type is ARRAY */
    uint64_t n;          /* elements when type is ARRAY; bytes when STRING */
    const uint8_t *val;  /* the value's bytes in the mapping (after the array header / string length) */
};

struct cdx_gguf_tensor {
    char *name;
    int type;                           /* enum cdx_wtype (= ggml type) */
    int ndim;
    uint64_t ne[CDX_GGUF_MAX_DIMS];     /* ne[0] innermost (PyTorch shape reversed) */
    uint64_t numel;
    size_t offset;                      /* into the data section */
    size_t nbytes;
};

struct cdx_gguf_file {
    char *path;
    void *map;
    size_t map_len;
    uint32_t version, alignment;
    const uint8_t *data;                /* data section */
    size_t data_len;
    struct cdx_gguf_kv *kv;
    size_t n_kv;
    struct cdx_gguf_tensor *tensors;
    size_t n_tensors;
};

/* 1 if the bytes start with the GGUF magic. */
CDX_INTERNAL int cdx_gguf_sniff(const void *buf, size_t len);
/* Maps and parses `path`. On failure *f is left empty (safe to close). */
CDX_INTERNAL int cdx_gguf_open(clipdex_ctx *ctx, const char *path, struct cdx_gguf_file *f);
/* Parses a GGUF image in memory (`buf` must outlive f); `label` names it in messages. */
CDX_INTERNAL int cdx_gguf_parse(clipdex_ctx *ctx, const uint8_t *buf, size_t len, const char *label,
                                struct cdx_gguf_file *f);
CDX_INTERNAL void cdx_gguf_close(struct cdx_gguf_file *f);
CDX_INTERNAL const struct cdx_gguf_tensor *cdx_gguf_find(const struct cdx_gguf_file *f, const char *name);
CDX_INTERNAL const struct cdx_gguf_kv *cdx_gguf_get(const struct cdx_gguf_file *f, const char *key);

/* Typed getters: 1 and *out set if `key` exists with a compatible type (any
 * integer type in range for u32; F32 or F64 for f32), 0 if absent, -1 if
 * present with another type. */
CDX_INTERNAL int cdx_gguf_get_u32(const struct cdx_gguf_file *f, const char *key, uint32_t *out);
CDX_INTERNAL int cdx_gguf_get_f32(const struct cdx_gguf_file *f, const char *key, float *out);
CDX_INTERNAL int cdx_gguf_get_bool(const struct cdx_gguf_file *f, const char *key, int *out);
/* String value: pointer into the mapping (not NUL-terminated) and length. */
CDX_INTERNAL int cdx_gguf_get_str(const struct cdx_gguf_file *f, const char *key, const char **s,
                                  size_t *len);
/* An array of strings: *out (malloc'd, cdx_gguf_strs_free) holds *n
 * NUL-terminated copies. 1, 0 if absent, -1 if another type, a string holds a
 * NUL byte, or out of memory. */
CDX_INTERNAL int cdx_gguf_get_strs(const struct cdx_gguf_file *f, const char *key, char ***out, size_t *n);
CDX_INTERNAL void cdx_gguf_strs_free(char **v, size_t n);
/* An array of exactly n F32 (or F64) numbers. */
CDX_INTERNAL int cdx_gguf_get_f32s(const struct cdx_gguf_file *f, const char *key, float *out, size_t n);

/* ------------------------------------------------------------- writing */

struct cdx_gguf_writer;

CDX_INTERNAL int cdx_gguf_writer_new(clipdex_ctx *ctx, struct cdx_gguf_writer **out);
CDX_INTERNAL void cdx_gguf_writer_free(struct cdx_gguf_writer *w);
CDX_INTERNAL int cdx_gguf_add_u32(struct cdx_gguf_writer *w, const char *key, uint32_t v);
CDX_INTERNAL int cdx_gguf_add_f32(struct cdx_gguf_writer *w, const char *key, float v);
CDX_INTERNAL int cdx_gguf_add_bool(struct cdx_gguf_writer *w, const char *key, int v);
CDX_INTERNAL int cdx_gguf_add_str(struct cdx_gguf_writer *w, const char *key, const char *v);
CDX_INTERNAL int cdx_gguf_add_f32s(struct cdx_gguf_writer *w, const char *key, const float *v, size_t n);
CDX_INTERNAL int cdx_gguf_add_strs(struct cdx_gguf_writer *w, const char *key, char *const *v, size_t n);
/* Adds a tensor (ne innermost first). `data` (nbytes) must stay valid until
 * cdx_gguf_write; if `owned`, the writer frees it. */
CDX_INTERNAL int cdx_gguf_add_tensor(struct cdx_gguf_writer *w, const char *name, int type, int ndim,
                                     const uint64_t *ne, const void *data, size_t nbytes, int owned);
/* Writes the file (GGUF v3, 64-byte alignment: add general.alignment = 64) to path + ".tmp", then renames it. */
CDX_INTERNAL int cdx_gguf_write(struct cdx_gguf_writer *w, const char *path);

#endif
