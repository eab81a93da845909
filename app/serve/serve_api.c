/*
 * serve_api.c - the top of the transport-free half of `clipdex serve`:
 * start-up around the model the command loads (roots, random-weights probe,
 * batcher, index), the route table, and the encoder routes /v1/embed/text,
 * /v1/embed/image, /v1/compare, /v1/health, /v1/info and the packed web
 * page. Every error is a JSON object {"error": MESSAGE, "status": CODE}
 * with that HTTP status.
 */
#include "serve/serve.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/report.h"

/* ---- routes ---------------------------------------------------------------- */

static void resp_err(http_response *rs, const http_err *e)
{
    resp_error(rs, e->status ? e->status : 500, "%s", e->msg);
}

/* 200 {"dim": D, "embeddings": [[...] x n], "time": seconds since t0} */
static void reply_embeddings(http_response *rs, const float *emb, size_t n, size_t dim, double t0)
{
    resp_json r;
    if (resp_json_begin(&r)) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    json_obj_begin(&r.j);
    json_key(&r.j, "dim");
    json_int(&r.j, (long long)dim);
    json_key(&r.j, "embeddings");
    json_arr_begin(&r.j);
    for (size_t i = 0; i < n; i++) json_floats(&r.j, emb + i * dim, dim);
    json_arr_end(&r.j);
    json_key(&r.j, "time");
    json_num(&r.j, serve_now() - t0);
    json_obj_end(&r.j);
    resp_json_end(&r, rs, 200);
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
    if (emb && serve_embed_texts(srv, texts, (size_t)n, emb, rq->deadline, &e) == 0)
        reply_embeddings(rs, emb, (size_t)n, dim, t0);
    else
        resp_err(rs, &e);
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
        if (n > 0 && serve_images_load(srv, images, (size_t)n, e)) {
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
    if (emb && serve_embed_images(srv, images, (size_t)n, emb, rq->deadline, &e) == 0)
        reply_embeddings(rs, emb, (size_t)n, dim, t0);
    else
        resp_err(rs, &e);
    if (n > 0) api_images_free(images, (size_t)n);
    free(emb);
}

/* Embeds images that may be named by path or ID (read first). */
static int embed_images(server *srv, api_image *images, size_t n, float *out, double deadline,
                        http_err *e)
{
    if (serve_images_load(srv, images, n, e)) return -1;
    return serve_embed_images(srv, images, n, out, deadline, e);
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
    int r = c.subject_is_image ? embed_images(srv, &c.subject_image, 1, emb, dl, &e)
                               : serve_embed_texts(srv, &c.subject_text, 1, emb, dl, &e);
    if (r) goto fail;
    r = c.prompt_is_image ? embed_images(srv, c.prompt_image, n, emb + dim, dl, &e)
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
    } else if (strncmp(u, "/v1/person/", 11) == 0) {
        if (!is_get)
            method_not_allowed(rs, rq, "GET");
        else if (http_parse_id(u, "/v1/person/", &id) != 1)
            resp_error(rs, 404, "'%s' is not a valid person ID (a positive integer)", u + 11);
        else
            serve_route_person(srv, rq, rs);
    } else if (strncmp(u, "/v1/video/", 10) == 0 || strncmp(u, "/v1/frame/", 10) == 0) {
        int video = u[4] == 'v';
        if (!is_get)
            method_not_allowed(rs, rq, "GET");
        else if (http_parse_id(u, video ? "/v1/video/" : "/v1/frame/", &id) != 1)
            resp_error(rs, 404, "'%s' is not a valid %s ID (a positive integer)", u + 10, video ? "video" : "sample");
        else if (video)
            serve_route_video(srv, rq, rs);
        else
            serve_route_frame(srv, rq, rs);
    } else if (strncmp(u, "/v1/watch", 9) == 0 && (u[9] == '\0' || u[9] == '/')) {
        serve_route_watch(srv, rq, rs);
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
    return 0;
}

int server_start(server *srv, clipdex_ctx *ctx, clipdex_model *model)
{
    const serve_opts *o = &srv->o;
    srv->model = model;
    if (clipdex_model_get_info(srv->model, &srv->info) != CLIPDEX_OK) {
        report_error("cannot describe the model '%s'", o->model);
        return APP_MODEL;
    }
    srv->tok = clipdex_model_tokenizer(srv->model);
    probe_weights(srv, ctx);
    char err[256];
    if (batcher_new(srv->model, (int)o->threads, (size_t)o->batch, o->batch_wait_us, &srv->batch,
                    err, sizeof err)) {
        report_error("%s", err);
        return APP_FAIL;
    }
    if (o->db && serve_index_open(srv)) return APP_FAIL;
    if (serve_watch_new(srv)) {
        report_error("out of memory");
        return APP_FAIL;
    }
    return 0;
}

void server_free(server *srv)
{
    serve_watch_free(srv);
    serve_index_close(srv);
    batcher_free(srv->batch);
    for (size_t i = 0; i < srv->n_ctx_free; i++) clipdex_ctx_free(srv->ctx_free[i]);
    free(srv->ctx_free);
    for (size_t i = 0; i < srv->n_roots; i++) free(srv->roots[i]);
    clipdex_model_free(srv->model);
    pthread_mutex_destroy(&srv->mu);
}
