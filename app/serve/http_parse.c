/*
 * http_parse.c - parsers for `clipdex serve` that touch no socket and no
 * model: listen addresses, URL IDs, bearer tokens, base64, multipart bodies
 * and the JSON request bodies (jansson), each checked for types and limits.
 * Hostile input yields an http_err, never a crash (fuzz/fuzz_http.c).
 */
#include "serve/http_parse.h"

#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ann/ann.h" /* ANN_NPROBE_MAX, ANN_CANDIDATES_MAX */

int http_fail(http_err *e, int status, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return -1;
}

static int parse_port(const char *s, int *port)
{
    if (!s[0] || strlen(s) > 5) return -1;
    long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535) return -1;
    *port = (int)v;
    return 0;
}

int http_parse_listen(const char *s, char *host, size_t host_len, int *port, int *ipv6)
{
    const char *colon;
    size_t hl;
    *ipv6 = 0;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':') return -1;
        hl = (size_t)(end - s - 1);
        if (hl == 0 || hl >= host_len) return -1;
        memcpy(host, s + 1, hl);
        host[hl] = '\0';
        *ipv6 = 1;
        return parse_port(end + 2, port);
    }
    colon = strrchr(s, ':');
    if (!colon) {
        if ((size_t)snprintf(host, host_len, "127.0.0.1") >= host_len) return -1;
        return parse_port(s, port);
    }
    hl = (size_t)(colon - s);
    if (hl == 0 || hl >= host_len || memchr(s, ':', hl)) return -1;
    memcpy(host, s, hl);
    host[hl] = '\0';
    return parse_port(colon + 1, port);
}

int http_parse_id(const char *url, const char *prefix, int64_t *id)
{
    size_t pl = strlen(prefix);
    if (strncmp(url, prefix, pl) != 0) return 0;
    const char *p = url + pl;
    if (!*p || *p == '0' || strlen(p) > 19) return -1;
    uint64_t v = 0;
    for (; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    if (v > (uint64_t)INT64_MAX) return -1;
    *id = (int64_t)v;
    return 1;
}

/* Decimal digits at *p (at most 19) into *v; 1 if any were read. */
static int range_number(const char **p, uint64_t *v)
{
    const char *s = *p;
    uint64_t x = 0;
    while (**p >= '0' && **p <= '9' && *p - s < 19) x = x * 10 + (uint64_t)(*(*p)++ - '0');
    *v = x;
    return *p > s && !(**p >= '0' && **p <= '9');
}

int http_parse_range(const char *h, uint64_t size, uint64_t *first, uint64_t *last)
{
    if (!h || strncmp(h, "bytes=", 6) != 0) return 0;
    const char *p = h + 6;
    while (*p == ' ') p++;
    uint64_t a = 0, b = 0;
    int has_a = range_number(&p, &a);
    if (*p++ != '-') return 0;
    int has_b = range_number(&p, &b);
    while (*p == ' ') p++;
    if (*p || (!has_a && !has_b)) return 0; /* several ranges or garbage: the whole */
    if (!has_a) { /* the last b bytes */
        if (b == 0 || size == 0) return -1;
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (has_b && b < a) return 0; /* invalid: ignored, as RFC 9110 says */
    if (a >= size) return -1;
    *first = a;
    *last = has_b && b < size ? b : size - 1;
    return 1;
}

int http_bearer_ok(const char *header, const char *token)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) return 0;
    const char *got = header + 7;
    while (*got == ' ') got++;
    size_t gl = strlen(got), tl = strlen(token);
    unsigned diff = gl != tl;
    for (size_t i = 0; i < tl; i++) diff |= (unsigned)(unsigned char)token[i] ^ (unsigned char)(i < gl ? got[i] : 0);
    return diff == 0;
}

static int b64_value(int c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int http_base64_decode(const char *s, size_t n, unsigned char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (n >= 5 && strncmp(s, "data:", 5) == 0) {
        const char *comma = memchr(s, ',', n);
        if (!comma || comma - s < 12 || strncmp(comma - 7, ";base64", 7) != 0) return -1;
        n -= (size_t)(comma + 1 - s);
        s = comma + 1;
    }
    unsigned char *buf = malloc(n / 4 * 3 + 3);
    if (!buf) return -1;
    size_t len = 0, pad = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = b64_value(c);
        if (v < 0 || pad) goto bad; /* a character after padding */
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[len++] = (unsigned char)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6) goto bad; /* a lone 6-bit group */
    *out = buf;
    *out_len = len;
    return 0;
bad:
    free(buf);
    return -1;
}

void http_media_type(const char *ctype, char *buf, size_t len)
{
    size_t i = 0;
    if (len == 0) return;
    if (ctype) {
        while (*ctype == ' ') ctype++;
        for (; ctype[i] && ctype[i] != ';' && ctype[i] != ' ' && i + 1 < len; i++)
            buf[i] = (char)tolower((unsigned char)ctype[i]);
    }
    buf[i] = '\0';
}

/* The value of parameter `name` in a header ("...; name=value" or
 * name="value"); copies it into buf. Returns 0 or -1. */
static int header_param(const char *h, size_t hlen, const char *name, char *buf, size_t len)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl < hlen; i++) {
        if ((i == 0 || h[i - 1] == ';' || h[i - 1] == ' ') && strncasecmp(h + i, name, nl) == 0 &&
            h[i + nl] == '=') {
            const char *v = h + i + nl + 1, *end = h + hlen;
            size_t k = 0;
            if (v < end && *v == '"') {
                v++;
                while (v < end && *v != '"') {
                    if (k + 1 >= len) return -1;
                    buf[k++] = *v++;
                }
                if (v >= end) return -1;
            } else {
                while (v < end && *v != ';' && *v != ' ' && *v != '\r') {
                    if (k + 1 >= len) return -1;
                    buf[k++] = *v++;
                }
            }
            buf[k] = '\0';
            return 0;
        }
    }
    return -1;
}

/* Finds `needle` in [p, end). */
static const unsigned char *find(const unsigned char *p, const unsigned char *end, const char *needle,
                                 size_t nl)
{
    if ((size_t)(end - p) < nl) return NULL;
    return memmem(p, (size_t)(end - p), needle, nl);
}

long http_multipart_parse(const char *ctype, const unsigned char *body, size_t len,
                          http_part *parts, size_t max, http_err *e)
{
    char bnd[80], delim[86];
    if (!ctype || header_param(ctype, strlen(ctype), "boundary", bnd, sizeof bnd) != 0 || !bnd[0])
        return http_fail(e, 400, "multipart body without a valid boundary (1..70 characters)");
    size_t bl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", bnd);
    const unsigned char *end = body + len;
    /* the first delimiter may start the body without the leading CRLF */
    const unsigned char *p;
    if (len >= bl - 2 && memcmp(body, delim + 2, bl - 2) == 0)
        p = body + bl - 2;
    else if ((p = find(body, end, delim, bl)) != NULL)
        p += bl;
    else
        return http_fail(e, 400, "multipart body has no boundary line");
    size_t n = 0;
    for (;;) {
        /* p is right after a delimiter: "--" ends, CRLF starts a part */
        if (end - p >= 2 && p[0] == '-' && p[1] == '-') return (long)n;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (end - p < 2 || p[0] != '\r' || p[1] != '\n')
            return http_fail(e, 400, "malformed multipart boundary line");
        p += 2;
        const unsigned char *hend = find(p, end, "\r\n\r\n", 4);
        if (!hend) return http_fail(e, 400, "multipart part without a header end");
        const unsigned char *next = find(hend + 4, end, delim, bl);
        if (!next) return http_fail(e, 400, "multipart body is not terminated");
        if (n >= max) return http_fail(e, 413, "more than %zu parts in the multipart body", max);
        http_part *pt = &parts[n];
        memset(pt, 0, sizeof *pt);
        /* headers: find Content-Disposition */
        const unsigned char *h = p;
        while (h < hend) {
            const unsigned char *eol = find(h, hend + 2, "\r\n", 2);
            if (!eol) eol = hend;
            size_t hl = (size_t)(eol - h);
            if (hl > 20 && strncasecmp((const char *)h, "content-disposition:", 20) == 0) {
                const char *hv = (const char *)h + 20;
                /* name= and filename= point into the body */
                for (size_t i = 0; i + 1 < hl - 20; i++) {
                    const char *q = hv + i;
                    size_t rem = hl - 20 - i;
                    int is_fn = rem > 10 && strncasecmp(q, "filename=\"", 10) == 0 &&
                                (i == 0 || q[-1] == ' ' || q[-1] == ';');
                    int is_nm = rem > 6 && strncasecmp(q, "name=\"", 6) == 0 &&
                                (i == 0 || q[-1] == ' ' || q[-1] == ';');
                    if (!is_fn && !is_nm) continue;
                    const char *v = q + (is_fn ? 10 : 6);
                    const char *ve = memchr(v, '"', (size_t)(hv + hl - 20 - v));
                    if (!ve) return http_fail(e, 400, "unterminated quoted value in a multipart header");
                    if (is_fn) {
                        pt->filename = v;
                        pt->filename_len = (size_t)(ve - v);
                    } else {
                        pt->name = v;
                        pt->name_len = (size_t)(ve - v);
                    }
                    i = (size_t)(ve - hv);
                }
            }
            h = eol + 2;
        }
        pt->data = hend + 4;
        pt->len = (size_t)(next - (hend + 4));
        n++;
        p = next + bl;
    }
}

/* ---- JSON ---------------------------------------------------------------- */

json_t *api_json_load(const char *body, size_t len, http_err *e)
{
    json_error_t je;
    if (len == 0) {
        http_fail(e, 400, "empty body: expected a JSON object");
        return NULL;
    }
    json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        http_fail(e, 400, "invalid JSON at line %d column %d: %s", je.line, je.column, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        http_fail(e, 400, "the body must be a JSON object");
        return NULL;
    }
    return root;
}

static int get_text(json_t *v, const char *what, api_text *t, http_err *e)
{
    if (!json_is_string(v)) return http_fail(e, 400, "%s must be a string", what);
    t->s = json_string_value(v);
    t->len = json_string_length(v);
    if (t->len > HTTP_MAX_TEXT_BYTES)
        return http_fail(e, 413, "%s is %zu bytes long (the limit is %d)", what, t->len,
                         HTTP_MAX_TEXT_BYTES);
    return 0;
}

long api_parse_texts(json_t *root, api_text *texts, http_err *e)
{
    json_t *one = json_object_get(root, "text"), *many = json_object_get(root, "texts");
    if (one && many) return http_fail(e, 400, "give \"texts\" or \"text\", not both");
    if (one) return get_text(one, "\"text\"", &texts[0], e) ? -1 : 1;
    if (!many) return http_fail(e, 400, "missing \"texts\": expected {\"texts\":[STRING,...]}");
    if (!json_is_array(many)) return http_fail(e, 400, "\"texts\" must be an array of strings");
    size_t n = json_array_size(many);
    if (n == 0) return http_fail(e, 400, "\"texts\" is empty");
    if (n > HTTP_MAX_TEXTS)
        return http_fail(e, 413, "%zu texts in one request (the limit is %d)", n, HTTP_MAX_TEXTS);
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "texts[%zu]", i);
        if (get_text(json_array_get(many, i), what, &texts[i], e)) return -1;
    }
    return (long)n;
}

int api_parse_image(json_t *v, const char *what, int allow_id, api_image *img, http_err *e)
{
    memset(img, 0, sizeof *img);
    json_t *val = NULL;
    const char *type = NULL;
    if (allow_id && json_is_integer(v)) {
        val = v;
        type = "id";
    } else if (json_is_object(v)) {
        json_t *t = json_object_get(v, "type");
        if (t) {
            if (!json_is_string(t)) return http_fail(e, 400, "%s.type must be a string", what);
            type = json_string_value(t);
            val = json_object_get(v, "value");
            if (!val) return http_fail(e, 400, "%s has no \"value\"", what);
        } else if ((val = json_object_get(v, "base64")) != NULL) {
            type = "base64";
        } else if ((val = json_object_get(v, "path")) != NULL) {
            type = "path";
        } else if (allow_id && (val = json_object_get(v, "id")) != NULL) {
            type = "id";
        }
    }
    if (!type)
        return http_fail(e, 400, "%s must be an object {\"type\":\"base64\"|\"path\",\"value\":...}",
                         what);
    if (strcmp(type, "base64") == 0) {
        if (!json_is_string(val)) return http_fail(e, 400, "%s: the base64 value must be a string", what);
        if (http_base64_decode(json_string_value(val), json_string_length(val), &img->data,
                               &img->len) != 0)
            return http_fail(e, 400, "%s: invalid base64", what);
        if (img->len == 0) {
            free(img->data);
            img->data = NULL;
            return http_fail(e, 400, "%s: the image is empty", what);
        }
        img->kind = API_IMAGE_BYTES;
        return 0;
    }
    if (strcmp(type, "path") == 0) {
        if (!json_is_string(val)) return http_fail(e, 400, "%s: the path must be a string", what);
        size_t pl = json_string_length(val);
        if (pl == 0 || pl >= HTTP_MAX_PATH || strlen(json_string_value(val)) != pl)
            return http_fail(e, 400, "%s: invalid path", what);
        img->kind = API_IMAGE_PATH;
        img->path = json_string_value(val);
        return 0;
    }
    if (allow_id && strcmp(type, "id") == 0) {
        if (!json_is_integer(val) || json_integer_value(val) <= 0)
            return http_fail(e, 400, "%s: the id must be a positive integer", what);
        img->kind = API_IMAGE_ID;
        img->id = (int64_t)json_integer_value(val);
        return 0;
    }
    if (strcmp(type, "url") == 0)
        return http_fail(e, 400, "%s: images by URL are not supported (send base64)", what);
    return http_fail(e, 400, "%s: unknown image type (expected \"base64\" or \"path\")", what);
}

void api_images_free(api_image *images, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(images[i].data);
        images[i].data = NULL;
    }
}

long api_parse_images(json_t *root, api_image *images, http_err *e)
{
    json_t *v = json_object_get(root, "image");
    if (!v) v = json_object_get(root, "images");
    if (!v) return http_fail(e, 400, "missing \"image\": expected {\"image\":{\"type\":\"base64\",\"value\":...}}");
    if (!json_is_array(v)) return api_parse_image(v, "\"image\"", 0, &images[0], e) ? -1 : 1;
    size_t n = json_array_size(v);
    if (n == 0) return http_fail(e, 400, "\"image\" is an empty list");
    if (n > HTTP_MAX_IMAGES)
        return http_fail(e, 413, "%zu images in one request (the limit is %d)", n, HTTP_MAX_IMAGES);
    for (size_t i = 0; i < n; i++) {
        char what[32];
        snprintf(what, sizeof what, "image[%zu]", i);
        if (api_parse_image(json_array_get(v, i), what, 0, &images[i], e)) {
            api_images_free(images, i);
            return -1;
        }
    }
    return (long)n;
}

static int get_type(json_t *root, const char *key, int *is_image, http_err *e)
{
    json_t *t = json_object_get(root, key);
    *is_image = 0;
    if (!t) return 0; /* default: text */
    if (!json_is_string(t)) return http_fail(e, 400, "\"%s\" must be \"image\" or \"text\"", key);
    if (strcmp(json_string_value(t), "image") == 0)
        *is_image = 1;
    else if (strcmp(json_string_value(t), "text") != 0)
        return http_fail(e, 400, "\"%s\" must be \"image\" or \"text\"", key);
    return 0;
}

int api_parse_compare(json_t *root, api_compare *c, http_err *e)
{
    memset(c, 0, sizeof *c);
    json_t *subj = json_object_get(root, "subject"), *pr = json_object_get(root, "prompt");
    if (!subj) return http_fail(e, 400, "missing \"subject\"");
    if (!pr) return http_fail(e, 400, "missing \"prompt\"");
    if (get_type(root, "subject_type", &c->subject_is_image, e) ||
        get_type(root, "prompt_type", &c->prompt_is_image, e))
        return -1;
    if (c->subject_is_image) {
        if (api_parse_image(subj, "\"subject\"", 0, &c->subject_image, e)) return -1;
    } else if (get_text(subj, "\"subject\"", &c->subject_text, e)) {
        return -1;
    }
    size_t n = 1;
    c->prompt_is_list = json_is_array(pr);
    if (c->prompt_is_list) {
        n = json_array_size(pr);
        if (n == 0) return http_fail(e, 400, "\"prompt\" is an empty list");
    }
    size_t max = c->prompt_is_image ? HTTP_MAX_IMAGES : HTTP_MAX_PROMPTS;
    if (n > max) return http_fail(e, 413, "%zu prompts (the limit is %zu)", n, max);
    if (c->prompt_is_image) {
        c->prompt_image = calloc(HTTP_MAX_IMAGES, sizeof *c->prompt_image);
        if (!c->prompt_image) return http_fail(e, 500, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        json_t *v = c->prompt_is_list ? json_array_get(pr, i) : pr;
        char what[32];
        snprintf(what, sizeof what, c->prompt_is_list ? "prompt[%zu]" : "\"prompt\"", i);
        int r = c->prompt_is_image ? api_parse_image(v, what, 0, &c->prompt_image[i], e)
                                   : get_text(v, what, &c->prompt_text[i], e);
        if (r) return -1;
        c->n_prompts = i + 1;
    }
    return 0;
}

void api_compare_free(api_compare *c)
{
    free(c->subject_image.data);
    c->subject_image.data = NULL;
    if (c->prompt_image) api_images_free(c->prompt_image, c->n_prompts);
    free(c->prompt_image);
    c->prompt_image = NULL;
}

static int get_weight(json_t *v, double *w, const char *what, http_err *e)
{
    *w = 1.0;
    if (!v) return 0;
    if (!json_is_number(v)) return http_fail(e, 400, "%s.weight must be a number", what);
    *w = json_number_value(v);
    if (!(*w >= -100.0 && *w <= 100.0))
        return http_fail(e, 400, "%s.weight must be between -100 and 100", what);
    return 0;
}

static int add_term(api_search *s, json_t *text, json_t *image, json_t *id, json_t *weight,
                    const char *what, http_err *e)
{
    if (s->n_terms >= HTTP_MAX_TERMS)
        return http_fail(e, 413, "more than %d search terms", HTTP_MAX_TERMS);
    api_term *t = &s->terms[s->n_terms];
    memset(t, 0, sizeof *t);
    if (get_weight(weight, &t->weight, what, e)) return -1;
    int given = (text != NULL) + (image != NULL) + (id != NULL);
    if (given != 1) return http_fail(e, 400, "%s needs exactly one of \"text\", \"image\", \"id\"", what);
    if (text) {
        if (get_text(text, what, &t->text, e)) return -1;
        if (t->text.len == 0) return http_fail(e, 400, "%s: the text is empty", what);
    } else {
        t->is_image = 1;
        if (id) {
            if (!json_is_integer(id) || json_integer_value(id) <= 0)
                return http_fail(e, 400, "%s: \"id\" must be a positive integer", what);
            t->image.kind = API_IMAGE_ID;
            t->image.id = (int64_t)json_integer_value(id);
        } else if (api_parse_image(image, what, 1, &t->image, e)) {
            return -1;
        }
    }
    s->n_terms++;
    return 0;
}

/* A boolean member (null or absent: *out unchanged). */
static int get_bool(json_t *root, const char *key, int *out, http_err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return http_fail(e, 400, "\"%s\" must be true or false", key);
    *out = json_is_true(v);
    return 0;
}

/* An integer member from min to max (null or absent: *out unchanged). */
static int get_long(json_t *root, const char *key, long min, long max, long *out, http_err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return http_fail(e, 400, "\"%s\" must be an integer from %ld to %ld", key, min, max);
    *out = (long)json_integer_value(v);
    return 0;
}

/* "under": an absolute path prefix, as the index records paths. */
static int get_under(json_t *root, search_filter *f, http_err *e)
{
    json_t *v = json_object_get(root, "under");
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v) || json_string_length(v) >= HTTP_MAX_PATH ||
        strlen(json_string_value(v)) != json_string_length(v) || json_string_value(v)[0] != '/')
        return http_fail(e, 400, "\"under\" must be an absolute path (the index records absolute paths)");
    if (filter_set_under(f, json_string_value(v))) return http_fail(e, 500, "out of memory");
    return 0;
}

/* "time_from" or "time_to": seconds, as a number or as "M:SS", "H:MM:SS". */
static int get_time(json_t *root, const char *key, double *t, int *given, http_err *e)
{
    json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_number(v) && json_number_value(v) >= 0 && isfinite(json_number_value(v)))
        *t = json_number_value(v);
    else if (!json_is_string(v) || filter_clock_parse(json_string_value(v), json_string_length(v), t))
        return http_fail(e, 400, "\"%s\" must be seconds >= 0, as a number or \"M:SS\" or \"H:MM:SS\"", key);
    *given = 1;
    return 0;
}

/* The filters and the per-request search options of a search. */
static int get_search_opts(json_t *root, api_search *s, http_err *e)
{
    search_filter *f = &s->filter;
    int from = 0, to = 0;
    f->t_to = INFINITY;
    if (get_under(root, f, e) || get_time(root, "time_from", &f->t_from, &from, e) ||
        get_time(root, "time_to", &f->t_to, &to, e))
        return -1;
    if (f->t_from > f->t_to) return http_fail(e, 400, "\"time_from\" is after \"time_to\"");
    f->has_time = from || to;
    if (s->persons && filter_active(f))
        return http_fail(e, 400, "\"under\", \"time_from\" and \"time_to\" do not apply to \"persons\"");
    if (get_bool(root, "exact", &s->exact, e) ||
        get_long(root, "nprobe", 1, ANN_NPROBE_MAX, &s->nprobe, e) ||
        get_long(root, "candidates", 1, ANN_CANDIDATES_MAX, &s->candidates, e))
        return -1;
    return 0;
}

int api_parse_search(json_t *root, api_search *s, http_err *e)
{
    memset(s, 0, sizeof *s);
    s->k = 10;
    json_t *k = json_object_get(root, "k"), *thr = json_object_get(root, "threshold");
    if (k) {
        if (!json_is_integer(k) || json_integer_value(k) < 1 || json_integer_value(k) > HTTP_MAX_K)
            return http_fail(e, 400, "\"k\" must be an integer from 1 to %d", HTTP_MAX_K);
        s->k = (long)json_integer_value(k);
    }
    if (thr && !json_is_null(thr)) {
        if (!json_is_number(thr) || !(json_number_value(thr) >= -1.0 && json_number_value(thr) <= 1.0))
            return http_fail(e, 400, "\"threshold\" must be a number from -1 to 1");
        s->has_threshold = 1;
        s->threshold = json_number_value(thr);
    }
    if (get_bool(root, "persons", &s->persons, e) || get_search_opts(root, s, e)) goto fail;
    json_t *text = json_object_get(root, "text"), *image = json_object_get(root, "image"),
           *id = json_object_get(root, "id"), *terms = json_object_get(root, "terms");
    if (text && add_term(s, text, NULL, NULL, NULL, "\"text\"", e)) goto fail;
    if (image && add_term(s, NULL, image, NULL, NULL, "\"image\"", e)) goto fail;
    if (id && add_term(s, NULL, NULL, id, NULL, "\"id\"", e)) goto fail;
    if (terms) {
        if (!json_is_array(terms)) {
            http_fail(e, 400, "\"terms\" must be a list of {\"text\"|\"image\"|\"id\", \"weight\"}");
            goto fail;
        }
        for (size_t i = 0; i < json_array_size(terms); i++) {
            json_t *t = json_array_get(terms, i);
            char what[32];
            snprintf(what, sizeof what, "terms[%zu]", i);
            if (!json_is_object(t)) {
                http_fail(e, 400, "%s must be an object", what);
                goto fail;
            }
            if (add_term(s, json_object_get(t, "text"), json_object_get(t, "image"),
                         json_object_get(t, "id"), json_object_get(t, "weight"), what, e))
                goto fail;
        }
    }
    if (s->n_terms == 0) {
        http_fail(e, 400, "nothing to search for: give \"text\", \"image\", \"id\" or \"terms\"");
        goto fail;
    }
    return 0;
fail:
    api_search_free(s);
    return -1;
}

void api_search_free(api_search *s)
{
    filter_free(&s->filter);
    for (size_t i = 0; i < s->n_terms; i++) {
        free(s->terms[i].image.data);
        s->terms[i].image.data = NULL;
    }
    /* a term that failed half-way may hold data too */
    if (s->n_terms < HTTP_MAX_TERMS) {
        free(s->terms[s->n_terms].image.data);
        s->terms[s->n_terms].image.data = NULL;
    }
}

int api_parse_index(json_t *root, const char **path, http_err *e)
{
    json_t *p = json_object_get(root, "path");
    if (!p) return http_fail(e, 400, "missing \"path\": expected {\"path\":\"/folder/under/a/root\"}");
    if (!json_is_string(p) || json_string_length(p) == 0 || json_string_length(p) >= HTTP_MAX_PATH ||
        strlen(json_string_value(p)) != json_string_length(p))
        return http_fail(e, 400, "\"path\" must be a non-empty string");
    *path = json_string_value(p);
    return 0;
}

static int watch_number(json_t *root, const char *key, double lo, double hi, double *out, http_err *e)
{
    json_t *v = json_object_get(root, key);
    *out = NAN;
    if (!v) return 0;
    if (!json_is_number(v) || !(json_number_value(v) >= lo && json_number_value(v) <= hi))
        return http_fail(e, 400, "\"%s\" must be a number from %g to %g", key, lo, hi);
    *out = json_number_value(v);
    return 0;
}

static int watch_prompt(json_t *v, size_t i, api_watch_prompt *p, http_err *e)
{
    char what[64];
    snprintf(what, sizeof what, "prompts[%zu]", i);
    p->negative = p->ensemble = 0;
    p->threshold = NAN;
    if (json_is_string(v)) return get_text(v, what, &p->text, e);
    if (!json_is_object(v)) return http_fail(e, 400, "%s must be a string or an object with \"text\"", what);
    json_t *t = json_object_get(v, "text"), *neg = json_object_get(v, "negative"),
           *ens = json_object_get(v, "ensemble"), *thr = json_object_get(v, "threshold");
    if (!t) return http_fail(e, 400, "%s has no \"text\"", what);
    if (get_text(t, what, &p->text, e)) return -1;
    if (p->text.len == 0) return http_fail(e, 400, "%s.text is empty", what);
    if ((neg && !json_is_boolean(neg)) || (ens && !json_is_boolean(ens)))
        return http_fail(e, 400, "%s: \"negative\" and \"ensemble\" must be true or false", what);
    p->negative = neg && json_is_true(neg);
    p->ensemble = ens && json_is_true(ens);
    if (thr && !json_is_null(thr)) {
        if (!json_is_number(thr) || !(json_number_value(thr) >= -1 && json_number_value(thr) <= 1))
            return http_fail(e, 400, "%s.threshold must be a number from -1 to 1", what);
        p->threshold = json_number_value(thr);
    }
    return 0;
}

int api_parse_watch(json_t *root, int need_inputs, api_watch *w, http_err *e)
{
    w->n_inputs = w->n_prompts = 0;
    w->score = -1;
    json_t *in = json_object_get(root, "inputs"), *pr = json_object_get(root, "prompts"),
           *sc = json_object_get(root, "score");
    if (need_inputs && (!json_is_array(in) || json_array_size(in) == 0 ||
                        json_array_size(in) > HTTP_MAX_WATCH_INPUTS))
        return http_fail(e, 400, "\"inputs\" must be a list of 1 to %d paths or URLs", HTTP_MAX_WATCH_INPUTS);
    if (!need_inputs && in) return http_fail(e, 400, "\"inputs\" cannot change while watching: start a new watch");
    for (size_t i = 0; in && i < json_array_size(in); i++) {
        json_t *v = json_array_get(in, i);
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= HTTP_MAX_PATH ||
            strlen(json_string_value(v)) != json_string_length(v))
            return http_fail(e, 400, "inputs[%zu] must be a non-empty string", i);
        w->inputs[w->n_inputs++] = json_string_value(v);
    }
    if (!json_is_array(pr) || json_array_size(pr) == 0 || json_array_size(pr) > HTTP_MAX_PROMPTS)
        return http_fail(e, 400, "\"prompts\" must be a list of 1 to %d prompts", HTTP_MAX_PROMPTS);
    for (size_t i = 0; i < json_array_size(pr); i++)
        if (watch_prompt(json_array_get(pr, i), i, &w->prompts[w->n_prompts++], e)) return -1;
    if (sc) {
        const char *s = json_is_string(sc) ? json_string_value(sc) : "";
        if (strcmp(s, "cosine") != 0 && strcmp(s, "softmax") != 0)
            return http_fail(e, 400, "\"score\" must be \"cosine\" or \"softmax\"");
        w->score = s[0] == 's';
    }
    if (watch_number(root, "threshold", -1, 1, &w->threshold, e) ||
        watch_number(root, "every", 0, 3600, &w->every, e) || watch_number(root, "dwell", 0, 3600, &w->dwell, e) ||
        watch_number(root, "hold", 0, 3600, &w->hold, e) ||
        watch_number(root, "focus_dwell", 0, 3600, &w->focus_dwell, e) ||
        watch_number(root, "crop_every", 0, 3600, &w->crop_every, e))
        return -1;
    json_t *det = json_object_get(root, "detector"), *mc = json_object_get(root, "max_crops");
    w->person = 0;
    w->max_crops = 0;
    if (det && !json_is_null(det)) {
        if (!json_is_string(det) || strcmp(json_string_value(det), "person") != 0)
            return http_fail(e, 400, "\"detector\" must be \"person\" (the person mode) or null");
        w->person = 1;
    }
    if (mc && !json_is_null(mc)) {
        if (!json_is_integer(mc) || json_integer_value(mc) < 1 || json_integer_value(mc) > 64)
            return http_fail(e, 400, "\"max_crops\" must be an integer from 1 to 64");
        w->max_crops = (long)json_integer_value(mc);
    }
    if (!need_inputs && (w->person || w->max_crops || !isnan(w->crop_every)))
        return http_fail(e, 400, "the person mode cannot change while watching: start a new watch");
    if (!w->person && (w->max_crops || !isnan(w->crop_every)))
        return http_fail(e, 400, "\"crop_every\" and \"max_crops\" need \"detector\": \"person\"");
    return 0;
}

void api_json_free(json_t *root)
{
    json_decref(root);
}
