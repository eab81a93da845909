/*
 * server.c - the bottom of `clipdex serve`, which the routes of serve_api.c
 * and serve_store.c both stand on and which calls neither: the clock,
 * response helpers (JSON bodies and JSON errors), the pool of single-thread
 * contexts, the --root check for paths, and embedding of texts and of image
 * bytes through the batcher.
 */
#include "serve/serve.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double serve_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- responses ------------------------------------------------------------ */

int resp_json_begin(resp_json *r)
{
    r->buf = NULL;
    r->len = 0;
    r->f = open_memstream(&r->buf, &r->len);
    if (!r->f) return -1;
    json_init(&r->j, r->f);
    return 0;
}

void resp_json_end(resp_json *r, http_response *rs, int status)
{
    fputc('\n', r->f);
    int bad = ferror(r->f);
    fclose(r->f);
    if (bad || !r->buf) {
        free(r->buf);
        resp_error(rs, 500, "out of memory writing the response");
        return;
    }
    http_response_free(rs);
    rs->status = status;
    rs->content_type = "application/json";
    rs->body = (unsigned char *)r->buf;
    rs->len = r->len;
    rs->body_static = 0;
}

void http_response_free(http_response *rs)
{
    if (rs->body_fd > 0) close(rs->body_fd);
    rs->body_fd = 0;
    if (rs->stream_free) rs->stream_free(rs->stream_cls);
    rs->stream_read = NULL, rs->stream_free = NULL, rs->stream_cls = NULL;
    if (!rs->body_static) free(rs->body);
    rs->body = NULL;
    rs->len = 0;
    rs->body_static = 0;
}

static const char resp_nomem[] = "{\"error\":\"out of memory\",\"status\":500}\n";

void resp_error(http_response *rs, int status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    http_response_free(rs);
    rs->status = status;
    rs->content_type = "application/json";
    rs->cache_control = NULL;
    rs->etag[0] = '\0';
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (f) {
        json_out j;
        json_init(&j, f);
        json_obj_begin(&j);
        json_key(&j, "error");
        json_str(&j, msg);
        json_key(&j, "status");
        json_int(&j, status);
        json_obj_end(&j);
        fputc('\n', f);
        fclose(f);
    }
    if (!f || !buf) {
        free(buf);
        rs->status = 500;
        rs->body = (unsigned char *)resp_nomem;
        rs->len = sizeof resp_nomem - 1;
        rs->body_static = 1;
        return;
    }
    rs->body = (unsigned char *)buf;
    rs->len = len;
}

/* ---- contexts -------------------------------------------------------------- */

clipdex_ctx *server_ctx_get(server *srv)
{
    clipdex_ctx *ctx = NULL;
    pthread_mutex_lock(&srv->mu);
    if (srv->n_ctx_free) ctx = srv->ctx_free[--srv->n_ctx_free];
    pthread_mutex_unlock(&srv->mu);
    if (!ctx) {
        clipdex_ctx_params p = clipdex_ctx_params_default();
        p.n_threads = 1;
        if (clipdex_ctx_new(&ctx, &p) != CLIPDEX_OK) return NULL;
    }
    return ctx;
}

void server_ctx_put(server *srv, clipdex_ctx *ctx)
{
    if (!ctx) return;
    pthread_mutex_lock(&srv->mu);
    if (srv->n_ctx_free == srv->cap_ctx_free) {
        size_t cap = srv->cap_ctx_free ? 2 * srv->cap_ctx_free : 16;
        clipdex_ctx **v = realloc(srv->ctx_free, cap * sizeof *v);
        if (!v) {
            pthread_mutex_unlock(&srv->mu);
            clipdex_ctx_free(ctx);
            return;
        }
        srv->ctx_free = v;
        srv->cap_ctx_free = cap;
    }
    srv->ctx_free[srv->n_ctx_free++] = ctx;
    pthread_mutex_unlock(&srv->mu);
}

static const char *ctx_msg(clipdex_ctx *ctx, int st)
{
    const char *m = clipdex_ctx_errmsg(ctx);
    return m && m[0] ? m : clipdex_status_str(st);
}

/* ---- roots ----------------------------------------------------------------- */

/* `path` (NUL-terminated) resolves inside one of the --root folders:
 * returns the malloc'd canonical path, or NULL with e set. */
char *serve_path_in_roots(server *srv, const char *path, http_err *e)
{
    if (srv->n_roots == 0) {
        http_fail(e, 403, "images by path need the server to be started with --root DIR");
        return NULL;
    }
    char *real = realpath(path, NULL);
    if (!real) {
        http_fail(e, 404, "cannot resolve '%s': %s", path, strerror(errno));
        return NULL;
    }
    for (size_t i = 0; i < srv->n_roots; i++) {
        size_t rl = strlen(srv->roots[i]);
        if (strncmp(real, srv->roots[i], rl) == 0 &&
            (real[rl] == '/' || real[rl] == '\0' || (rl == 1 && srv->roots[i][0] == '/')))
            return real;
    }
    free(real);
    http_fail(e, 403, "'%s' is outside the folders given with --root", path);
    return NULL;
}

/* ---- embedding ------------------------------------------------------------- */

/* The error of a request whose deadline passed (batcher_run said BATCH_TIMEOUT). */
static int deadline_fail(server *srv, http_err *e)
{
    return http_fail(e, 503,
                     "the encoders did not finish this request within %ld s (--request-timeout): "
                     "the server is busy, try again later",
                     srv->o.request_timeout_s);
}

int serve_embed_texts(server *srv, const api_text *texts, size_t n, float *out, double deadline,
                      http_err *e)
{
    if (!srv->tok) return http_fail(e, 503, "the model has no tokenizer: text is unavailable");
    size_t cl = (size_t)srv->info.context_length;
    int32_t *ids = malloc(n * cl * sizeof *ids);
    if (!ids) return http_fail(e, 500, "out of memory");
    clipdex_ctx *ctx = server_ctx_get(srv);
    int rc = 0;
    batcher_begin(srv->batch);
    for (size_t i = 0; i < n && !rc; i++) {
        int st = clipdex_text_tokenize(ctx, srv->tok, texts[i].s, texts[i].len, ids + i * cl, cl,
                                       NULL, NULL);
        if (st != CLIPDEX_OK) rc = http_fail(e, 400, "text %zu: %s", i, ctx_msg(ctx, st));
    }
    server_ctx_put(srv, ctx);
    if (rc) {
        batcher_cancel(srv->batch);
        free(ids);
    } else { /* the batcher owns ids from here */
        char err[512];
        int st = batcher_run(srv->batch, BATCH_TEXT, ids, n, out, deadline, err, sizeof err);
        if (st == BATCH_TIMEOUT)
            rc = deadline_fail(srv, e);
        else if (st != CLIPDEX_OK)
            rc = http_fail(e, 500, "text encoder: %s", err);
    }
    return rc;
}

int serve_embed_images(server *srv, api_image *images, size_t n, float *out, double deadline,
                       http_err *e)
{
    size_t S = (size_t)srv->info.image_size, per = 3 * S * S;
    float *pix = malloc(n * per * sizeof *pix);
    if (!pix) return http_fail(e, 500, "out of memory");
    clipdex_ctx *ctx = server_ctx_get(srv);
    clipdex_image_params ip = clipdex_image_params_default();
    ip.max_pixels = (uint64_t)srv->o.max_pixels;
    ip.ignore_exif_orientation = srv->o.no_exif;
    int rc = 0;
    batcher_begin(srv->batch);
    for (size_t i = 0; i < n && !rc; i++) {
        clipdex_image *img = NULL;
        int st = clipdex_image_decode(ctx, images[i].data, images[i].len, &ip, &img);
        if (st == CLIPDEX_OK)
            st = clipdex_image_preprocess(ctx, img, (int)S, srv->info.mean, srv->info.std,
                                          pix + i * per, per);
        clipdex_image_free(img);
        if (st != CLIPDEX_OK)
            rc = http_fail(e, st == CLIPDEX_E_LIMIT ? 413 : st == CLIPDEX_E_NOMEM ? 500 : 400,
                           "image %zu: %s", i, ctx_msg(ctx, st));
    }
    server_ctx_put(srv, ctx);
    if (rc) {
        batcher_cancel(srv->batch);
        free(pix);
    } else { /* the batcher owns pix from here */
        char err[512];
        int st = batcher_run(srv->batch, BATCH_IMAGE, pix, n, out, deadline, err, sizeof err);
        if (st == BATCH_TIMEOUT)
            rc = deadline_fail(srv, e);
        else if (st != CLIPDEX_OK)
            rc = http_fail(e, 500, "image encoder: %s", err);
    }
    return rc;
}
