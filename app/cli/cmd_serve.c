/*
 * cmd_serve.c - `clipdex serve`: parses the options, loads the model (and
 * the index with --db), and runs the HTTP server (serve/serve_http.c) until
 * SIGINT or SIGTERM. The API is documented in docs/http.md.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_serve.h"
#include "serve/serve.h"

const char usage_serve[] =
    "Usage: clipdex serve [--model DIR] [--db FILE] [--listen 127.0.0.1:8080] [OPTIONS]\n"
    "\n"
    "Serves the encoders, search over an index and a search page over HTTP\n"
    "(API in docs/http.md). Requests from all clients are batched together for\n"
    "the encoders. Stops on SIGINT or SIGTERM.\n"
    "\n"
    "Options:\n"
    "  --model DIR|NAME     model directory or name (default: $CLIPDEX_MODEL, then ViT-B-32)\n"
    "  --download           fetch a model NAME that is not downloaded yet\n"
    "  --db FILE            index database for /v1/search, thumbnails and images\n"
    "  --root DIR           a folder that /v1/index may index and image paths may\n"
    "                       name (repeatable); nothing outside is ever read\n"
    "  --detector-model DIR  the detector of /v1/watch's person mode (default:\n"
    "                     $CLIPDEX_DETECTOR; sh tools/get_detector.sh DIR installs it)\n"
    "  --watch-allow PREFIX  inputs /v1/watch may open besides files under a --root:\n"
    "                       URLs or devices starting with PREFIX (repeatable; e.g.\n"
    "                       rtsp://camera.lan/, /dev/video); none by default\n"
    "  --listen ADDR        HOST:PORT, [V6]:PORT or PORT (default 127.0.0.1:8080;\n"
    "                       port 0 picks a free one)\n"
    "  --token TOKEN        require 'Authorization: Bearer TOKEN' on every route but\n"
    "                       /v1/health (default: $CLIPDEX_TOKEN; none if unset)\n"
    "  --threads N          encoder threads, 0 = all CPUs (default 0)\n"
    "  --batch N            inputs per encoder call, 1..256 (default 32)\n"
    "  --batch-wait-us N    longest wait for more requests to batch (default 2000)\n"
    "  --max-connections N  concurrent connections (default 256)\n"
    "  --timeout S          close connections idle for S seconds (default 30)\n"
    "  --request-timeout S  answer 503 when the encoders have not finished a request\n"
    "                       S seconds after its body arrived; 0 = no limit (default 60)\n"
    "  --max-body BYTES     largest request body (default 33554432)\n"
    "  --max-pixels N       largest uploaded image in pixels (default 40000000)\n"
    "  --no-exif            ignore the EXIF orientation tag of images\n"
    "  --vocab PATH         tokenizer vocabulary (default: the model's)\n"
    "  -h, --help           print this text\n";

static int serve_parse(int argc, char **argv, serve_opts *o)
{
    const char *val = NULL;
    int r;
    long v;
    cli_args a;
    cli_args_init(&a, argc, argv);
    while (cli_args_next(&a)) {
        if (cli_args_is_help(&a)) {
            fputs(usage_serve, stdout);
            return cli_flush_stdout();
        }
        if (cli_args_positional(&a))
            return cli_usage_error(a.cmd, "unexpected argument '%s'", argv[a.i]);
        if ((r = cli_args_value(&a, "--model", &o->model)) != 0 ||
            (r = cli_args_value(&a, "--db", &o->db)) != 0 ||
            (r = cli_args_value(&a, "--listen", &o->listen)) != 0 ||
            (r = cli_args_value(&a, "--token", &o->token)) != 0 ||
            (r = cli_args_value(&a, "--vocab", &o->vocab)) != 0 ||
            (r = cli_args_value(&a, "--detector-model", &o->detector_model)) != 0) {
            if (r < 0) return APP_USAGE;
        } else if ((r = cli_args_flag(&a, "--download")) != 0) {
            if (r < 0) return APP_USAGE;
            o->download = 1;
        } else if ((r = cli_args_value(&a, "--root", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            if (o->n_roots == SERVE_MAX_ROOTS)
                return cli_usage_error(a.cmd, "more than %d --root folders", SERVE_MAX_ROOTS);
            o->roots[o->n_roots++] = val;
        } else if ((r = cli_args_value(&a, "--watch-allow", &val)) != 0) {
            if (r < 0) return APP_USAGE;
            if (o->n_watch_allow == SERVE_MAX_ROOTS)
                return cli_usage_error(a.cmd, "more than %d --watch-allow prefixes", SERVE_MAX_ROOTS);
            if (!val[0]) return cli_usage_error(a.cmd, "--watch-allow needs a non-empty prefix");
            o->watch_allow[o->n_watch_allow++] = val;
        } else if ((r = cli_args_value(&a, "--threads", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--threads", val, 0, 1024, &o->threads)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--batch", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--batch", val, 1, 256, &o->batch)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--batch-wait-us", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--batch-wait-us", val, 0, 1000000, &o->batch_wait_us))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--max-connections", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--max-connections", val, 1, 65536, &o->max_conn))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--timeout", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--timeout", val, 1, 86400, &o->timeout_s)) return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--request-timeout", &val)) != 0) {
            if (r < 0 ||
                cli_parse_int(a.cmd, "--request-timeout", val, 0, 86400, &o->request_timeout_s))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--max-body", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--max-body", val, 1024, 1L << 30, &o->max_body))
                return APP_USAGE;
        } else if ((r = cli_args_value(&a, "--max-pixels", &val)) != 0) {
            if (r < 0 || cli_parse_int(a.cmd, "--max-pixels", val, 1, 1000000000L, &v)) return APP_USAGE;
            o->max_pixels = v;
        } else if ((r = cli_args_flag(&a, "--no-exif")) != 0) {
            if (r < 0) return APP_USAGE;
            o->no_exif = 1;
        } else {
            return cli_unknown_option(&a);
        }
    }
    o->model = cli_model_fetch(o->model, CLI_DOWNLOAD_OFFER + o->download);
    if (!o->model) return cli_model_error();
    if (!o->token) {
        const char *env = getenv("CLIPDEX_TOKEN");
        if (env && env[0]) o->token = env;
    }
    if (o->token && !o->token[0]) o->token = NULL;
    return -1;
}

int cmd_serve(int argc, char **argv)
{
    serve_opts o;
    memset(&o, 0, sizeof o);
    o.listen = "127.0.0.1:8080";
    o.batch = SERVE_BATCH_MAX;
    o.batch_wait_us = SERVE_BATCH_WAIT_US;
    o.max_conn = SERVE_MAX_CONNECTIONS;
    o.timeout_s = SERVE_TIMEOUT_S;
    o.request_timeout_s = SERVE_REQUEST_TIMEOUT_S;
    o.max_body = SERVE_MAX_BODY;
    o.max_pixels = (long long)SERVE_MAX_PIXELS;
    int rc = serve_parse(argc, argv, &o);
    if (rc >= 0) return rc;
    char host[256];
    int port = 0, ipv6 = 0;
    if (http_parse_listen(o.listen, host, sizeof host, &port, &ipv6))
        return cli_usage_error("serve", "invalid --listen '%s' (expected HOST:PORT)", o.listen);
    /* signals are taken by sigwait in serve_http_run; block them before any
     * thread starts so every thread inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    server srv;
    clipdex_ctx *ctx = NULL;
    clipdex_model *model = NULL;
    rc = server_init(&srv, &o);
    if (!rc) rc = cli_ctx_new((int)o.threads, &ctx);
    if (!rc) rc = cli_model_load(ctx, o.model, o.vocab, &model);
    if (!rc) rc = server_start(&srv, ctx, model); /* srv owns the model from here */
    clipdex_ctx_free(ctx);
    if (!rc) rc = serve_http_run(&srv, host, port, ipv6);
    server_free(&srv);
    return rc;
}
