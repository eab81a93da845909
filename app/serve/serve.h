/*
 * serve.h - what the parts of `clipdex serve` share: options, the server
 * state (model, batcher, context pool, index), the transport-free request
 * and response of one HTTP exchange, and the route handlers. Only
 * serve_http.c knows libmicrohttpd; everything else can run without a socket.
 * The files call downwards only: serve_http.c -> serve_api.c (start-up, route
 * table, encoder routes) -> serve_store.c (index routes) -> server.c
 * (responses, contexts, embedding) -> serve_batch.c, http_parse.c.
 */
#ifndef CLIPDEX_APP_SERVE_H
#define CLIPDEX_APP_SERVE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "clipdex.h"
#include "serve/http_parse.h"
#include "serve/serve_batch.h"
#include "util/json.h"

#ifndef SERVE_MAX_BODY
#define SERVE_MAX_BODY (32u << 20)          /* request body bytes */
#endif
#ifndef SERVE_MAX_PIXELS
#define SERVE_MAX_PIXELS 40000000ull        /* pixels per uploaded image */
#endif
#ifndef SERVE_MAX_CONNECTIONS
#define SERVE_MAX_CONNECTIONS 256
#endif
#ifndef SERVE_TIMEOUT_S
#define SERVE_TIMEOUT_S 30                  /* idle seconds before a connection is closed */
#endif
#ifndef SERVE_REQUEST_TIMEOUT_S
#define SERVE_REQUEST_TIMEOUT_S 60          /* seconds a request may wait for the encoders */
#endif
#ifndef SERVE_MAX_ROOTS
#define SERVE_MAX_ROOTS 64
#endif

typedef struct serve_opts {
    const char *model, *db, *listen, *token, *vocab;
    int download;                  /* --download: fetch a model NAME first */
    const char *roots[SERVE_MAX_ROOTS];
    size_t n_roots;
    long threads, max_conn, timeout_s, batch, batch_wait_us;
    long request_timeout_s;        /* 0: no deadline */
    long max_body;
    long long max_pixels;
    int no_exif;
    const char *watch_allow[SERVE_MAX_ROOTS]; /* --watch-allow: URL prefixes /v1/watch may open */
    size_t n_watch_allow;
    const char *detector_model;    /* --detector-model (or $CLIPDEX_DETECTOR): /v1/watch's person mode */
} serve_opts;

typedef struct serve_index serve_index; /* search state (serve_store.c) */
typedef struct serve_watch serve_watch; /* live matching (serve_watch.c) */

typedef struct server {
    serve_opts o;
    char model_name[256];          /* base name of the model directory */
    clipdex_model *model;
    clipdex_model_info info;
    const clipdex_tokenizer *tok;
    batcher *batch;
    char *roots[SERVE_MAX_ROOTS];  /* canonical --root folders */
    size_t n_roots;
    int random_weights;            /* the probe found the weights untrained */
    int probe_score, probe_total;
    double started;                /* monotonic seconds */
    pthread_mutex_t mu;            /* ctx pool and counters */
    clipdex_ctx **ctx_free;
    size_t n_ctx_free, cap_ctx_free;
    uint64_t requests, errors;
    serve_index *index;            /* NULL without --db */
    serve_watch *watch;
} server;

/* One request, whatever the transport. */
typedef struct http_request {
    const char *method, *url;
    const char *content_type;      /* may be NULL */
    const char *authorization;     /* may be NULL */
    const char *if_none_match;     /* may be NULL */
    const char *range;             /* the Range header, may be NULL */
    const unsigned char *body;
    size_t body_len;
    double deadline;               /* serve_now() seconds by which the encoders
                                      must be done; 0: none */
} http_request;

typedef struct http_response {
    int status;
    const char *content_type;
    unsigned char *body;           /* malloc'd unless body_static */
    size_t len;
    int body_static;
    const char *cache_control;     /* NULL: no-store */
    char etag[40];                 /* "" if none */
    char content_range[64];        /* "" if none: "bytes A-B/SIZE" (206) or "bytes *\/SIZE" (416) */
    int accept_ranges;             /* 1: Accept-Ranges: bytes */
    int body_fd;                   /* > 0: the body is `len` bytes of this file from body_off
                                      (the transport closes it); body must be NULL */
    uint64_t body_off;
    /* A stream of unknown length (Server-Sent Events) when stream_read is
     * set: the transport calls it for up to SERVE_STREAM_BLOCK bytes at a
     * time until it returns -1; it may block (one thread per connection).
     * stream_free(stream_cls) runs once at the end, whoever owns it. */
    long (*stream_read)(void *cls, char *buf, size_t max);
    void (*stream_free)(void *cls);
    void *stream_cls;
} http_response;
#define SERVE_STREAM_BLOCK (64 * 1024)

/* ---- server.c ---- */

double serve_now(void);
void http_response_free(http_response *rs);

/* Response helpers. */
void resp_error(http_response *rs, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A JSON body: begin opens a memory stream and the writer, end closes it. */
typedef struct resp_json {
    FILE *f;
    char *buf;
    size_t len;
    json_out j;
} resp_json;
int resp_json_begin(resp_json *r);
void resp_json_end(resp_json *r, http_response *rs, int status);

/* Pooled single-thread contexts for decoding and preprocessing. */
clipdex_ctx *server_ctx_get(server *srv);
void server_ctx_put(server *srv, clipdex_ctx *ctx);

/* Embeds texts / images through the batcher into out [n, dim]; returns 0 or
 * -1 with e set (4xx for bad input, 5xx for the engine, 503 when the
 * request's deadline (rq->deadline) passes before the encoders are done).
 * Images must hold bytes (serve_images_load reads those named by path or ID). */
int serve_embed_texts(server *srv, const api_text *texts, size_t n, float *out, double deadline,
                      http_err *e);
int serve_embed_images(server *srv, api_image *images, size_t n, float *out, double deadline,
                       http_err *e);

/* `path` resolved inside one of the --root folders (malloc'd), or NULL
 * with e set (403 outside, 404 missing). */
char *serve_path_in_roots(server *srv, const char *path, http_err *e);

/* ---- serve_store.c: the index and its routes ---- */

int serve_index_open(server *srv);
void serve_index_close(server *srv);
void serve_route_search(server *srv, const http_request *rq, http_response *rs);
void serve_route_index(server *srv, const http_request *rq, http_response *rs);
void serve_route_file(server *srv, const http_request *rq, http_response *rs, int thumb);
/* GET /v1/person/ID: a thumbnail of the square over a person (person_square). */
void serve_route_person(server *srv, const http_request *rq, http_response *rs);
/* Writes the index figures into an open object ("vectors", ...). */
void serve_index_info(server *srv, json_out *j);
/* The bytes of indexed image `id` (malloc'd); -1 with e set. */
/* The path of files.id `id` (malloc'd); 0 or -1 with e set (404 unknown). */
int serve_index_path(server *srv, int64_t id, char **path, http_err *e);
/* The JPEG thumbnail of video sample frames.id `frame_id` (malloc'd). */
int serve_index_frame_thumb(server *srv, int64_t frame_id, unsigned char **jpeg, size_t *len, http_err *e);
/* GET /v1/video/ID (the video file, HTTP Range requests answered with 206)
 * and GET /v1/frame/ID (a video sample's thumbnail): serve_video.c. */
void serve_route_video(server *srv, const http_request *rq, http_response *rs);
void serve_route_frame(server *srv, const http_request *rq, http_response *rs);
int serve_index_read(server *srv, int64_t id, unsigned char **data, size_t *len, char **path,
                     http_err *e);
/* Reads the images named by path (under a --root) or by indexed ID into
 * bytes (API_IMAGE_BYTES); 0, or -1 with e set. */
int serve_images_load(server *srv, api_image *images, size_t n, http_err *e);

/* ---- serve_watch.c: /v1/watch (live matching, Server-Sent Events) ---- */

int serve_watch_new(server *srv);      /* 0 or -1 (out of memory) */
void serve_watch_close(server *srv);   /* ends the event streams (before the transport stops) */
void serve_watch_free(server *srv);    /* stops the watch; NULL-safe */
void serve_route_watch(server *srv, const http_request *rq, http_response *rs);

/* ---- serve_api.c: start-up and the route table ---- */

/* Start-up in two steps around the model load, which the command does:
 * server_init checks the options (the --root folders); server_start takes
 * ownership of `model` (also on failure), probes it with `ctx`, starts the
 * batcher and opens the index. Each returns 0 or an exit code (reported);
 * server_free is needed either way. */
int server_init(server *srv, const serve_opts *o);
int server_start(server *srv, clipdex_ctx *ctx, clipdex_model *model);
void server_free(server *srv);

/* Routes the request; always fills a response (rs->body owned by rs). */
void serve_handle(server *srv, const http_request *rq, http_response *rs);

/* ---- serve_http.c ---- */

/* Serves until SIGINT or SIGTERM (blocked by the caller before any thread
 * starts). Returns 0 or an exit code (reported). */
int serve_http_run(server *srv, const char *host, int port, int ipv6);

/* The web page (web_assets.c, generated by tools/pack_assets). */
typedef struct web_asset {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
    const char *etag;
} web_asset;
extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif
