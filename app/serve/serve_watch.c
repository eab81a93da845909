/*
 * serve_watch.c - live matching in `clipdex serve` (docs/watch.md, "In the
 * server"): one watch at a time (video/watch.c) on inputs under a --root or
 * URLs allowed by --watch-allow, prompts embedded through the batcher and
 * changeable while it runs, and its events as Server-Sent Events.
 *   POST   /v1/watch          start (replacing a running watch)
 *   GET    /v1/watch          state: inputs, prompts, latest scores, focus
 *   POST   /v1/watch/prompts  new prompts and threshold, applied at once
 *   DELETE /v1/watch          stop
 *   GET    /v1/watch/events   text/event-stream: "state" first, then every
 *                             frame/start/end/focus/reconnect/error/eos/stopped
 *   GET    /v1/watch/frame/I  the latest frame of input I as a JPEG
 * Invariants: everything in serve_watch is guarded by its mutex; the watch
 * thread only touches it from the event callback; events go into a ring of
 * SW_RING serialized SSE messages numbered by `seq`, so a slow reader skips
 * what fell out of the ring instead of slowing the watch.
 */
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve/serve.h"
#include "video/watch.h"
#include "zeroshot/zeroshot.h"

#define SW_RING 1024
#define SW_FRAME_SIDE 320        /* the live frames' longest side, pixels */
#define SW_KEEPALIVE_S 10

/* OpenAI's seven best prompt templates (CLIP's ImageNet notebook): the
 * ensemble a prompt gets with "ensemble": true. */
static const char *const ensemble_templates[] = {
    "itap of a {}.", "a bad photo of the {}.", "a origami {}.", "a photo of the large {}.",
    "a {} in a video game.", "art of the {}.", "a photo of the small {}."};
#define N_TEMPLATES (sizeof ensemble_templates / sizeof ensemble_templates[0])

typedef struct sw_prompt {
    char *text;
    int negative, ensemble;
    double threshold;            /* NAN: the global one */
} sw_prompt;

typedef struct sw_input {
    char *uri;                   /* as the client gave it */
    char *open;                  /* what the decoder opens (canonical path or URL) */
    double pts, wall;
    double *scores, *cosines;    /* latest frame, [n_scores] */
    size_t n_scores;
    unsigned char *active;       /* [n_p]: prompt matching now */
    unsigned char *jpeg;         /* latest frame */
    size_t jpeg_len;
} sw_input;

struct serve_watch {
    pthread_mutex_t ctl;         /* serializes start, prompts and stop requests */
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* an event, or closing */
    int closing;
    /* the running (or last) watch */
    watch *w;
    clipdex_ctx *ctx;
    clipdex_detector *det;       /* the person mode's detector (loaded per watch) */
    pthread_t th;
    int th_on, running;
    volatile sig_atomic_t stop;
    uint64_t id;
    sw_input *in;
    size_t n_in;
    const char **uris;           /* [n_in] the decoder URIs (watch borrows them) */
    sw_prompt *p;
    size_t n_p;
    watch_opts o;
    int focus;
    /* the event ring */
    char *ring[SW_RING];
    size_t ring_len[SW_RING];
    uint64_t seq;
};

static const char *const kind_name[] = {"frame", "start", "end", "focus", "reconnect", "error", "eos", "track"};

/* ---- state ---------------------------------------------------------------- */

static void prompts_free(sw_prompt *p, size_t n)
{
    for (size_t i = 0; p && i < n; i++) free(p[i].text);
    free(p);
}

static void inputs_free(sw_input *in, size_t n)
{
    for (size_t i = 0; in && i < n; i++) {
        free(in[i].uri), free(in[i].open), free(in[i].scores), free(in[i].cosines);
        free(in[i].active), free(in[i].jpeg);
    }
    free(in);
}

static void num_or_null(json_out *j, double v)
{
    if (isfinite(v)) json_num(j, v);
    else json_null(j);
}

/* The state object (called locked). */
static void state_json(serve_watch *sw, json_out *j)
{
    json_obj_begin(j);
    json_key(j, "running");
    json_bool(j, sw->running);
    json_key(j, "id");
    json_int(j, (long long)sw->id);
    json_key(j, "score");
    json_str(j, sw->o.score == WATCH_SOFTMAX ? "softmax" : "cosine");
    json_key(j, "detector");
    if (sw->o.detector) json_str(j, "person");
    else json_null(j);
    json_key(j, "threshold");
    json_num(j, sw->o.threshold);
    json_key(j, "every");
    json_num(j, sw->o.every);
    json_key(j, "dwell");
    json_num(j, sw->o.dwell);
    json_key(j, "hold");
    json_num(j, sw->o.hold);
    json_key(j, "focus");
    if (sw->focus >= 0) json_int(j, sw->focus);
    else json_null(j);
    json_key(j, "prompts");
    json_arr_begin(j);
    for (size_t k = 0; k < sw->n_p; k++) {
        json_obj_begin(j);
        json_key(j, "text");
        json_str(j, sw->p[k].text);
        json_key(j, "negative");
        json_bool(j, sw->p[k].negative);
        json_key(j, "ensemble");
        json_bool(j, sw->p[k].ensemble);
        json_key(j, "threshold");
        num_or_null(j, sw->p[k].threshold);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_key(j, "inputs");
    json_arr_begin(j);
    for (size_t i = 0; i < sw->n_in; i++) {
        sw_input *in = &sw->in[i];
        watch_stats st = {0};
        if (sw->w) watch_get_stats(sw->w, i, &st);
        json_obj_begin(j);
        json_key(j, "uri");
        json_str(j, in->uri);
        json_key(j, "frames");
        json_int(j, st.frames);
        json_key(j, "dropped");
        json_int(j, st.dropped);
        json_key(j, "reconnects");
        json_int(j, st.reconnects);
        json_key(j, "fps");
        json_num(j, st.fps);
        json_key(j, "state");
        json_str(j, st.done > 0 ? "ended" : st.done < 0 ? "failed" : sw->running ? "running" : "stopped");
        json_key(j, "pts");
        num_or_null(j, in->n_scores ? in->pts : NAN);
        json_key(j, "scores");
        json_arr_begin(j);
        for (size_t k = 0; k < in->n_scores; k++) json_num(j, in->scores[k]);
        json_arr_end(j);
        json_key(j, "cosines");
        json_arr_begin(j);
        for (size_t k = 0; k < in->n_scores; k++) json_num(j, in->cosines[k]);
        json_arr_end(j);
        json_key(j, "matching");
        json_arr_begin(j);
        for (size_t k = 0; in->active && k < sw->n_p; k++)
            if (in->active[k]) json_int(j, (long long)k);
        json_arr_end(j);
        json_obj_end(j);
    }
    json_arr_end(j);
    json_obj_end(j);
}

/* Appends an SSE message "event: NAME\ndata: JSON\n\n" (called locked; takes buf). */
static void ring_push(serve_watch *sw, char *buf, size_t len)
{
    size_t slot = (size_t)(sw->seq % SW_RING);
    free(sw->ring[slot]);
    sw->ring[slot] = buf;
    sw->ring_len[slot] = len;
    sw->seq++;
    pthread_cond_broadcast(&sw->cv);
}

/* An SSE message whose data is written by fn (called locked). */
static void publish(serve_watch *sw, const char *name, void (*fn)(serve_watch *, json_out *, const void *),
                    const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return;
    fprintf(f, "event: %s\ndata: ", name);
    json_out j;
    json_init(&j, f);
    fn(sw, &j, arg);
    fputs("\n\n", f);
    if (fclose(f) != 0 || !buf) {
        free(buf);
        return;
    }
    ring_push(sw, buf, len);
}

static void state_fn(serve_watch *sw, json_out *j, const void *arg)
{
    (void)arg;
    state_json(sw, j);
}

static void event_fn(serve_watch *sw, json_out *j, const void *arg)
{
    const watch_event *ev = arg;
    json_obj_begin(j);
    json_key(j, "id");
    json_int(j, (long long)sw->id);
    json_key(j, "input");
    json_int(j, ev->input);
    json_key(j, "uri");
    json_str(j, sw->in[ev->input].uri);
    if (ev->prompt >= 0) {
        json_key(j, "prompt");
        json_int(j, ev->prompt);
        json_key(j, "text");
        json_str(j, ev->prompt_text ? ev->prompt_text : "");
        json_key(j, "score");
        json_num(j, ev->score);
        json_key(j, "cosine");
        json_num(j, ev->cosine);
    }
    if (ev->track_id > 0) {
        json_key(j, "track");
        json_int(j, ev->track_id);
    }
    if (ev->kind == WATCH_TRACK) {
        json_key(j, "box");
        json_arr_begin(j);
        for (int k = 0; k < 4; k++) json_num(j, ev->box[k]);
        json_arr_end(j);
    }
    if (ev->kind == WATCH_FRAME && sw->o.detector) {
        json_key(j, "people");
        json_uint(j, ev->n_tracks);
    }
    json_key(j, "pts");
    json_num(j, ev->pts);
    if (ev->wall > 0) {
        json_key(j, "wall");
        json_fixed(j, ev->wall, 6);
    }
    if (ev->kind == WATCH_FRAME || ev->kind == WATCH_TRACK) {
        json_key(j, "scores");
        json_arr_begin(j);
        for (size_t k = 0; k < ev->n_prompts; k++) json_num(j, ev->scores[k]);
        json_arr_end(j);
        json_key(j, "cosines");
        json_arr_begin(j);
        for (size_t k = 0; k < ev->n_prompts; k++) json_num(j, ev->cosines[k]);
        json_arr_end(j);
    }
    if (ev->msg) {
        json_key(j, "message");
        json_str(j, ev->msg);
    }
    json_obj_end(j);
}

/* Keeps input i's latest frame: scores, time and JPEG (called locked). */
static void keep_frame(sw_input *in, const watch_event *ev)
{
    if (in->n_scores != ev->n_prompts) {
        double *s = realloc(in->scores, (ev->n_prompts ? ev->n_prompts : 1) * sizeof *s);
        if (s) in->scores = s;
        double *c = realloc(in->cosines, (ev->n_prompts ? ev->n_prompts : 1) * sizeof *c);
        if (c) in->cosines = c;
        if (!s || !c) return;
        in->n_scores = ev->n_prompts;
    }
    memcpy(in->scores, ev->scores, ev->n_prompts * sizeof *in->scores);
    memcpy(in->cosines, ev->cosines, ev->n_prompts * sizeof *in->cosines);
    in->pts = ev->pts, in->wall = ev->wall;
    if (ev->thumb && ev->thumb_len) {
        unsigned char *jp = malloc(ev->thumb_len);
        if (jp) {
            memcpy(jp, ev->thumb, ev->thumb_len);
            free(in->jpeg);
            in->jpeg = jp, in->jpeg_len = ev->thumb_len;
        }
    }
}

/* The watch thread's callback. */
static void on_event(void *user, const watch_event *ev)
{
    serve_watch *sw = user;
    pthread_mutex_lock(&sw->mu);
    sw_input *in = &sw->in[ev->input];
    if (ev->kind == WATCH_FRAME) keep_frame(in, ev);
    if ((ev->kind == WATCH_START || ev->kind == WATCH_END) && in->active && ev->prompt >= 0 &&
        (size_t)ev->prompt < sw->n_p)
        in->active[ev->prompt] = ev->kind == WATCH_START;
    if (ev->kind == WATCH_FOCUS) sw->focus = ev->input;
    publish(sw, kind_name[ev->kind], event_fn, ev);
    pthread_mutex_unlock(&sw->mu);
}

static void *watch_main(void *arg)
{
    serve_watch *sw = arg;
    watch_run(sw->w, on_event, sw, &sw->stop);
    pthread_mutex_lock(&sw->mu);
    sw->running = 0;
    publish(sw, "stopped", state_fn, NULL);
    pthread_mutex_unlock(&sw->mu);
    return NULL;
}

/* Stops and frees the running watch (holding ctl, not mu: the watch
 * thread locks mu; readers see w under mu until it is taken out). */
static void stop_watch(serve_watch *sw)
{
    if (sw->th_on) {
        sw->stop = 1;
        pthread_join(sw->th, NULL);
        sw->th_on = 0;
    }
    pthread_mutex_lock(&sw->mu);
    watch *w = sw->w;
    sw->w = NULL;
    sw->running = 0;
    pthread_mutex_unlock(&sw->mu);
    watch_free(w);
    clipdex_detector_free(sw->det);
    sw->det = NULL;
    clipdex_ctx_free(sw->ctx);
    sw->ctx = NULL;
}

/* ---- requests ------------------------------------------------------------- */

/* What the decoder opens for input `uri`: a URL that --watch-allow names
 * (a prefix), else a file under a --root. malloc'd, or NULL with e set. */
static char *resolve_input(server *srv, const char *uri, http_err *e)
{
    for (size_t i = 0; i < srv->o.n_watch_allow; i++) {
        const char *pre = srv->o.watch_allow[i];
        if (strncmp(uri, pre, strlen(pre)) == 0) return strdup(uri);
    }
    if (strstr(uri, "://") || strcmp(uri, "-") == 0 || strncmp(uri, "/dev/", 5) == 0) {
        http_fail(e, 403, "'%s' is not allowed: start the server with --watch-allow PREFIX to watch streams", uri);
        return NULL;
    }
    return serve_path_in_roots(srv, uri, e);
}

/* Embeds the prompts (a prompt with ensemble: the mean of its templates,
 * normalized) into emb [n, dim]. 0 or -1 with e set. */
static int embed_prompts(server *srv, const api_watch *aw, float *emb, double deadline, http_err *e)
{
    size_t dim = (size_t)srv->info.embed_dim, n_t = 0;
    for (size_t k = 0; k < aw->n_prompts; k++) n_t += aw->prompts[k].ensemble ? N_TEMPLATES : 1;
    api_text *t = calloc(n_t, sizeof *t);
    char **filled = calloc(n_t, sizeof *filled);
    float *out = malloc(n_t * dim * sizeof *out);
    int rc = t && filled && out ? 0 : http_fail(e, 500, "out of memory");
    size_t m = 0;
    for (size_t k = 0; !rc && k < aw->n_prompts; k++) {
        const api_watch_prompt *p = &aw->prompts[k];
        if (!p->ensemble) {
            t[m++] = p->text;
            continue;
        }
        if (strlen(p->text.s) != p->text.len) {
            rc = http_fail(e, 400, "prompts[%zu]: an ensemble text cannot hold NUL", k);
            break;
        }
        for (size_t q = 0; q < N_TEMPLATES && !rc; q++, m++) {
            filled[m] = zs_fill(ensemble_templates[q], p->text.s);
            if (!filled[m]) rc = http_fail(e, 500, "out of memory");
            else t[m] = (api_text){filled[m], strlen(filled[m])};
        }
    }
    for (size_t done = 0; !rc && done < n_t; done += HTTP_MAX_TEXTS) {
        size_t c = n_t - done < HTTP_MAX_TEXTS ? n_t - done : HTTP_MAX_TEXTS;
        rc = serve_embed_texts(srv, t + done, c, out + done * dim, deadline, e);
    }
    for (size_t k = 0, r = 0; !rc && k < aw->n_prompts; k++) {
        size_t c = aw->prompts[k].ensemble ? N_TEMPLATES : 1;
        float *dst = emb + k * dim;
        memset(dst, 0, dim * sizeof *dst);
        for (size_t q = 0; q < c; q++, r++)
            for (size_t d = 0; d < dim; d++) dst[d] += out[r * dim + d];
        zs_normalize(dst, dim);
    }
    for (size_t i = 0; filled && i < n_t; i++) free(filled[i]);
    free(filled), free(t), free(out);
    return rc;
}

/* The server's copy of the prompts and the watch's (borrowing texts and emb). */
static int make_prompts(const api_watch *aw, const float *emb, size_t dim, sw_prompt **sp, watch_prompt **wp,
                        http_err *e)
{
    *sp = calloc(aw->n_prompts, sizeof **sp);
    *wp = calloc(aw->n_prompts, sizeof **wp);
    if (!*sp || !*wp) return http_fail(e, 500, "out of memory");
    for (size_t k = 0; k < aw->n_prompts; k++) {
        const api_watch_prompt *p = &aw->prompts[k];
        char *text = malloc(p->text.len + 1);
        if (!text) return http_fail(e, 500, "out of memory");
        memcpy(text, p->text.s, p->text.len);
        text[p->text.len] = '\0';
        (*sp)[k] = (sw_prompt){text, p->negative, p->ensemble, p->threshold};
        (*wp)[k] = (watch_prompt){text, emb + k * dim, p->negative, p->threshold};
    }
    return 0;
}

static void opts_from(watch_opts *o, const api_watch *aw)
{
    watch_opts_default(o);
    if (aw->score >= 0) o->score = aw->score;
    o->threshold = !isnan(aw->threshold) ? aw->threshold : o->score == WATCH_SOFTMAX ? 0.5 : 0.25;
    if (!isnan(aw->every)) o->every = aw->every;
    if (!isnan(aw->dwell)) o->dwell = aw->dwell;
    if (!isnan(aw->hold)) o->hold = aw->hold;
    if (!isnan(aw->focus_dwell)) o->focus_dwell = aw->focus_dwell;
    if (!isnan(aw->crop_every)) o->crop_every = aw->crop_every;
    if (aw->max_crops) o->max_crops = (int)aw->max_crops;
    o->thumbs = 1;
    o->thumb_side = SW_FRAME_SIDE;
    o->retries = -1;
}

/* The detector folder of the person mode: --detector-model, else
 * $CLIPDEX_DETECTOR; NULL with e set (400) when neither is set. */
static const char *detector_path(server *srv, http_err *e)
{
    const char *p = srv->o.detector_model;
    if (!p || !*p) p = getenv("CLIPDEX_DETECTOR");
    if (!p || !*p) {
        http_fail(e, 400, "no detector for the person mode: start the server with --detector-model DIR (sh "
                          "tools/get_detector.sh DIR installs NanoDet) or set CLIPDEX_DETECTOR");
        return NULL;
    }
    return p;
}

static void reply_state(serve_watch *sw, http_response *rs)
{
    resp_json r;
    if (resp_json_begin(&r)) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    pthread_mutex_lock(&sw->mu);
    state_json(sw, &r.j);
    pthread_mutex_unlock(&sw->mu);
    resp_json_end(&r, rs, 200);
}

/* The inputs of a start request, resolved. */
static int make_inputs(server *srv, const api_watch *aw, sw_input **in, const char ***uris, http_err *e)
{
    *in = calloc(aw->n_inputs, sizeof **in);
    *uris = calloc(aw->n_inputs, sizeof **uris);
    if (!*in || !*uris) return http_fail(e, 500, "out of memory");
    for (size_t i = 0; i < aw->n_inputs; i++) {
        if (!((*in)[i].uri = strdup(aw->inputs[i]))) return http_fail(e, 500, "out of memory");
        if (!((*in)[i].open = resolve_input(srv, aw->inputs[i], e))) return -1;
        (*uris)[i] = (*in)[i].open;
    }
    return 0;
}

static void route_start(server *srv, serve_watch *sw, const api_watch *aw, double deadline, http_response *rs)
{
    http_err e = {0};
    size_t dim = (size_t)srv->info.embed_dim;
    sw_input *in = NULL;
    const char **uris = NULL;
    sw_prompt *sp = NULL;
    watch_prompt *wp = NULL;
    float *emb = malloc(aw->n_prompts * dim * sizeof *emb);
    const char *det_path = aw->person ? detector_path(srv, &e) : NULL;
    int rc = aw->person && !det_path ? -1 : emb ? make_inputs(srv, aw, &in, &uris, &e) : http_fail(&e, 500, "out of memory");
    if (!rc) rc = embed_prompts(srv, aw, emb, deadline, &e);
    if (!rc) rc = make_prompts(aw, emb, dim, &sp, &wp, &e);
    for (size_t i = 0; !rc && i < aw->n_inputs; i++)
        if (!(in[i].active = calloc(aw->n_prompts, 1))) rc = http_fail(&e, 500, "out of memory");
    if (rc) {
        resp_error(rs, e.status, "%s", e.msg);
        inputs_free(in, aw->n_inputs), free(uris), prompts_free(sp, aw->n_prompts), free(wp), free(emb);
        return;
    }
    stop_watch(sw);
    pthread_mutex_lock(&sw->mu);
    inputs_free(sw->in, sw->n_in);
    free(sw->uris);
    prompts_free(sw->p, sw->n_p);
    sw->in = in, sw->n_in = aw->n_inputs, sw->uris = uris, sw->p = sp, sw->n_p = aw->n_prompts;
    opts_from(&sw->o, aw);
    sw->focus = -1;
    sw->stop = 0;
    sw->id++;
    pthread_mutex_unlock(&sw->mu);
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = (int)srv->o.threads;
    watch *w = NULL;
    int st = clipdex_ctx_new(&sw->ctx, &cp);
    if (st == CLIPDEX_OK && det_path && clipdex_detector_load(sw->ctx, det_path, &sw->det) != CLIPDEX_OK) {
        resp_error(rs, 500, "cannot load the detector: %s", clipdex_ctx_errmsg(sw->ctx));
        free(wp), free(emb);
        stop_watch(sw);
        return;
    }
    pthread_mutex_lock(&sw->mu);
    sw->o.detector = sw->det;
    pthread_mutex_unlock(&sw->mu);
    if (st == CLIPDEX_OK)
        st = watch_start(sw->ctx, srv->model, uris, aw->n_inputs, wp, aw->n_prompts, dim, &sw->o, &w) ? -1 : 0;
    free(wp), free(emb);
    if (st == 0) {
        pthread_mutex_lock(&sw->mu);
        sw->w = w, sw->running = 1;
        publish(sw, "state", state_fn, NULL);
        pthread_mutex_unlock(&sw->mu);
        if (pthread_create(&sw->th, NULL, watch_main, sw) == 0) {
            sw->th_on = 1;
            reply_state(sw, rs);
            return;
        }
    }
    stop_watch(sw);
    resp_error(rs, 500, "cannot start the watch");
}

static void route_prompts(server *srv, serve_watch *sw, const api_watch *aw, double deadline, http_response *rs)
{
    http_err e = {0};
    size_t dim = (size_t)srv->info.embed_dim;
    if (!sw->w) {
        resp_error(rs, 409, "no watch is running (POST /v1/watch starts one)");
        return;
    }
    sw_prompt *sp = NULL;
    watch_prompt *wp = NULL;
    unsigned char **act = calloc(sw->n_in, sizeof *act);
    float *emb = malloc(aw->n_prompts * dim * sizeof *emb);
    int rc = emb && act ? embed_prompts(srv, aw, emb, deadline, &e) : http_fail(&e, 500, "out of memory");
    if (!rc) rc = make_prompts(aw, emb, dim, &sp, &wp, &e);
    for (size_t i = 0; !rc && i < sw->n_in; i++)
        if (!(act[i] = calloc(aw->n_prompts, 1))) rc = http_fail(&e, 500, "out of memory");
    if (!rc && watch_set_prompts(sw->w, wp, aw->n_prompts, aw->threshold)) rc = http_fail(&e, 500, "out of memory");
    if (rc) {
        resp_error(rs, e.status, "%s", e.msg);
        prompts_free(sp, aw->n_prompts);
    } else {
        pthread_mutex_lock(&sw->mu);
        prompts_free(sw->p, sw->n_p);
        sw->p = sp, sw->n_p = aw->n_prompts;
        if (!isnan(aw->threshold)) sw->o.threshold = aw->threshold;
        for (size_t i = 0; i < sw->n_in; i++) {
            free(sw->in[i].active);
            sw->in[i].active = act[i];
            act[i] = NULL;
        }
        sw->focus = -1;
        publish(sw, "state", state_fn, NULL);
        pthread_mutex_unlock(&sw->mu);
        reply_state(sw, rs);
    }
    for (size_t i = 0; act && i < sw->n_in; i++) free(act[i]);
    free(act), free(wp), free(emb);
}

static void route_frame(serve_watch *sw, const char *u, http_response *rs)
{
    int64_t i;
    if (http_parse_id(u, "/v1/watch/frame/", &i) != 1 && strcmp(u, "/v1/watch/frame/0") != 0) {
        resp_error(rs, 404, "'%s' is not an input number", u + 16);
        return;
    }
    if (strcmp(u, "/v1/watch/frame/0") == 0) i = 0;
    pthread_mutex_lock(&sw->mu);
    if ((size_t)i >= sw->n_in || !sw->in[i].jpeg) {
        pthread_mutex_unlock(&sw->mu);
        resp_error(rs, 404, "input %lld has no frame yet", (long long)i);
        return;
    }
    unsigned char *b = malloc(sw->in[i].jpeg_len);
    size_t len = sw->in[i].jpeg_len;
    if (b) memcpy(b, sw->in[i].jpeg, len);
    pthread_mutex_unlock(&sw->mu);
    if (!b) {
        resp_error(rs, 500, "out of memory");
        return;
    }
    http_response_free(rs);
    rs->status = 200;
    rs->content_type = "image/jpeg";
    rs->body = b;
    rs->len = len;
}

/* ---- Server-Sent Events ----------------------------------------------------- */

typedef struct sse_reader {
    serve_watch *sw;
    uint64_t next;               /* the next message to send */
    char *first;                 /* the state message sent on connect */
    size_t first_len;
} sse_reader;

/* Blocks until a message is there (or a keep-alive is due); -1 at the end. */
static long sse_read(void *cls, char *buf, size_t max)
{
    sse_reader *r = cls;
    serve_watch *sw = r->sw;
    if (r->first) {
        size_t n = r->first_len < max ? r->first_len : max; /* max is SSE_BLOCK, more than a state */
        memcpy(buf, r->first, n);
        free(r->first);
        r->first = NULL;
        return (long)n;
    }
    pthread_mutex_lock(&sw->mu);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += SW_KEEPALIVE_S;
    while (!sw->closing && r->next == sw->seq)
        if (pthread_cond_timedwait(&sw->cv, &sw->mu, &ts) != 0) break;
    long n;
    if (sw->closing) {
        n = -1;
    } else if (r->next == sw->seq) {
        static const char ka[] = ": keep-alive\n\n";
        memcpy(buf, ka, sizeof ka - 1);
        n = (long)(sizeof ka - 1);
    } else {
        if (sw->seq - r->next > SW_RING) r->next = sw->seq - SW_RING; /* too slow: skip */
        size_t slot = (size_t)(r->next % SW_RING);
        size_t len = sw->ring_len[slot];
        r->next++;
        if (len > max) {
            static const char big[] = ": a message larger than the block was left out\n\n";
            memcpy(buf, big, sizeof big - 1);
            n = (long)(sizeof big - 1);
        } else {
            memcpy(buf, sw->ring[slot], len);
            n = (long)len;
        }
    }
    pthread_mutex_unlock(&sw->mu);
    return n;
}

static void sse_free(void *cls)
{
    sse_reader *r = cls;
    free(r->first);
    free(r);
}

static void route_events(serve_watch *sw, http_response *rs)
{
    sse_reader *r = calloc(1, sizeof *r);
    FILE *f = r ? open_memstream(&r->first, &r->first_len) : NULL;
    if (!f) {
        free(r);
        resp_error(rs, 500, "out of memory");
        return;
    }
    r->sw = sw;
    fputs("retry: 1000\nevent: state\ndata: ", f);
    json_out j;
    json_init(&j, f);
    pthread_mutex_lock(&sw->mu);
    state_json(sw, &j);
    r->next = sw->seq;
    pthread_mutex_unlock(&sw->mu);
    fputs("\n\n", f);
    if (fclose(f) != 0 || !r->first) {
        sse_free(r);
        resp_error(rs, 500, "out of memory");
        return;
    }
    http_response_free(rs);
    rs->status = 200;
    rs->content_type = "text/event-stream";
    rs->stream_read = sse_read;
    rs->stream_free = sse_free;
    rs->stream_cls = r;
}

/* ---- entry points ------------------------------------------------------------ */

int serve_watch_new(server *srv)
{
    serve_watch *sw = calloc(1, sizeof *sw);
    if (!sw) return -1;
    pthread_mutex_init(&sw->ctl, NULL);
    pthread_mutex_init(&sw->mu, NULL);
    pthread_cond_init(&sw->cv, NULL);
    sw->focus = -1;
    watch_opts_default(&sw->o);
    srv->watch = sw;
    return 0;
}

void serve_watch_close(server *srv)
{
    serve_watch *sw = srv->watch;
    if (!sw) return;
    pthread_mutex_lock(&sw->mu);
    sw->closing = 1;
    pthread_cond_broadcast(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

void serve_watch_free(server *srv)
{
    serve_watch *sw = srv->watch;
    if (!sw) return;
    stop_watch(sw);
    inputs_free(sw->in, sw->n_in);
    free(sw->uris);
    prompts_free(sw->p, sw->n_p);
    for (size_t i = 0; i < SW_RING; i++) free(sw->ring[i]);
    pthread_mutex_destroy(&sw->ctl);
    pthread_mutex_destroy(&sw->mu);
    pthread_cond_destroy(&sw->cv);
    free(sw);
    srv->watch = NULL;
}

void serve_route_watch(server *srv, const http_request *rq, http_response *rs)
{
    serve_watch *sw = srv->watch;
    const char *u = rq->url, *m = rq->method;
    int get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0, post = strcmp(m, "POST") == 0;
    if (strcmp(u, "/v1/watch/events") == 0 && get) return route_events(sw, rs);
    if (strncmp(u, "/v1/watch/frame/", 16) == 0 && get) return route_frame(sw, u, rs);
    if (strcmp(u, "/v1/watch") == 0 && get) return reply_state(sw, rs);
    if (strcmp(u, "/v1/watch") == 0 && strcmp(m, "DELETE") == 0) {
        pthread_mutex_lock(&sw->ctl);
        stop_watch(sw);
        pthread_mutex_unlock(&sw->ctl);
        return reply_state(sw, rs);
    }
    int start = strcmp(u, "/v1/watch") == 0, prompts = strcmp(u, "/v1/watch/prompts") == 0;
    if (!(start || prompts) || !post) {
        if (start || prompts || strcmp(u, "/v1/watch/events") == 0 || strncmp(u, "/v1/watch/frame/", 16) == 0)
            resp_error(rs, 405, "%s is not allowed on %s", m, u);
        else
            resp_error(rs, 404, "no such route: %s", u);
        return;
    }
    http_err e = {0};
    struct json_t *root = api_json_load((const char *)rq->body, rq->body_len, &e);
    api_watch *aw = root ? malloc(sizeof *aw) : NULL;
    if (root && !aw) http_fail(&e, 500, "out of memory");
    if (aw && api_parse_watch(root, start, aw, &e) == 0) {
        pthread_mutex_lock(&sw->ctl);
        if (start) route_start(srv, sw, aw, rq->deadline, rs);
        else route_prompts(srv, sw, aw, rq->deadline, rs);
        pthread_mutex_unlock(&sw->ctl);
    } else {
        resp_error(rs, e.status, "%s", e.msg);
    }
    free(aw);
    api_json_free(root);
}
