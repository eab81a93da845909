/*
 * core.h - internal plumbing shared by every part of libclipdex: the context
 * (last error, thread pool, scratch), error reporting, overflow-checked
 * arithmetic and whole-file reading. Internal symbols are prefixed `cdx_`
 * and hidden from the shared library; only `clipdex_*` is exported.
 */
#ifndef CDX_CORE_H
#define CDX_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"

#define CDX_INTERNAL __attribute__((visibility("hidden")))
#define CDX_ERRMSG_MAX 512

struct cdx_pool;
struct cdx_kernels;

struct clipdex_ctx {
    int status;                  /* last error status */
    char errmsg[CDX_ERRMSG_MAX]; /* last error message */
    int n_threads;
    const struct cdx_kernels *kern; /* the kernel table (tensor/dispatch.h), from CLIPDEX_ISA */
    struct cdx_pool *pool;       /* persistent workers (NULL when n_threads == 1) */
    float *scratch;              /* forward-pass scratch; grows, never shrinks */
    size_t scratch_cap;          /* floats */
    void *qscratch;              /* int8 activations of Q8P/Q4P products; grows, never shrinks */
    size_t qscratch_cap;         /* bytes */
};

/* Records an error on ctx (which may be NULL) and returns `status`. The
 * message should say what failed first and quote its subject:
 * "cannot open 'x.safetensors': truncated header". */
CDX_INTERNAL int cdx_error(clipdex_ctx *ctx, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
CDX_INTERNAL int cdx_verror(clipdex_ctx *ctx, int status, const char *fmt, va_list ap);
/* Clears the last error (called at the start of public calls). */
CDX_INTERNAL void cdx_clear_error(clipdex_ctx *ctx);

/* Overflow-checked size arithmetic: return 0 on success, 1 on overflow. */
static inline int cdx_mul(size_t a, size_t b, size_t *out) { return __builtin_mul_overflow(a, b, out); }
static inline int cdx_add(size_t a, size_t b, size_t *out) { return __builtin_add_overflow(a, b, out); }

/* Reads a whole file into a malloc'd buffer with a trailing NUL (not counted
 * in *len). Refuses files larger than max_len with CLIPDEX_E_LIMIT. */
CDX_INTERNAL int cdx_read_file(clipdex_ctx *ctx, const char *path, size_t max_len, char **out,
                               size_t *len);

/* Ensures ctx->qscratch holds at least n bytes (64-byte aligned); 0 or -1. */
CDX_INTERNAL int cdx_ctx_reserve_q(clipdex_ctx *ctx, size_t n_bytes);
/* Ensures the context scratch holds at least n floats (64-byte aligned). */
CDX_INTERNAL int cdx_ctx_reserve(clipdex_ctx *ctx, size_t n_floats);

#endif
