/*
 * serve_http.c - the libmicrohttpd transport of `clipdex serve`: one thread
 * per connection (so many requests can wait on the batcher at once), body
 * accumulation with the size limit, connection limit and idle timeout, the
 * per-request processing deadline (set on http_request), and the
 * translation of an http_response into MHD's. Compiled in when the
 * build defines CLIPDEX_HAVE_MHD (and links libmicrohttpd); otherwise
 * `clipdex serve` says it is unavailable.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "serve/serve.h"
#include "util/report.h"

#ifndef CLIPDEX_HAVE_MHD
int serve_http_run(server *srv, const char *host, int port, int ipv6)
{
    report_error("this clipdex was built without libmicrohttpd: `serve` is unavailable "
                 "(build with libmicrohttpd in APP_PKGS and -DCLIPDEX_HAVE_MHD)");
    return APP_FAIL;
}
#else
#include <microhttpd.h>

typedef struct conn_state {
    unsigned char *body;
    size_t len, cap;
    int too_big;
} conn_state;

static ssize_t stream_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    http_response *hold = cls;
    long n = hold->stream_read(hold->stream_cls, buf, max);
    return n < 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void stream_done(void *cls)
{
    http_response *hold = cls;
    if (hold->stream_free) hold->stream_free(hold->stream_cls);
    free(hold);
}

static enum MHD_Result send_response(struct MHD_Connection *c, http_response *rs)
{
    struct MHD_Response *r;
    if (rs->stream_read) { /* MHD owns the stream from here */
        http_response *hold = malloc(sizeof *hold);
        if (!hold) return MHD_NO;
        *hold = *rs;
        rs->stream_read = NULL, rs->stream_free = NULL, rs->stream_cls = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, SERVE_STREAM_BLOCK, stream_cb, hold, stream_done);
        if (!r) {
            stream_done(hold);
            return MHD_NO;
        }
    } else if (rs->body_fd > 0) {
        r = MHD_create_response_from_fd_at_offset64(rs->len, rs->body_fd, rs->body_off);
        if (!r) close(rs->body_fd);
        rs->body_fd = 0; /* MHD owns it now */
    } else if (rs->body_static)
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    if (rs->content_type) MHD_add_response_header(r, "Content-Type", rs->content_type);
    MHD_add_response_header(r, "Cache-Control", rs->cache_control ? rs->cache_control : "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (rs->etag[0]) MHD_add_response_header(r, "ETag", rs->etag);
    if (rs->content_range[0]) MHD_add_response_header(r, "Content-Range", rs->content_range);
    if (rs->accept_ranges) MHD_add_response_header(r, "Accept-Ranges", "bytes");
    if (rs->status == 401) MHD_add_response_header(r, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    server *srv = cls;
    conn_state *cs = *con_cls;
    if (!cs) { /* headers are in: check the announced size before the body */
        cs = calloc(1, sizeof *cs);
        if (!cs) return MHD_NO;
        *con_cls = cs;
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)srv->o.max_body) {
            http_response rs;
            memset(&rs, 0, sizeof rs);
            resp_error(&rs, 413, "the body is %s bytes; the limit is %ld", cl, srv->o.max_body);
            enum MHD_Result ret = send_response(c, &rs);
            http_response_free(&rs);
            return ret;
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (cs->too_big) return MHD_YES;
        if (n > (size_t)srv->o.max_body - cs->len) { /* chunked bodies are checked here */
            cs->too_big = 1;
            free(cs->body);
            cs->body = NULL;
            cs->len = cs->cap = 0;
            return MHD_YES;
        }
        if (cs->len + n > cs->cap) {
            size_t cap = cs->cap ? cs->cap : 4096;
            while (cap < cs->len + n) cap *= 2;
            unsigned char *b = realloc(cs->body, cap);
            if (!b) return MHD_NO;
            cs->body = b;
            cs->cap = cap;
        }
        memcpy(cs->body + cs->len, upload, n);
        cs->len += n;
        return MHD_YES;
    }
    http_response rs;
    memset(&rs, 0, sizeof rs);
    if (cs->too_big) {
        resp_error(&rs, 413, "the body is larger than %ld bytes", srv->o.max_body);
    } else {
        http_request rq;
        memset(&rq, 0, sizeof rq);
        rq.method = method;
        rq.url = url;
        rq.content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        rq.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
        rq.if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
        rq.range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
        rq.body = cs->body ? cs->body : (const unsigned char *)"";
        rq.body_len = cs->len;
        /* the processing deadline counts from the end of the body */
        rq.deadline =
            srv->o.request_timeout_s > 0 ? serve_now() + (double)srv->o.request_timeout_s : 0.0;
        serve_handle(srv, &rq, &rs);
    }
    enum MHD_Result ret = send_response(c, &rs);
    http_response_free(&rs);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    conn_state *cs = *con_cls;
    if (cs) free(cs->body);
    free(cs);
    *con_cls = NULL;
}

int serve_http_run(server *srv, const char *host, int port, int ipv6)
{
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (ipv6) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a6.sin6_addr) != 1) {
            report_error("--listen: '%s' is not a numeric IPv6 address", host);
            return APP_USAGE;
        }
        sa = (struct sockaddr *)&a6;
    } else {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)port);
        if (strcmp(host, "localhost") == 0) host = "127.0.0.1";
        if (inet_pton(AF_INET, host, &a4.sin_addr) != 1) {
            report_error("--listen: '%s' is not a numeric IPv4 address", host);
            return APP_USAGE;
        }
        sa = (struct sockaddr *)&a4;
    }
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, srv, MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)srv->o.max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)srv->o.timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_LISTEN_BACKLOG_SIZE,
        (unsigned)256, MHD_OPTION_END);
    if (!d) {
        report_error("cannot listen on %s%s%s:%d (in use, or not an address of this machine)",
                     ipv6 ? "[" : "", host, ipv6 ? "]" : "", port);
        return APP_FAIL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? (int)info->port : port;
    report_note("clipdex serve: listening on http://%s%s%s:%d/ (model %s%s%s)", ipv6 ? "[" : "",
                host, ipv6 ? "]" : "", bound, srv->model_name,
                srv->random_weights ? ", random test weights" : "",
                srv->o.token ? ", token required" : "");
    sigset_t set;
    int sig = 0;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigwait(&set, &sig);
    report_note("clipdex serve: stopping (signal %d)", sig);
    serve_watch_close(srv); /* event streams end, so their connections can close */
    MHD_stop_daemon(d);
    return 0;
}
#endif
