/*
 * serve_api.c - the transport-free half of `clipdex serve`: start-up (model,
 * batcher, random-weights probe, roots), the route table, and the encoder
 * routes /v1/embed/text, /v1/embed/image, /v1/compare, /v1/health,
 * /v1/info and the packed web page. Every error is a JSON object
 * {"error": MESSAGE, "status": CODE} with that HTTP status.
 */
#include "serve/serve.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"

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

static void resp_err(http_response *rs, const http_err *e)
{
    resp_error(rs, e->status ? e->status : 500, "%s", e->msg);
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

/* Reads a whole regular file of at most max bytes. */
static int read_small_file(const char *path, size_t max, unsigned char **out, size_t *len,
                           http_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f) return http_fail(e, 404, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return http_fail(e, 400, "'%s' is not a regular file", path);
    }
    if ((uint64_t)st.st_size > max) {
        fclose(f);
        return http_fail(e, 413, "'%s' is larger than %zu bytes", path, max);
    }
    unsigned char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return http_fail(e, 500, "out of memory");
    }
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (n != (size_t)st.st_size) {
        free(buf);
        return http_fail(e, 500, "cannot read '%s'", path);
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Turns path and ID images into bytes. */
static int images_load(server *srv, api_image *images, size_t n, http_err *e)
{
    for (size_t i = 0; i < n; i++) {
        api_image *im = &images[i];
        if (im->kind == API_IMAGE_PATH) {
            char *real = serve_path_in_roots(srv, im->path, e);
            if (!real) return -1;
            int r = read_small_file(real, (size_t)srv->o.max_body, &im->data, &im->len, e);
            free(real);
            if (r) return -1;
            im->kind = API_IMAGE_BYTES;
        } else if (im->kind == API_IMAGE_ID) {
            char *p = NULL;
            if (serve_index_read(srv, im->id, &im->data, &im->len, &p, e)) return -1;
            free(p);
            im->kind = API_IMAGE_BYTES;
        }
    }
    return 0;
}

int serve_embed_images(server *srv, api_image *images, size_t n, float *out, double deadline,
                       http_err *e)
{
    if (images_load(srv, images, n, e)) return -1;
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

/* ---- routes ---------------------------------------------------------------- */

static void write_embeddings(json_out *j, const float *emb, size_t n, size_t dim)
{
    json_key(j, "embeddings");
    json_arr_begin(j);
    for (size_t i = 0; i < n; i++) json_floats(j, emb + i * dim, dim);
    json_arr_end(j);
}

static void route_embed_text(server *srv, const http_request *rq, http_response *rs)
{
    http_err e = {0, ""};
    double t0 = serve_now();
    struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, &e);
    api_text texts[HTTP_MAX_TEXTS];
    long n = root ? api_parse_texts(root, texts, &e) : -1;
    size_t dim = (size_t)srv->info.embed_dim;
    float *emb = n > 0 ? malloc((size_t)n * dim * sizeof *emb) : NULL;
    if (n > 0 && !emb) http_fail(&e, 500, "out of memory");
    if (emb && serve_embed_texts(srv, texts, (size_t)n, emb, rq->deadline, &e) == 0) {
        resp_json r;
        if (resp_json_begin(&r) == 0) {
            json_obj_begin(&r.j);
            json_key(&r.j, "dim");
            json_int(&r.j, (long long)dim);
            write_embeddings(&r.j, emb, (size_t)n, dim);
            json_key(&r.j, "time");
            json_num(&r.j, serve_now() - t0);
            json_obj_end(&r.j);
            resp_json_end(&r, rs, 200);
        } else {
            resp_error(rs, 500, "out of memory");
        }
    } else {
        resp_err(rs, &e);
    }
    free(emb);
    api_json_free(root);
}

/* The images of an /v1/embed/image body by Content-Type: JSON, multipart or
 * raw bytes. Returns the count or -1 (e set); data is copied. */
static long request_images(server *srv, const http_request *rq, api_image *images, http_err *e)
{
    char mt[64];
    http_media_type(rq->content_type, mt, sizeof mt);
    if (strcmp(mt, "application/json") == 0) {
        struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, e);
        if (!root) return -1;
        long n = api_parse_images(root, images, e);
        /* paths point into the document: load them before it goes */
        if (n > 0 && images_load(srv, images, (size_t)n, e)) {
            api_images_free(images, (size_t)n);
            n = -1;
        }
        api_json_free(root);
        return n;
    }
    if (strcmp(mt, "multipart/form-data") == 0) {
        http_part parts[HTTP_MAX_IMAGES];
        long np = http_multipart_parse(rq->content_type, rq->body, rq->body_len, parts,
                                       HTTP_MAX_IMAGES, e);
        if (np < 0) return -1;
        long n = 0;
        for (long i = 0; i < np; i++) {
            if (parts[i].len == 0) continue;
            images[n].kind = API_IMAGE_BYTES;
            images[n].data = malloc(parts[i].len);
            if (!images[n].data) {
                api_images_free(images, (size_t)n);
                return http_fail(e, 500, "out of memory");
            }
            memcpy(images[n].data, parts[i].data, parts[i].len);
            images[n].len = parts[i].len;
            n++;
        }
        if (n == 0) return http_fail(e, 400, "the multipart body holds no file");
        return n;
    }
    if (rq->body_len == 0) return http_fail(e, 400, "empty body: send image bytes, multipart or JSON");
    memset(&images[0], 0, sizeof images[0]);
    images[0].kind = API_IMAGE_BYTES;
    images[0].data = malloc(rq->body_len);
    if (!images[0].data) return http_fail(e, 500, "out of memory");
    memcpy(images[0].data, rq->body, rq->body_len);
    images[0].len = rq->body_len;
    return 1;
}

static void route_embed_image(server *srv, const http_request *rq, http_response *rs)
{
    http_err e = {0, ""};
    double t0 = serve_now();
    api_image images[HTTP_MAX_IMAGES];
    memset(images, 0, sizeof images);
    long n = request_images(srv, rq, images, &e);
    size_t dim = (size_t)srv->info.embed_dim;
    float *emb = n > 0 ? malloc((size_t)n * dim * sizeof *emb) : NULL;
    if (n > 0 && !emb) http_fail(&e, 500, "out of memory");
    if (emb && serve_embed_images(srv, images, (size_t)n, emb, rq->deadline, &e) == 0) {
        resp_json r;
        if (resp_json_begin(&r) == 0) {
            json_obj_begin(&r.j);
            json_key(&r.j, "dim");
            json_int(&r.j, (long long)dim);
            write_embeddings(&r.j, emb, (size_t)n, dim);
            json_key(&r.j, "time");
            json_num(&r.j, serve_now() - t0);
            json_obj_end(&r.j);
            resp_json_end(&r, rs, 200);
        } else {
            resp_error(rs, 500, "out of memory");
        }
    } else {
        resp_err(rs, &e);
    }
    if (n > 0) api_images_free(images, (size_t)n);
    free(emb);
}

/* Cosine in double precision (the vectors are normalized, but be exact). */
static double cosine_f64(const float *a, const float *b, size_t n)
{
    double ab = 0.0, aa = 0.0, bb = 0.0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0.0 && bb > 0.0 ? ab / sqrt(aa * bb) : 0.0;
}

static void route_compare(server *srv, const http_request *rq, http_response *rs)
{
    http_err e = {0, ""};
    double t0 = serve_now();
    api_compare c;
    memset(&c, 0, sizeof c);
    struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, &e);
    size_t dim = (size_t)srv->info.embed_dim;
    float *emb = NULL;
    double *sc = NULL;
    if (!root || api_parse_compare(root, &c, &e)) goto fail;
    size_t n = c.n_prompts;
    emb = malloc((n + 1) * dim * sizeof *emb);
    sc = malloc(3 * n * sizeof *sc);
    if (!emb || !sc) {
        http_fail(&e, 500, "out of memory");
        goto fail;
    }
    double dl = rq->deadline;
    int r = c.subject_is_image ? serve_embed_images(srv, &c.subject_image, 1, emb, dl, &e)
                               : serve_embed_texts(srv, &c.subject_text, 1, emb, dl, &e);
    if (r) goto fail;
    r = c.prompt_is_image ? serve_embed_images(srv, c.prompt_image, n, emb + dim, dl, &e)
                          : serve_embed_texts(srv, c.prompt_text, n, emb + dim, dl, &e);
    if (r) goto fail;
    double *cosv = sc, *logit = sc + n, *prob = sc + 2 * n, max = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < n; i++) {
        cosv[i] = cosine_f64(emb, emb + (i + 1) * dim, dim);
        logit[i] = (double)srv->info.logit_scale * cosv[i];
        if (logit[i] > max) max = logit[i];
    }
    for (size_t i = 0; i < n; i++) sum += (prob[i] = exp(logit[i] - max));
    for (size_t i = 0; i < n; i++) prob[i] /= sum;
    resp_json o;
    if (resp_json_begin(&o)) {
        http_fail(&e, 500, "out of memory");
        goto fail;
    }
    json_obj_begin(&o.j);
    json_key(&o.j, "similarity");
    json_arr_begin(&o.j);
    for (size_t i = 0; i < n; i++) json_num(&o.j, cosv[i]);
    json_arr_end(&o.j);
    json_key(&o.j, "logit_scale");
    json_num(&o.j, srv->info.logit_scale);
    json_key(&o.j, "results");
    json_arr_begin(&o.j);
    for (size_t i = 0; i < n; i++) {
        json_obj_begin(&o.j);
        json_key(&o.j, "prompt");
        if (c.prompt_is_image)
            json_uint(&o.j, i);
        else
            json_strn(&o.j, c.prompt_text[i].s, c.prompt_text[i].len);
        json_key(&o.j, "cosine");
        json_num(&o.j, cosv[i]);
        json_key(&o.j, "logit");
        json_num(&o.j, logit[i]);
        json_key(&o.j, "probability");
        json_num(&o.j, prob[i]);
        json_obj_end(&o.j);
    }
    json_arr_end(&o.j);
    json_key(&o.j, "time");
    json_num(&o.j, serve_now() - t0);
    json_obj_end(&o.j);
    resp_json_end(&o, rs, 200);
    goto done;
fail:
    resp_err(rs, &e);
done:
    api_compare_free(&c);
    free(emb);
    free(sc);
    api_json_free(root);
}

static void route_health(server *srv, http_response *rs)
{
    resp_json r;
    if (resp_json_begin(&r)) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    json_obj_begin(&r.j);
    json_key(&r.j, "status");
    json_str(&r.j, "ok");
    json_obj_end(&r.j);
    resp_json_end(&r, rs, 200);
}

static void route_info(server *srv, http_response *rs)
{
    resp_json r;
    if (resp_json_begin(&r)) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    batcher_stats bs;
    batcher_get_stats(srv->batch, &bs);
    pthread_mutex_lock(&srv->mu);
    uint64_t reqs = srv->requests, errs = srv->errors;
    pthread_mutex_unlock(&srv->mu);
    json_out *j = &r.j;
    json_obj_begin(j);
    json_key(j, "version");
    json_str(j, clipdex_version());
    json_key(j, "model");
    json_str(j, srv->model_name);
    json_key(j, "layout");
    json_str(j, srv->info.layout);
    json_key(j, "dtype");
    json_str(j, srv->info.dtype);
    json_key(j, "embed_dim");
    json_int(j, srv->info.embed_dim);
    json_key(j, "image_size");
    json_int(j, srv->info.image_size);
    json_key(j, "context_length");
    json_int(j, srv->info.context_length);
    json_key(j, "parameters");
    json_uint(j, srv->info.n_params);
    json_key(j, "logit_scale");
    json_num(j, srv->info.logit_scale);
    json_key(j, "has_tokenizer");
    json_bool(j, srv->tok != NULL);
    json_key(j, "random_weights");
    json_bool(j, srv->random_weights);
    json_key(j, "weights_probe");
    json_obj_begin(j);
    json_key(j, "passed");
    json_int(j, srv->probe_score);
    json_key(j, "total");
    json_int(j, srv->probe_total);
    json_obj_end(j);
    serve_index_info(srv, j);
    json_key(j, "uptime_s");
    json_num(j, serve_now() - srv->started);
    json_key(j, "requests");
    json_uint(j, reqs);
    json_key(j, "errors");
    json_uint(j, errs);
    json_key(j, "batching");
    json_obj_begin(j);
    json_key(j, "encoder_calls");
    json_uint(j, bs.calls);
    json_key(j, "inputs");
    json_uint(j, bs.items);
    json_key(j, "requests");
    json_uint(j, bs.jobs);
    json_key(j, "largest_batch");
    json_uint(j, bs.max_batch);
    json_key(j, "timeouts");
    json_uint(j, bs.timeouts);
    json_key(j, "max_batch");
    json_int(j, srv->o.batch);
    json_key(j, "wait_us");
    json_int(j, srv->o.batch_wait_us);
    json_obj_end(j);
    json_key(j, "limits");
    json_obj_begin(j);
    json_key(j, "max_body_bytes");
    json_int(j, srv->o.max_body);
    json_key(j, "max_image_pixels");
    json_int(j, srv->o.max_pixels);
    json_key(j, "max_texts");
    json_int(j, HTTP_MAX_TEXTS);
    json_key(j, "max_text_bytes");
    json_int(j, HTTP_MAX_TEXT_BYTES);
    json_key(j, "max_images");
    json_int(j, HTTP_MAX_IMAGES);
    json_key(j, "max_k");
    json_int(j, HTTP_MAX_K);
    json_key(j, "max_connections");
    json_int(j, srv->o.max_conn);
    json_key(j, "timeout_s");
    json_int(j, srv->o.timeout_s);
    json_key(j, "request_timeout_s");
    json_int(j, srv->o.request_timeout_s);
    json_obj_end(j);
    json_key(j, "auth");
    json_bool(j, srv->o.token != NULL);
    json_obj_end(j);
    resp_json_end(&r, rs, 200);
}

static int route_asset(const http_request *rq, http_response *rs)
{
    const char *path = rq->url;
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (size_t i = 0; i < web_assets_count; i++) {
        const web_asset *a = &web_assets[i];
        if (strcmp(a->path, path) != 0) continue;
        http_response_free(rs);
        rs->status = 200;
        rs->content_type = a->content_type;
        snprintf(rs->etag, sizeof rs->etag, "\"%s\"", a->etag);
        rs->cache_control = "no-cache";
        if (rq->if_none_match && strcmp(rq->if_none_match, rs->etag) == 0) {
            rs->status = 304;
            return 1;
        }
        rs->body = (unsigned char *)a->data;
        rs->len = a->len;
        rs->body_static = 1;
        return 1;
    }
    return 0;
}

static int is(const http_request *rq, const char *method, const char *url)
{
    return strcmp(rq->url, url) == 0 && strcmp(rq->method, method) == 0;
}

static void method_not_allowed(http_response *rs, const http_request *rq, const char *allowed)
{
    resp_error(rs, 405, "%s is not allowed on %s (use %s)", rq->method, rq->url, allowed);
}

void serve_handle(server *srv, const http_request *rq, http_response *rs)
{
    memset(rs, 0, sizeof *rs);
    const char *u = rq->url;
    int is_get = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;
    int64_t id;
    pthread_mutex_lock(&srv->mu);
    srv->requests++;
    pthread_mutex_unlock(&srv->mu);
    if (strcmp(u, "/v1/health") == 0) {
        if (is_get)
            route_health(srv, rs);
        else
            method_not_allowed(rs, rq, "GET");
        goto out;
    }
    if (strncmp(u, "/v1/", 4) != 0) {
        if (is_get && route_asset(rq, rs)) goto out;
        resp_error(rs, 404, "no such page: %s", u);
        goto out;
    }
    if (srv->o.token && !http_bearer_ok(rq->authorization, srv->o.token)) {
        resp_error(rs, 401, "missing or wrong bearer token (send 'Authorization: Bearer TOKEN')");
        goto out;
    }
    if (strcmp(u, "/v1/embed/text") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            route_embed_text(srv, rq, rs);
        else
            method_not_allowed(rs, rq, "POST");
    } else if (strcmp(u, "/v1/embed/image") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            route_embed_image(srv, rq, rs);
        else
            method_not_allowed(rs, rq, "POST");
    } else if (strcmp(u, "/v1/compare") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            route_compare(srv, rq, rs);
        else
            method_not_allowed(rs, rq, "POST");
    } else if (strcmp(u, "/v1/info") == 0) {
        if (is_get)
            route_info(srv, rs);
        else
            method_not_allowed(rs, rq, "GET");
    } else if (strcmp(u, "/v1/search") == 0) {
        if (strcmp(rq->method, "POST") == 0)
            serve_route_search(srv, rq, rs);
        else
            method_not_allowed(rs, rq, "POST");
    } else if (strcmp(u, "/v1/index") == 0) {
        if (is(rq, "POST", u) || is_get)
            serve_route_index(srv, rq, rs);
        else
            method_not_allowed(rs, rq, "GET or POST");
    } else if (strncmp(u, "/v1/thumb/", 10) == 0 || strncmp(u, "/v1/image/", 10) == 0) {
        int thumb = u[4] == 't';
        if (!is_get)
            method_not_allowed(rs, rq, "GET");
        else if (http_parse_id(u, thumb ? "/v1/thumb/" : "/v1/image/", &id) != 1)
            resp_error(rs, 404, "'%s' is not a valid image ID (a positive integer)", u + 10);
        else
            serve_route_file(srv, rq, rs, thumb);
    } else {
        resp_error(rs, 404, "no such route: %s", u);
    }
out:
    if (rs->status >= 400) {
        pthread_mutex_lock(&srv->mu);
        srv->errors++;
        pthread_mutex_unlock(&srv->mu);
    }
}

/* ---- start-up ------------------------------------------------------------- */

/* Trained CLIP text towers put a word nearer its synonym than an unrelated
 * word; random weights get each pair right by chance (1/2). The probe counts
 * the triplets ordered right: all of them for a trained model, about half for
 * random weights. */
static const char *const probe_words[][3] = {
    {"a photo of a dog", "a photo of a puppy", "a photo of a spreadsheet"},
    {"a photo of a car", "a photo of an automobile", "a photo of a banana"},
    {"a photo of the ocean", "a photo of the sea", "a photo of a keyboard"},
    {"a photo of a cat", "a photo of a kitten", "a photo of a bridge"},
    {"a photo of a forest", "a photo of trees", "a photo of a telephone"},
    {"a photo of a boat", "a photo of a ship", "a photo of a sandwich"},
    {"a photo of a child", "a photo of a kid", "a photo of a tractor"},
    {"a photo of a road", "a photo of a street", "a photo of a violin"},
};

static void probe_weights(server *srv, clipdex_ctx *ctx)
{
    size_t nt = sizeof probe_words / sizeof probe_words[0], dim = (size_t)srv->info.embed_dim;
    srv->probe_total = (int)nt;
    srv->probe_score = 0;
    srv->random_weights = 0;
    if (!srv->tok) return;
    float *e = malloc(3 * dim * sizeof *e);
    if (!e) return;
    for (size_t i = 0; i < nt; i++) {
        if (clipdex_text_embed(ctx, srv->model, probe_words[i], 3, e, 3 * dim, 0) != CLIPDEX_OK)
            break;
        if (clipdex_cosine(e, e + dim, dim) > clipdex_cosine(e, e + 2 * dim, dim))
            srv->probe_score++;
    }
    free(e);
    srv->random_weights = srv->probe_score < srv->probe_total - 1;
}

int server_init(server *srv, const serve_opts *o)
{
    memset(srv, 0, sizeof *srv);
    srv->o = *o;
    pthread_mutex_init(&srv->mu, NULL);
    srv->started = serve_now();
    /* the model directory's base name, trailing slashes ignored */
    size_t end = strlen(o->model);
    while (end > 1 && o->model[end - 1] == '/') end--;
    size_t start = end;
    while (start > 0 && o->model[start - 1] != '/') start--;
    snprintf(srv->model_name, sizeof srv->model_name, "%.*s", (int)(end - start), o->model + start);
    for (size_t i = 0; i < o->n_roots; i++) {
        srv->roots[i] = realpath(o->roots[i], NULL);
        struct stat st;
        if (!srv->roots[i] || stat(srv->roots[i], &st) != 0 || !S_ISDIR(st.st_mode)) {
            report_error("--root '%s' is not a folder", o->roots[i]);
            srv->n_roots = i + 1;
            return APP_USAGE;
        }
        srv->n_roots = i + 1;
    }
    clipdex_ctx *ctx = NULL;
    int rc = cli_ctx_new((int)o->threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o->model, o->vocab, &srv->model);
    if (!rc && clipdex_model_get_info(srv->model, &srv->info) != CLIPDEX_OK) {
        report_error("cannot describe the model '%s'", o->model);
        rc = APP_MODEL;
    }
    if (rc) {
        clipdex_ctx_free(ctx);
        return rc;
    }
    srv->tok = clipdex_model_tokenizer(srv->model);
    probe_weights(srv, ctx);
    clipdex_ctx_free(ctx);
    char err[256];
    if (batcher_new(srv->model, (int)o->threads, (size_t)o->batch, o->batch_wait_us, &srv->batch,
                    err, sizeof err)) {
        report_error("%s", err);
        return APP_FAIL;
    }
    if (o->db && serve_index_open(srv)) return APP_FAIL;
    return 0;
}

void server_free(server *srv)
{
    serve_index_close(srv);
    batcher_free(srv->batch);
    for (size_t i = 0; i < srv->n_ctx_free; i++) clipdex_ctx_free(srv->ctx_free[i]);
    free(srv->ctx_free);
    for (size_t i = 0; i < srv->n_roots; i++) free(srv->roots[i]);
    clipdex_model_free(srv->model);
    pthread_mutex_destroy(&srv->mu);
}
