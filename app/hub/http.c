/*
 * http.c - libcurl requests for the hub downloader (see http.h). Every
 * request: http/https only (redirects too), at most 5 redirects, a short
 * connect timeout so an offline machine fails at once, a stall timeout
 * instead of a total one, "Authorization: Bearer $HF_TOKEN" when set, and
 * HTTP errors (>= 400) turned into a message that says what to do.
 */
#include "http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "clipdex.h"

int hub_http_init(hub_http *h, const hub_report *r, hub_err *e)
{
    static int inited;
    if (!inited) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) return hub_fail(e, "cannot initialise libcurl");
        inited = 1;
    }
    hub_endpoint(h->endpoint, sizeof h->endpoint);
    const char *tok = getenv("HF_TOKEN");
    h->token = tok && tok[0] ? tok : NULL;
    h->report = r;
    return 0;
}

/* One easy handle with the settings every request shares. */
static CURL *easy_new(const hub_http *h, const char *url, struct curl_slist **hdrs, char *errbuf)
{
    CURL *c = curl_easy_init();
    if (!c) return NULL;
    char ua[64], auth[1200];
    snprintf(ua, sizeof ua, "clipdex/%s", clipdex_version());
    *hdrs = NULL;
    if (h->token) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", h->token);
        *hdrs = curl_slist_append(NULL, auth);
    }
    errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_USERAGENT, ua);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, HUB_CONNECT_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, HUB_STALL_TIMEOUT);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    return c;
}

/* The message for an HTTP error status. */
static int status_error(const hub_http *h, long status, const char *what, const char *url, hub_err *e)
{
    if (status == 401 || status == 403)
        return hub_fail(e,
                        "cannot get %s: access refused (HTTP %ld). The repository is gated or private (or does not "
                        "exist); for a gated model, accept its licence on its page at %s and set HF_TOKEN to an "
                        "access token%s",
                        what, status, h->endpoint, h->token ? " (HF_TOKEN was sent and refused)" : "");
    if (status == 404)
        return hub_fail(e, "cannot get %s: not found at %s (HTTP 404; check the name)", what, h->endpoint);
    if (status >= 500)
        return hub_fail(e, "cannot get %s: the hub at %s failed (HTTP %ld); try again later", what, h->endpoint,
                        status);
    return hub_fail(e, "cannot get %s: HTTP %ld from %s", what, status, url);
}

/* Turns a failed transfer into a message; returns -1 or HUB_HTTP_DROPPED. */
static int transfer_error(const hub_http *h, CURL *c, CURLcode rc, const char *errbuf, const char *what,
                          const char *url, hub_err *e)
{
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
    if (rc == CURLE_HTTP_RETURNED_ERROR) return status_error(h, status, what, url, e);
    if (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_PROXY ||
        (rc == CURLE_OPERATION_TIMEDOUT && status == 0))
        return hub_fail(e,
                        "cannot reach the hub at %s: %s (offline? CLIPDEX_HUB_URL or HF_ENDPOINT can name a "
                        "mirror)",
                        h->endpoint, why);
    hub_fail(e, "cannot get %s: %s", what, why);
    return rc == CURLE_PARTIAL_FILE || rc == CURLE_RECV_ERROR || rc == CURLE_OPERATION_TIMEDOUT ||
                   rc == CURLE_GOT_NOTHING || rc == CURLE_SEND_ERROR
               ? HUB_HTTP_DROPPED
               : -1;
}

typedef struct mem_sink {
    char *buf;
    size_t len, cap;
    int too_big;
} mem_sink;

static size_t mem_write(char *p, size_t sz, size_t n, void *arg)
{
    mem_sink *m = arg;
    size_t add = sz * n;
    if (add > HUB_HTTP_MEM_MAX - m->len) {
        m->too_big = 1;
        return 0;
    }
    if (m->len + add + 1 > m->cap) {
        size_t cap = (m->len + add + 1) * 2;
        char *nb = realloc(m->buf, cap);
        if (!nb) return 0;
        m->buf = nb;
        m->cap = cap;
    }
    memcpy(m->buf + m->len, p, add);
    m->len += add;
    m->buf[m->len] = '\0';
    return add;
}

int hub_http_get_mem(const hub_http *h, const char *url, const char *what, char **body, size_t *len,
                     hub_err *e)
{
    char errbuf[CURL_ERROR_SIZE];
    struct curl_slist *hdrs;
    mem_sink m = {0};
    CURL *c = easy_new(h, url, &hdrs, errbuf);
    if (!c) return hub_fail(e, "cannot start a request for %s", what);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mem_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &m);
    CURLcode rc = curl_easy_perform(c);
    int r = 0;
    if (m.too_big)
        r = hub_fail(e, "cannot get %s: the answer is larger than %u bytes", what, HUB_HTTP_MEM_MAX);
    else if (rc != CURLE_OK)
        r = transfer_error(h, c, rc, errbuf, what, url, e) == 0 ? 0 : -1;
    else if (!m.buf)
        r = hub_fail(e, "cannot get %s: the answer is empty", what);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (r) {
        free(m.buf);
        return -1;
    }
    *body = m.buf;
    *len = m.len;
    return 0;
}

typedef struct file_sink {
    const hub_http *h;
    CURL *c;
    FILE *f;
    const char *name;
    uint64_t *have, start, total;
    int checked;          /* the response status was looked at */
    hub_http_meta *meta;
} file_sink;

/* Copies a header's value (quotes stripped) if its name matches. */
static void header_value(const char *line, size_t n, const char *name, char *out, size_t len)
{
    size_t k = strlen(name);
    if (n <= k + 1 || strncasecmp(line, name, k) != 0 || line[k] != ':') return;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '"')) v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == '"' || end[-1] == ' ')) end--;
    snprintf(out, len, "%.*s", (int)(end - v), v);
}

static size_t file_header(char *p, size_t sz, size_t n, void *arg)
{
    file_sink *s = arg;
    header_value(p, sz * n, "X-Linked-Etag", s->meta->linked_etag, sizeof s->meta->linked_etag);
    header_value(p, sz * n, "X-Repo-Commit", s->meta->commit, sizeof s->meta->commit);
    return sz * n;
}

static size_t file_write(char *p, size_t sz, size_t n, void *arg)
{
    file_sink *s = arg;
    if (!s->checked) { /* a 200 to a Range request: the whole file comes again */
        long status = 0;
        curl_easy_getinfo(s->c, CURLINFO_RESPONSE_CODE, &status);
        if (status == 200 && *s->have > 0) {
            if (fflush(s->f) != 0 || ftruncate(fileno(s->f), 0) != 0 || fseek(s->f, 0, SEEK_SET) != 0) return 0;
            *s->have = s->start = 0;
        }
        s->checked = 1;
    }
    size_t w = fwrite(p, sz, n, s->f);
    *s->have += w * sz;
    return w * sz;
}

static int file_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    file_sink *s = arg;
    const hub_report *r = s->h->report;
    if (r && r->bytes) r->bytes(r->arg, s->name, *s->have, s->total);
    return 0;
}

int hub_http_get_file(const hub_http *h, const char *url, const char *name, FILE *f, uint64_t *have,
                      uint64_t total, hub_http_meta *meta, hub_err *e)
{
    char errbuf[CURL_ERROR_SIZE], range[48], what[512];
    struct curl_slist *hdrs;
    CURL *c = easy_new(h, url, &hdrs, errbuf);
    if (!c) return hub_fail(e, "cannot start a request for '%s'", name);
    file_sink s = {h, c, f, name, have, *have, total, 0, meta};
    snprintf(range, sizeof range, "%llu-", (unsigned long long)*have);
    snprintf(what, sizeof what, "'%s' (%s)", name, url);
    if (*have > 0) curl_easy_setopt(c, CURLOPT_RANGE, range);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, file_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, file_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, file_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    CURLcode rc = curl_easy_perform(c);
    int r = 0;
    if (rc == CURLE_WRITE_ERROR)
        r = hub_fail(e, "cannot write the download of '%s' to disk", name);
    else if (rc != CURLE_OK)
        r = transfer_error(h, c, rc, errbuf, what, url, e);
    file_progress(&s, 0, 0, 0, 0);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    return r;
}
