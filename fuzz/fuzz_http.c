/*
 * fuzz_http.c - fuzz target for the request-parsing layer of `clipdex serve`
 * (app/serve/http_parse.c, compiled in here): every input is run through the JSON
 * body parsers of all routes (jansson + the type and limit checks, the
 * search filters of app/store/filter.c, compiled in too), the
 * multipart splitter (the first line is the Content-Type), base64, and the
 * listen-address, URL-ID, Range and bearer-token parsers. Nothing may crash, leak
 * or read out of bounds; results are checked for basic consistency.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "serve/http_parse.c"
#include "store/filter.c"

static void check_json(const char *data, size_t size)
{
    http_err e;
    struct json_t *root = api_json_load(data, size, &e);
    if (!root) return;
    api_text texts[HTTP_MAX_TEXTS];
    long n = api_parse_texts(root, texts, &e);
    if (n > HTTP_MAX_TEXTS) abort();
    for (long i = 0; i < n; i++)
        if (texts[i].len > HTTP_MAX_TEXT_BYTES) abort();
    api_image images[HTTP_MAX_IMAGES];
    memset(images, 0, sizeof images);
    n = api_parse_images(root, images, &e);
    if (n > HTTP_MAX_IMAGES) abort();
    if (n > 0) api_images_free(images, (size_t)n);
    api_compare c;
    api_parse_compare(root, &c, &e);
    if (c.n_prompts > HTTP_MAX_PROMPTS) abort();
    api_compare_free(&c);
    api_search s;
    if (api_parse_search(root, &s, &e) == 0) {
        if (s.n_terms == 0 || s.n_terms > HTTP_MAX_TERMS || s.k < 1 || s.k > HTTP_MAX_K) abort();
        if (s.filter.has_time && !(s.filter.t_from >= 0 && s.filter.t_from <= s.filter.t_to)) abort();
        if (s.filter.under && (s.filter.under[0] && s.filter.under[0] != '/')) abort();
        api_search_free(&s);
    }
    const char *path = NULL;
    api_parse_index(root, &path, &e);
    static api_watch w;
    for (int need = 0; need < 2; need++)
        if (api_parse_watch(root, need, &w, &e) == 0) {
            if (w.n_prompts == 0 || w.n_prompts > HTTP_MAX_PROMPTS || w.n_inputs > HTTP_MAX_WATCH_INPUTS ||
                (need && w.n_inputs == 0) || (!need && w.n_inputs))
                abort();
            for (size_t i = 0; i < w.n_prompts; i++)
                if (w.prompts[i].text.len > HTTP_MAX_TEXT_BYTES) abort();
        }
    api_json_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_json((const char *)data, size);

    /* first line: a header value for the string parsers */
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - data) : size;
    char *line = malloc(hl + 1);
    if (!line) return 0;
    memcpy(line, data, hl);
    line[hl] = '\0';

    http_err e;
    http_part parts[8];
    const unsigned char *body = nl ? nl + 1 : data + size;
    size_t blen = size - (size_t)(body - data);
    long np = http_multipart_parse(line, body, blen, parts, 8, &e);
    for (long i = 0; i < np; i++) /* every part lies inside the body */
        if (parts[i].data < body || parts[i].data + parts[i].len > body + blen) abort();

    unsigned char *dec = NULL;
    size_t dlen = 0;
    if (http_base64_decode((const char *)data, size, &dec, &dlen) == 0 && dlen > size) abort();
    free(dec);

    char host[256], mt[64];
    int port = -1, v6 = 0;
    if (http_parse_listen(line, host, sizeof host, &port, &v6) == 0 && (port < 0 || port > 65535))
        abort();
    int64_t id = 0;
    if (http_parse_id(line, "/v1/thumb/", &id) == 1 && id <= 0) abort();
    http_bearer_ok(line, "token");
    const uint64_t sizes[] = {0, 1, 100, 12345, UINT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) { /* a range lies inside the resource */
        uint64_t a = 0, b = 0;
        if (http_parse_range(line, sizes[i], &a, &b) == 1 && !(a <= b && b < sizes[i])) abort();
    }
    http_media_type(line, mt, sizeof mt);
    free(line);
    return 0;
}
