/*
 * http_parse.h - the pure parsing layer of `clipdex serve`, with no sockets
 * and no model, so it can be fuzzed alone (fuzz/fuzz_http.c): listen
 * addresses, numeric IDs in URLs, bearer tokens, base64, multipart/form-data
 * bodies, and the JSON request bodies of every route (jansson), checked for
 * types and limits. Every error is an HTTP status and a message.
 */
#ifndef CLIPDEX_APP_HTTP_PARSE_H
#define CLIPDEX_APP_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "store/filter.h"

/* jansson's document type; only http_parse.c includes <jansson.h> (its
 * json_null clashes with the writer in util/json.h). */
struct json_t;

/* Limits; override at build time (-DHTTP_MAX_TEXTS=...). */
#ifndef HTTP_MAX_TEXTS
#define HTTP_MAX_TEXTS 256          /* texts per request */
#endif
#ifndef HTTP_MAX_TEXT_BYTES
#define HTTP_MAX_TEXT_BYTES 8192    /* bytes per text */
#endif
#ifndef HTTP_MAX_IMAGES
#define HTTP_MAX_IMAGES 32          /* images per request */
#endif
#ifndef HTTP_MAX_PROMPTS
#define HTTP_MAX_PROMPTS 256        /* prompts per compare */
#endif
#ifndef HTTP_MAX_TERMS
#define HTTP_MAX_TERMS 16           /* terms per search */
#endif
#ifndef HTTP_MAX_K
#define HTTP_MAX_K 1000             /* results per search */
#endif
#ifndef HTTP_MAX_WATCH_INPUTS
#define HTTP_MAX_WATCH_INPUTS 16    /* inputs of /v1/watch */
#endif
#ifndef HTTP_MAX_PATH
#define HTTP_MAX_PATH 4096
#endif

/* An error to send: HTTP status and message. */
typedef struct http_err {
    int status;
    char msg[512];
} http_err;

/* Sets e and returns -1. */
int http_fail(http_err *e, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "HOST:PORT", "[V6]:PORT" or "PORT" (host 127.0.0.1). Writes the numeric
 * host (without brackets) and the port; returns 0 or -1. */
int http_parse_listen(const char *s, char *host, size_t host_len, int *port, int *ipv6);

/* `url` is PREFIX followed by a positive decimal ID (1..2^63-1) and nothing
 * else. Returns 1 with *id set, 0 if the prefix differs, -1 if the ID is bad. */
int http_parse_id(const char *url, const char *prefix, int64_t *id);
/* A Range header ("bytes=A-B", "bytes=A-", "bytes=-N"; one range only) for a
 * resource of `size` bytes: 1 and [*first, *last] (inclusive, clipped to the
 * size) when it is satisfiable, 0 when the header is absent or not a single
 * byte range (serve the whole resource), -1 when it is unsatisfiable (416). */
int http_parse_range(const char *header, uint64_t size, uint64_t *first, uint64_t *last);

/* The Authorization header is "Bearer TOKEN" (compared in constant time). */
int http_bearer_ok(const char *header, const char *token);

/* Decodes base64 (standard or URL-safe alphabet, padding optional,
 * whitespace ignored, an optional "data:...;base64," prefix). Returns 0 with
 * a malloc'd buffer, or -1. */
int http_base64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len);

/* One part of a multipart/form-data body; pointers into the body. */
typedef struct http_part {
    const char *name;     size_t name_len;
    const char *filename; size_t filename_len; /* NULL: no filename */
    const unsigned char *data; size_t len;
} http_part;

/* Splits a multipart/form-data body whose Content-Type is `ctype` into at
 * most `max` parts. Returns the count, or -1 (e set) on a malformed body. */
long http_multipart_parse(const char *ctype, const unsigned char *body, size_t len,
                          http_part *parts, size_t max, http_err *e);

/* The media type of a Content-Type header without parameters, lower case,
 * in buf ("" if none). */
void http_media_type(const char *ctype, char *buf, size_t len);

/* ---- JSON request bodies ------------------------------------------------ */

/* An image given in JSON: Roboflow's {"type":"base64","value":...} or
 * {"type":"path","value":...} (also {"base64":...} / {"path":...}). */
enum { API_IMAGE_BYTES = 1, API_IMAGE_PATH, API_IMAGE_ID };
typedef struct api_image {
    int kind;
    unsigned char *data; size_t len; /* API_IMAGE_BYTES (malloc'd) */
    const char *path;                /* API_IMAGE_PATH (into the JSON) */
    int64_t id;                      /* API_IMAGE_ID: an indexed image */
} api_image;

/* A text (pointer into the JSON document, may hold NUL). */
typedef struct api_text {
    const char *s;
    size_t len;
} api_text;

/* Parses the body as a JSON object; returns the root or NULL (e: 400). */
struct json_t *api_json_load(const char *body, size_t len, http_err *e);
void api_json_free(struct json_t *root); /* NULL is harmless */

/* {"texts":[STRING...]} or {"text":STRING}. Fills texts (max HTTP_MAX_TEXTS). */
long api_parse_texts(struct json_t *root, api_text *texts, http_err *e);

/* {"image": IMG | [IMG...]} (also "images"). Fills images (max
 * HTTP_MAX_IMAGES); free with api_images_free. */
long api_parse_images(struct json_t *root, api_image *images, http_err *e);
void api_images_free(api_image *images, size_t n);
/* One image object (or an ID number when allow_id). */
int api_parse_image(struct json_t *v, const char *what, int allow_id, api_image *img, http_err *e);

/* POST /v1/compare (Roboflow's fields). */
typedef struct api_compare {
    int subject_is_image;
    api_text subject_text;
    api_image subject_image;
    int prompt_is_image;
    int prompt_is_list;          /* "prompt" was a list: answer with a list */
    size_t n_prompts;
    api_text prompt_text[HTTP_MAX_PROMPTS];
    api_image *prompt_image;     /* [HTTP_MAX_IMAGES] when prompt_is_image */
} api_compare;
int api_parse_compare(struct json_t *root, api_compare *c, http_err *e);
void api_compare_free(api_compare *c);

/* POST /v1/search: terms with weights, k, threshold, filters, search options. */
typedef struct api_term {
    int is_image;
    api_text text;
    api_image image;
    double weight;
} api_term;
typedef struct api_search {
    size_t n_terms;
    api_term terms[HTTP_MAX_TERMS];
    long k;
    int has_threshold;
    double threshold;
    int persons;                 /* "persons": true searches the people's crops */
    search_filter filter;        /* "under", "time_from", "time_to" (filter.under owned) */
    int exact;                   /* "exact": true scans exactly, without the ANN index */
    long nprobe, candidates;     /* "nprobe", "candidates" for the ANN index (0: defaults) */
} api_search;
int api_parse_search(struct json_t *root, api_search *s, http_err *e);
void api_search_free(api_search *s);

/* POST /v1/index: {"path": STRING}. */
int api_parse_index(struct json_t *root, const char **path, http_err *e);


/* POST /v1/watch and POST /v1/watch/prompts:
 *   {"inputs":[URI...], "prompts":[{"text":S, "negative":B, "ensemble":B,
 *    "threshold":X}... or S...], "threshold":X, "score":"cosine"|"softmax",
 *    "every":S, "dwell":S, "hold":S, "focus_dwell":S}
 * Numbers left out are NAN, score -1 (the defaults). need_inputs: "inputs"
 * is required (start), else refused (changing prompts). */
typedef struct api_watch_prompt {
    api_text text;
    int negative, ensemble;
    double threshold;
} api_watch_prompt;
typedef struct api_watch {
    size_t n_inputs;
    const char *inputs[HTTP_MAX_WATCH_INPUTS];
    size_t n_prompts;
    api_watch_prompt prompts[HTTP_MAX_PROMPTS];
    double threshold, every, dwell, hold, focus_dwell;
    int score;
    int person;                  /* "detector": "person" (person mode) */
    double crop_every;           /* "crop_every" (NAN: the default) */
    long max_crops;              /* "max_crops" 1..64 (0: the default) */
} api_watch;
int api_parse_watch(struct json_t *root, int need_inputs, api_watch *w, http_err *e);

#endif
