/*
 * http.h - the few HTTP requests the hub downloader makes, over libcurl:
 * a small GET into memory (the tree API) and a resumable GET into a file
 * (resolve/ URLs, following the hub's redirect to its CDN). Internal to
 * app/hub/.
 */
#ifndef CLIPDEX_APP_HUB_HTTP_H
#define CLIPDEX_APP_HUB_HTTP_H

#include <stdint.h>
#include <stdio.h>

#include "hub.h"

/* Largest body hub_http_get_mem accepts (a tree listing). */
#ifndef HUB_HTTP_MEM_MAX
#define HUB_HTTP_MEM_MAX (16u << 20)
#endif
/* Seconds to wait for a connection before calling the hub unreachable. */
#ifndef HUB_CONNECT_TIMEOUT
#define HUB_CONNECT_TIMEOUT 10L
#endif
/* A transfer slower than 1 byte/s for this many seconds is dropped. */
#ifndef HUB_STALL_TIMEOUT
#define HUB_STALL_TIMEOUT 60L
#endif

/* hub_http_get_file's return value for a dropped connection: the bytes
 * received so far are in the file, and a retry resumes from there. */
#define HUB_HTTP_DROPPED (-2)

typedef struct hub_http {
    char endpoint[1024];      /* for messages */
    const char *token;        /* HF_TOKEN or NULL */
    const hub_report *report; /* may be NULL */
} hub_http;

/* What the responses said about a file (kept across redirects). */
typedef struct hub_http_meta {
    char linked_etag[80]; /* X-Linked-Etag without quotes: an LFS file's sha256 */
    char commit[64];      /* X-Repo-Commit */
} hub_http_meta;

/* Initialises libcurl (once) and fills h from the environment. */
int hub_http_init(hub_http *h, const hub_report *r, hub_err *e);

/* GET `url` into a malloc'd NUL-terminated buffer. `what` names the
 * request in messages ("the file list of 'org/name'"). */
int hub_http_get_mem(const hub_http *h, const char *url, const char *what, char **body, size_t *len,
                     hub_err *e);

/* GET `url` appending to `f`, which holds *have bytes already (asked for
 * with a Range request; if the server sends the whole file instead, the
 * file is emptied first). `name` and `total` are for progress and messages.
 * Returns 0, HUB_HTTP_DROPPED, or -1. */
int hub_http_get_file(const hub_http *h, const char *url, const char *name, FILE *f, uint64_t *have,
                      uint64_t total, hub_http_meta *meta, hub_err *e);

#endif
