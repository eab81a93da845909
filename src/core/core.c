/*
 * core.c - status strings, the context lifecycle, error recording and file
 * reading. Invariant: a context's errmsg is always NUL-terminated; public
 * calls clear it on entry so it describes the most recent failure only.
 */
#include "core.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool.h"
#include "core/cpu.h"
#include "tensor/dispatch.h"

const char *clipdex_status_str(int status)
{
    switch (status) {
    case CLIPDEX_OK: return "ok";
    case CLIPDEX_E_ARG: return "invalid argument";
    case CLIPDEX_E_NOMEM: return "out of memory";
    case CLIPDEX_E_IO: return "input/output error";
    case CLIPDEX_E_FORMAT: return "malformed file";
    case CLIPDEX_E_MODEL: return "invalid model";
    case CLIPDEX_E_IMAGE: return "invalid image";
    case CLIPDEX_E_LIMIT: return "limit exceeded";
    case CLIPDEX_E_UNSUPPORTED: return "unsupported";
    case CLIPDEX_E_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

const char *clipdex_version(void) { return CLIPDEX_VERSION; }

clipdex_ctx_params clipdex_ctx_params_default(void)
{
    clipdex_ctx_params p;
    memset(&p, 0, sizeof p);
    return p;
}

int clipdex_ctx_new(clipdex_ctx **out, const clipdex_ctx_params *params)
{
    if (!out) return CLIPDEX_E_ARG;
    *out = NULL;
    clipdex_ctx_params p = params ? *params : clipdex_ctx_params_default();
    if (p.n_threads < 0 || p.n_threads > 1024) return CLIPDEX_E_ARG;
    clipdex_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return CLIPDEX_E_NOMEM;
    int n = p.n_threads;
    if (n == 0) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        n = c > 0 ? (int)(c > 256 ? 256 : c) : 1;
    }
    ctx->n_threads = n;
    ctx->kern = cdx_kernels_from_env();
    if (!ctx->kern) { /* CLIPDEX_ISA names no path */
        free(ctx);
        return CLIPDEX_E_ARG;
    }
    if (n > 1) {
        ctx->pool = cdx_pool_new(n);
        if (!ctx->pool) {
            free(ctx);
            return CLIPDEX_E_NOMEM;
        }
    }
    *out = ctx;
    return CLIPDEX_OK;
}

void clipdex_ctx_free(clipdex_ctx *ctx)
{
    if (!ctx) return;
    cdx_pool_free(ctx->pool);
    free(ctx->scratch);
    free(ctx->qscratch);
    free(ctx);
}

const char *clipdex_ctx_isa(const clipdex_ctx *ctx) { return ctx ? ctx->kern->name : cdx_kernels_best()->name; }
const char *clipdex_ctx_kernels(const clipdex_ctx *ctx)
{
    return ctx ? ctx->kern->describe : cdx_kernels_best()->describe;
}
const char *clipdex_cpu_features(void) { return cdx_cpu_feature_string(); }

const char *clipdex_ctx_errmsg(const clipdex_ctx *ctx) { return ctx ? ctx->errmsg : ""; }
int clipdex_ctx_errcode(const clipdex_ctx *ctx) { return ctx ? ctx->status : CLIPDEX_OK; }
int clipdex_ctx_n_threads(const clipdex_ctx *ctx) { return ctx ? ctx->n_threads : 0; }

int cdx_verror(clipdex_ctx *ctx, int status, const char *fmt, va_list ap)
{
    if (ctx) {
        ctx->status = status;
        vsnprintf(ctx->errmsg, sizeof ctx->errmsg, fmt, ap);
    }
    return status;
}

int cdx_error(clipdex_ctx *ctx, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cdx_verror(ctx, status, fmt, ap);
    va_end(ap);
    return status;
}

void cdx_clear_error(clipdex_ctx *ctx)
{
    if (ctx) {
        ctx->status = CLIPDEX_OK;
        ctx->errmsg[0] = '\0';
    }
}

int cdx_read_file(clipdex_ctx *ctx, const char *path, size_t max_len, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return cdx_error(ctx, CLIPDEX_E_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot read '%s': not a regular file", path);
    }
    if ((uint64_t)st.st_size > (uint64_t)max_len) {
        fclose(f);
        return cdx_error(ctx, CLIPDEX_E_LIMIT, "cannot read '%s': %lld bytes is over the limit of %zu",
                         path, (long long)st.st_size, max_len);
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n + 1);
    if (!buf) {
        fclose(f);
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot read '%s': out of memory", path);
    }
    size_t got = n ? fread(buf, 1, n, f) : 0;
    int err = ferror(f);
    fclose(f);
    if (got != n || err) {
        free(buf);
        return cdx_error(ctx, CLIPDEX_E_IO, "cannot read '%s': short read", path);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return CLIPDEX_OK;
}

int cdx_ctx_reserve(clipdex_ctx *ctx, size_t n_floats)
{
    if (ctx->scratch_cap >= n_floats) return CLIPDEX_OK;
    size_t bytes;
    if (cdx_mul(n_floats, sizeof(float), &bytes) || cdx_add(bytes, 63, &bytes))
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "scratch of %zu floats overflows", n_floats);
    bytes &= ~(size_t)63;
    void *p = NULL;
    if (posix_memalign(&p, 64, bytes) != 0)
        return cdx_error(ctx, CLIPDEX_E_NOMEM, "cannot allocate %zu bytes of scratch", bytes);
    free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_cap = n_floats;
    return CLIPDEX_OK;
}

int cdx_ctx_reserve_q(clipdex_ctx *ctx, size_t n_bytes)
{
    if (ctx->qscratch_cap >= n_bytes) return 0;
    size_t bytes = (n_bytes + 63) / 64 * 64;
    void *p = bytes >= n_bytes ? aligned_alloc(64, bytes) : NULL;
    if (!p) return -1;
    free(ctx->qscratch);
    ctx->qscratch = p;
    ctx->qscratch_cap = bytes;
    return 0;
}
