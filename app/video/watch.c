/*
 * watch.c - the watcher of `clipdex watch` (contract in watch.h). Threads:
 * one decoder per input fills that input's small ring of sampled frames
 * (already wrapped as clipdex_images); a file's decoder waits when its ring
 * is full (no frame is lost), a live one drops the oldest frame (it must not
 * fall behind). The caller's thread takes up to `batch` frames, earliest
 * presentation time first (files wait for each other, so several files are
 * compared at the same stream time), embeds them in one call, and scores
 * them in that order, so events are in each input's time order. Invariant: only the
 * caller's thread touches match and focus state; the rings, the decoder
 * state and the pending messages are guarded by w->mu.
 */
#include "video/watch.h"
#include "video/wperson.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/report.h"
#include "video/decode.h"
#include "video/jpeg.h"

#define RING 4
#define WATCH_THUMB_SIDE 160 /* as the index's video thumbnails */

typedef struct wframe {
    clipdex_image *img;
    double pts, wall;
    uint8_t *thumb; /* with opts.thumbs */
    size_t thumb_len;
} wframe;

static void wframe_free(wframe *f)
{
    clipdex_image_free(f->img);
    free(f->thumb);
    f->img = NULL, f->thumb = NULL;
}

enum { M_IDLE, M_PENDING, M_ACTIVE };

typedef struct match {
    int state;
    double first, miss; /* pts of the first matching frame; of the first miss (NAN: none) */
    double score, cosine;
    long track;         /* person mode: the track of the latest matching score */
} match;

typedef struct input {
    struct watch *w;
    size_t idx;
    const char *uri;
    int live;
    pthread_t th;
    int th_on;
    wframe ring[RING];
    size_t head, n;   /* ring: n frames from head */
    int state;        /* 0 running, 1 ended, -1 failed */
    char msg[512];
    int msg_kind;     /* pending RECONNECT/ERROR event, 0 none */
    watch_stats st;
    double t0;        /* monotonic time of the first scored frame */
    double last_pts, lead; /* focus: the latest frame's time and matching score (-INFINITY: none) */
    int eos_sent;
    match *m;         /* [n_prompts] */
} input;

struct watch {
    clipdex_ctx *ctx;
    const clipdex_model *model;
    watch_prompt *p;   /* owned copy (prompts_copy) */
    size_t n_p, dim;
    watch_prompt *next_p; /* set by watch_set_prompts, applied by the caller's thread */
    size_t next_n;
    double next_thr;
    int has_next;
    watch_opts o;
    float logit_scale;
    input *in;
    size_t n_in;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a frame, a message or an end arrived; or room in a ring */
    int quit;
    int focus, cand;   /* the focused input, the input leading for it (-1: none) */
    double cand_since;
    double embed_s, score_s; /* caller's thread: image tower, scoring and events */
    size_t last_batch;       /* frames of the latest image-tower call */
    wperson *wp;             /* person mode */
    long cur_track;          /* person mode: the track of the prompt being stepped */
    double detect_s;
};

static double now_mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void watch_opts_default(watch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->every = 0.5;
    o->score = WATCH_COSINE;
    o->threshold = 0.25;
    o->dwell = 0.5;
    o->hold = 0.5;
    o->focus_dwell = 1.0;
    o->batch = 8;
    o->timeout_s = 5;
    o->retry_max = 8;
    o->retries = -1;
    o->crop_every = 1.0;
    o->max_crops = 4;
}

/* One block holding n prompts, their embeddings and texts (free() frees it). */
static watch_prompt *prompts_copy(const watch_prompt *p, size_t n, size_t dim)
{
    size_t text = 0;
    for (size_t i = 0; i < n; i++) text += strlen(p[i].text) + 1;
    size_t head = (n ? n : 1) * sizeof *p, embb = n * dim * sizeof(float);
    head = (head + 15) / 16 * 16;
    char *blk = malloc(head + embb + text);
    if (!blk) return NULL;
    watch_prompt *q = (watch_prompt *)(void *)blk;
    float *e = (float *)(void *)(blk + head);
    char *t = blk + head + embb;
    for (size_t i = 0; i < n; i++) {
        q[i] = p[i];
        memcpy(e + i * dim, p[i].emb, dim * sizeof *e);
        q[i].emb = e + i * dim;
        size_t l = strlen(p[i].text) + 1;
        memcpy(t, p[i].text, l);
        q[i].text = t;
        t += l;
    }
    return q;
}

/* ---- decoder threads ------------------------------------------------------ */

/* Posts a message event for the caller's thread (called locked). */
static void post(input *in, int kind, const char *msg)
{
    in->msg_kind = kind;
    snprintf(in->msg, sizeof in->msg, "%s", msg);
    pthread_cond_broadcast(&in->w->cv);
}

/* Queues a frame: waits for room (file) or drops the oldest (live).
 * Returns 0, or -1 when the watch is quitting (the frame is freed). */
static int push(input *in, wframe fr)
{
    watch *w = in->w;
    pthread_mutex_lock(&w->mu);
    while (!in->live && in->n == RING && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (w->quit) {
        pthread_mutex_unlock(&w->mu);
        wframe_free(&fr);
        return -1;
    }
    if (in->n == RING) { /* live: the oldest goes */
        wframe_free(&in->ring[in->head]);
        in->head = (in->head + 1) % RING;
        in->n--;
        in->st.dropped++;
    }
    in->ring[(in->head + in->n) % RING] = fr;
    in->n++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Decodes one opening of the input until it ends or breaks: 0 ended, -1
 * broken (err says why), 1 quitting. */
static int decode_session(input *in, clipdex_ctx *ctx, char *err, size_t errlen)
{
    watch *w = in->w;
    video_opts vo;
    video_opts_default(&vo);
    vo.every = w->o.every;
    vo.timeout_s = w->o.timeout_s;
    vo.max_side = w->o.max_side;
    vo.live = in->live;
    video_src *src = NULL;
    if (video_open(in->uri, &vo, &src, err, errlen)) return -1;
    video_frame f;
    int rc;
    long dropped0 = 0;
    double t0 = now_mono(), t1;
    while ((rc = video_next(src, &f, err, errlen)) == 1) {
        t1 = now_mono();
        clipdex_image *img = NULL;
        if (clipdex_image_from_pixels(ctx, f.rgb, (uint32_t)f.w, (uint32_t)f.h, (size_t)f.stride,
                                      CLIPDEX_MODE_RGB, NULL, &img) != CLIPDEX_OK) {
            snprintf(err, errlen, "'%s': %s", in->uri, clipdex_ctx_errmsg(ctx));
            rc = -1;
            break;
        }
        wframe fr = {img, f.pts, in->live ? f.wall : 0, NULL, 0};
        char jerr[128];
        if (w->o.thumbs && video_jpeg_encode(f.rgb, f.w, f.h, f.stride, w->o.thumb_side > 0 ? w->o.thumb_side : WATCH_THUMB_SIDE, 5, &fr.thumb,
                                             &fr.thumb_len, jerr, sizeof jerr))
            fr.thumb = NULL, fr.thumb_len = 0; /* the frame is still scored and stored, without one */
        double t2 = now_mono();
        if (push(in, fr)) {
            rc = 1;
            break;
        }
        long d = video_dropped(src);
        pthread_mutex_lock(&w->mu);
        in->st.decode_s += t1 - t0;
        in->st.prep_s += t2 - t1;
        in->st.dropped += d - dropped0;
        pthread_mutex_unlock(&w->mu);
        dropped0 = d;
        t0 = now_mono();
    }
    video_close(src);
    return rc;
}

/* Sleeps up to s seconds, waking early when the watch quits; 1 if quitting. */
static int nap(watch *w, double s)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    double t = ts.tv_sec + ts.tv_nsec * 1e-9 + s;
    ts.tv_sec = (time_t)t;
    ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
    pthread_mutex_lock(&w->mu);
    while (!w->quit && pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0) {
    }
    int q = w->quit;
    pthread_mutex_unlock(&w->mu);
    return q;
}

static void *decoder_main(void *arg)
{
    input *in = arg;
    watch *w = in->w;
    clipdex_ctx *ctx = NULL;
    clipdex_ctx_params cp = clipdex_ctx_params_default();
    cp.n_threads = 1;
    char err[256] = "";
    int state = -1;
    if (clipdex_ctx_new(&ctx, &cp) != CLIPDEX_OK) snprintf(err, sizeof err, "'%s': out of memory", in->uri);
    for (int attempt = 0; ctx;) {
        int rc = decode_session(in, ctx, err, sizeof err);
        if (rc == 1 || (rc == 0 && !in->live)) {
            state = 1;
            break;
        }
        if (!in->live || (w->o.retries >= 0 && attempt >= w->o.retries)) break;
        double wait = fmin(w->o.retry_max, 0.5 * pow(2, attempt < 10 ? attempt : 10));
        char m[400];
        snprintf(m, sizeof m, "%s; reconnecting in %.1f s", rc == 0 ? "the stream ended" : err, wait);
        pthread_mutex_lock(&w->mu);
        post(in, WATCH_RECONNECT, m);
        in->st.reconnects++;
        pthread_mutex_unlock(&w->mu);
        if (nap(w, wait)) {
            state = 1;
            break;
        }
        attempt = rc == 0 ? 0 : attempt + 1; /* a session that ran resets the back-off */
    }
    clipdex_ctx_free(ctx);
    pthread_mutex_lock(&w->mu);
    in->state = state;
    if (state < 0) post(in, WATCH_ERROR, err);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---- scoring and events --------------------------------------------------- */

static void emit(watch *w, watch_cb cb, void *user, watch_event *ev)
{
    (void)w;
    if (cb) cb(user, ev);
}

/* Scores one frame embedding x: cos[j], and score[j] by the chosen rule. */
static void score_frame(const watch *w, const float *x, double *cos, double *score)
{
    double mx = -INFINITY, sum = 0;
    for (size_t j = 0; j < w->n_p; j++) {
        double s = 0;
        for (size_t d = 0; d < w->dim; d++) s += (double)x[d] * w->p[j].emb[d];
        cos[j] = s;
        if (w->logit_scale * s > mx) mx = w->logit_scale * s;
    }
    for (size_t j = 0; j < w->n_p; j++) {
        score[j] = w->o.score == WATCH_SOFTMAX ? exp(w->logit_scale * cos[j] - mx) : cos[j];
        sum += score[j];
    }
    if (w->o.score == WATCH_SOFTMAX)
        for (size_t j = 0; j < w->n_p; j++) score[j] /= sum;
}

/* Positive prompt j matches: over its threshold, and no negative beats it. */
static int matches(const watch *w, size_t j, const double *score)
{
    if (w->p[j].negative) return 0;
    double thr = isnan(w->p[j].threshold) ? w->o.threshold : w->p[j].threshold;
    if (!(score[j] >= thr)) return 0;
    for (size_t k = 0; k < w->n_p; k++)
        if (w->p[k].negative && score[k] > score[j]) return 0;
    return 1;
}

static void event_at(watch_event *ev, int kind, const input *in, int prompt, double score, double cosine,
                     double pts, double wall)
{
    memset(ev, 0, sizeof *ev);
    ev->kind = kind;
    ev->input = (int)in->idx;
    ev->uri = in->uri;
    ev->prompt = prompt;
    ev->prompt_text = prompt >= 0 ? in->w->p[prompt].text : NULL;
    ev->score = score;
    ev->cosine = cosine;
    ev->pts = pts;
    ev->wall = wall;
}

/* The hysteresis of prompt j on input `in` for a frame at pts. */
static void step_match(watch *w, input *in, size_t j, int hit, double score, double cosine, double pts, double wall,
                       watch_cb cb, void *user)
{
    match *m = &in->m[j];
    watch_event ev;
    if (hit && m->state == M_IDLE) *m = (match){M_PENDING, pts, NAN, score, cosine, w->cur_track};
    else if (!hit && m->state == M_PENDING) m->state = M_IDLE;
    if (m->state == M_PENDING && pts - m->first >= w->o.dwell) {
        m->state = M_ACTIVE;
        event_at(&ev, WATCH_START, in, (int)j, m->score, m->cosine, m->first, wall);
        ev.track_id = m->track ? m->track : w->cur_track;
        emit(w, cb, user, &ev);
    }
    if (m->state != M_ACTIVE) return;
    if (hit) {
        m->miss = NAN;
        m->score = score, m->cosine = cosine, m->track = w->cur_track;
        return;
    }
    if (isnan(m->miss)) m->miss = pts;
    if (pts - m->miss >= w->o.hold) {
        event_at(&ev, WATCH_END, in, (int)j, score, cosine, m->miss, wall);
        ev.track_id = m->track;
        emit(w, cb, user, &ev);
        m->state = M_IDLE;
    }
}

/* Moves the focus to the input that has led for focus_dwell of its time. */
static void step_focus(watch *w, double wall, watch_cb cb, void *user)
{
    int best = -1;
    for (size_t i = 0; i < w->n_in; i++)
        if (isfinite(w->in[i].lead) && (best < 0 || w->in[i].lead > w->in[best].lead)) best = (int)i;
    if (best < 0 || best == w->focus) {
        w->cand = -1;
        return;
    }
    input *b = &w->in[best];
    if (w->cand != best) {
        w->cand = best;
        w->cand_since = b->last_pts;
    }
    if (w->focus < 0 || b->last_pts - w->cand_since >= w->o.focus_dwell) {
        w->focus = best;
        w->cand = -1;
        size_t top = 0;
        for (size_t j = 0; j < w->n_p; j++)
            if (b->m[j].state == M_ACTIVE && b->m[j].score >= b->m[top].score) top = j;
        watch_event ev;
        event_at(&ev, WATCH_FOCUS, b, (int)top, b->lead, b->m[top].cosine, b->last_pts, wall);
        ev.track_id = b->m[top].track;
        emit(w, cb, user, &ev);
    }
}

/* The events of one scored frame of `in` (scores given): FRAME, then the
 * match and focus rules. */
static void frame_events(watch *w, input *in, const wframe *fr, const float *x, const double *cos,
                         const double *score, const long *track, size_t n_tracks, watch_cb cb, void *user)
{
    const double pts = fr->pts, wall = fr->wall;
    watch_event ev;
    event_at(&ev, WATCH_FRAME, in, -1, 0, 0, pts, wall);
    ev.n_prompts = w->n_p;
    ev.scores = score;
    ev.cosines = cos;
    ev.emb = x;
    ev.thumb = fr->thumb;
    ev.thumb_len = fr->thumb_len;
    ev.n_tracks = n_tracks;
    emit(w, cb, user, &ev);
    in->lead = -INFINITY;
    for (size_t j = 0; j < w->n_p; j++) {
        /* person mode: a frame where no tracked person has scores matches nothing */
        int hit = (!track || track[j]) && matches(w, j, score);
        w->cur_track = track ? track[j] : 0;
        step_match(w, in, j, hit, score[j], cos[j], pts, wall, cb, user);
        if (hit && score[j] > in->lead) in->lead = score[j];
    }
    w->cur_track = 0;
    in->last_pts = pts;
    in->st.frames++;
    if (in->st.frames == 1) in->t0 = now_mono();
    double el = now_mono() - in->t0;
    in->st.fps = el > 0 ? (double)(in->st.frames - 1) / el : 0;
    step_focus(w, wall, cb, user);
}

static void score_input_frame(watch *w, input *in, const float *x, const wframe *fr, double *cos,
                              double *score, watch_cb cb, void *user)
{
    score_frame(w, x, cos, score);
    frame_events(w, in, fr, x, cos, score, NULL, 0, cb, user);
}

/* An input ended: its open matches end at its last time. */
static void close_input(watch *w, input *in, watch_cb cb, void *user)
{
    watch_event ev;
    for (size_t j = 0; j < w->n_p; j++) {
        match *m = &in->m[j];
        if (m->state == M_ACTIVE) {
            event_at(&ev, WATCH_END, in, (int)j, m->score, m->cosine, isnan(m->miss) ? in->last_pts : m->miss, 0);
            ev.track_id = m->track;
            emit(w, cb, user, &ev);
        }
        m->state = M_IDLE;
    }
    in->lead = -INFINITY;
    event_at(&ev, WATCH_EOS, in, -1, 0, 0, in->last_pts, 0);
    emit(w, cb, user, &ev);
    in->eos_sent = 1;
    in->st.done = in->state;
}

/* ---- the caller's loop ---------------------------------------------------- */

/* 1 if the earliest queued frame of input b may be scored now: files are
 * scored in time order across inputs, so a file waits for every other
 * running file to have a frame queued (live inputs never wait). */
static int may_take(const watch *w, size_t b)
{
    if (w->in[b].live) return 1;
    for (size_t i = 0; i < w->n_in; i++)
        if (i != b && !w->in[i].live && w->in[i].state == 0 && w->in[i].n == 0) return 0;
    return 1;
}

/* Takes up to `max` frames, earliest time first (called locked). */
static size_t take(watch *w, wframe *fr, size_t *from, size_t max)
{
    size_t n = 0;
    while (n < max) {
        long best = -1;
        for (size_t i = 0; i < w->n_in; i++) {
            const input *in = &w->in[i];
            if (in->n && (best < 0 || in->ring[in->head].pts < w->in[best].ring[w->in[best].head].pts))
                best = (long)i;
        }
        if (best < 0 || !may_take(w, (size_t)best)) break;
        input *in = &w->in[best];
        fr[n] = in->ring[in->head];
        from[n++] = (size_t)best;
        in->head = (in->head + 1) % RING;
        in->n--;
    }
    if (n) pthread_cond_broadcast(&w->cv);
    return n;
}

/* Delivers pending messages and ends (called locked); returns the number of
 * inputs still running or holding frames. */
static size_t housekeeping(watch *w, watch_cb cb, void *user)
{
    size_t alive = 0;
    for (size_t i = 0; i < w->n_in; i++) {
        input *in = &w->in[i];
        if (in->msg_kind) {
            watch_event ev;
            event_at(&ev, in->msg_kind, in, -1, 0, 0, in->last_pts, 0);
            ev.msg = in->msg;
            in->msg_kind = 0;
            emit(w, cb, user, &ev);
        }
        if (in->state == 0 || in->n) alive++;
        else if (!in->eos_sent) close_input(w, in, cb, user);
    }
    return alive;
}

/* Person mode, one frame: detect, track, embed the chosen crops (TRACK
 * events), then the frame's score per prompt is the best over its scored
 * tracks (0 without any). */
static int person_frame(watch *w, input *in, const wframe *fr, watch_cb cb, void *user)
{
    wperson_crop crops[64];
    size_t max = (size_t)(w->o.max_crops < 1 ? 1 : w->o.max_crops > 64 ? 64 : w->o.max_crops);
    double t0 = now_mono();
    int nc = wperson_frame(w->wp, w->ctx, in->idx, fr->img, fr->pts, crops, max);
    double t1 = now_mono();
    w->detect_s += t1 - t0;
    if (nc < 0) {
        report_error("watch: the detector failed on '%s': %s", in->uri, clipdex_ctx_errmsg(w->ctx));
        return APP_FAIL;
    }
    double *cos = malloc((4 * w->n_p + 1) * sizeof *cos);
    long *track = malloc((w->n_p + 1) * sizeof *track);
    /* the crops, and with opts.embed_frames the whole frame after them, in one batch */
    size_t n_img = (size_t)nc + (w->o.embed_frames ? 1 : 0);
    float *emb = n_img ? malloc(n_img * w->dim * sizeof *emb) : NULL;
    int rc = !cos || !track || (n_img && !emb) ? APP_FAIL : 0;
    if (!rc && n_img) {
        const clipdex_image *imgs[65];
        for (int k = 0; k < nc; k++) imgs[k] = crops[k].img;
        if (w->o.embed_frames) imgs[nc] = fr->img;
        if (clipdex_image_embed(w->ctx, w->model, imgs, n_img, emb, n_img * w->dim, 0) != CLIPDEX_OK) {
            report_error("watch: the image tower failed: %s", clipdex_ctx_errmsg(w->ctx));
            rc = APP_FAIL;
        }
        w->last_batch = n_img;
    }
    double t2 = now_mono();
    w->embed_s += t2 - t1;
    double *fcos = cos + 2 * w->n_p, *fscore = cos + 3 * w->n_p;
    for (int k = 0; !rc && k < nc; k++) {
        const float *x = emb + (size_t)k * w->dim;
        score_frame(w, x, cos, cos + w->n_p);
        if (wperson_scored(w->wp, in->idx, crops[k].track_id, fr->pts, cos, cos + w->n_p, w->n_p)) rc = APP_FAIL;
        watch_event ev;
        event_at(&ev, WATCH_TRACK, in, -1, 0, 0, fr->pts, fr->wall);
        ev.track_id = crops[k].track_id;
        ev.box[0] = crops[k].box.x0, ev.box[1] = crops[k].box.y0, ev.box[2] = crops[k].box.x1, ev.box[3] = crops[k].box.y1;
        ev.det_score = crops[k].score;
        ev.width = clipdex_image_width(fr->img);
        ev.height = clipdex_image_height(fr->img);
        ev.n_prompts = w->n_p;
        ev.cosines = cos;
        ev.scores = cos + w->n_p;
        ev.emb = x;
        emit(w, cb, user, &ev);
    }
    for (int k = 0; k < nc; k++) clipdex_image_free(crops[k].img);
    if (!rc) {
        size_t nt;
        const wperson_track *t = wperson_tracks(w->wp, in->idx, &nt);
        for (size_t j = 0; j < w->n_p; j++) {
            fcos[j] = fscore[j] = 0;
            track[j] = 0;
            for (size_t k = 0; k < nt; k++)
                if (t[k].scored && (!track[j] || t[k].score[j] > fscore[j])) {
                    fcos[j] = t[k].cos[j], fscore[j] = t[k].score[j];
                    track[j] = t[k].id;
                }
        }
        frame_events(w, in, fr, w->o.embed_frames ? emb + (size_t)nc * w->dim : NULL, fcos, fscore, track, nt, cb,
                     user);
    }
    w->score_s += now_mono() - t2;
    free(cos);
    free(track);
    free(emb);
    return rc;
}

static int embed_batch(watch *w, wframe *fr, size_t *from, size_t n, float *emb, watch_cb cb, void *user)
{
    if (w->wp) {
        for (size_t k = 0; k < n; k++) {
            int rc = person_frame(w, &w->in[from[k]], &fr[k], cb, user);
            if (rc) return rc;
        }
        return 0;
    }
    const clipdex_image *imgs[64];
    for (size_t k = 0; k < n; k++) imgs[k] = fr[k].img;
    double t0 = now_mono();
    int st = clipdex_image_embed(w->ctx, w->model, imgs, n, emb, n * w->dim, 0);
    double t1 = now_mono();
    w->embed_s += t1 - t0;
    w->last_batch = n;
    if (st != CLIPDEX_OK) {
        report_error("watch: the image tower failed: %s", clipdex_ctx_errmsg(w->ctx));
        return APP_FAIL;
    }
    double *cos = malloc(2 * w->n_p * sizeof *cos);
    if (!cos) return APP_FAIL;
    for (size_t k = 0; k < n; k++)
        score_input_frame(w, &w->in[from[k]], emb + k * w->dim, &fr[k], cos, cos + w->n_p, cb, user);
    free(cos);
    w->score_s += now_mono() - t1;
    return 0;
}

/* Switches to prompts set by watch_set_prompts (caller's thread): the open
 * matches of the old prompts end at each input's latest time. 0 or -1. */
static int apply_prompts(watch *w, watch_cb cb, void *user)
{
    pthread_mutex_lock(&w->mu);
    watch_prompt *np = w->has_next ? w->next_p : NULL;
    size_t nn = w->next_n;
    double thr = w->next_thr;
    int has = w->has_next;
    w->has_next = 0, w->next_p = NULL;
    pthread_mutex_unlock(&w->mu);
    if (!has) return 0;
    match **m = calloc(w->n_in ? w->n_in : 1, sizeof *m);
    for (size_t i = 0; m && i < w->n_in; i++)
        if (!(m[i] = calloc(nn ? nn : 1, sizeof **m))) {
            for (size_t k = 0; k < i; k++) free(m[k]);
            free(m);
            m = NULL;
        }
    if (!m) {
        free(np);
        return -1;
    }
    for (size_t i = 0; i < w->n_in; i++) {
        input *in = &w->in[i];
        for (size_t j = 0; j < w->n_p; j++)
            if (in->m[j].state == M_ACTIVE) {
                watch_event ev;
                event_at(&ev, WATCH_END, in, (int)j, in->m[j].score, in->m[j].cosine, in->last_pts, 0);
                ev.track_id = in->m[j].track;
                emit(w, cb, user, &ev);
            }
        free(in->m);
        in->m = m[i];
        in->lead = -INFINITY;
    }
    free(m);
    free(w->p);
    w->p = np, w->n_p = nn;
    if (w->wp) wperson_reset_scores(w->wp);
    if (!isnan(thr)) w->o.threshold = thr;
    w->focus = w->cand = -1;
    return 0;
}

int watch_set_prompts(watch *w, const watch_prompt *prompts, size_t n_prompts, double threshold)
{
    watch_prompt *np = prompts_copy(prompts, n_prompts, w->dim);
    if (!np) return -1;
    pthread_mutex_lock(&w->mu);
    free(w->next_p);
    w->next_p = np, w->next_n = n_prompts, w->next_thr = threshold, w->has_next = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int watch_run(watch *w, watch_cb cb, void *user, volatile sig_atomic_t *stop)
{
    size_t max = (size_t)(w->o.batch < 1 ? 1 : w->o.batch > 64 ? 64 : w->o.batch);
    wframe fr[64];
    size_t from[64];
    float *emb = malloc(max * w->dim * sizeof *emb);
    if (!emb) {
        report_error("out of memory");
        return APP_FAIL;
    }
    int rc = 0;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        size_t n = 0, alive;
        while ((alive = housekeeping(w, cb, user)) > 0 && !(n = take(w, fr, from, max)) && !(stop && *stop)) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 200000000L; /* wake to notice *stop */
            if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
            pthread_cond_timedwait(&w->cv, &w->mu, &ts);
        }
        pthread_mutex_unlock(&w->mu);
        if (apply_prompts(w, cb, user)) rc = APP_FAIL;
        if (n && !rc) rc = embed_batch(w, fr, from, n, emb, cb, user);
        for (size_t k = 0; k < n; k++) wframe_free(&fr[k]);
        if (rc || alive == 0 || (stop && *stop)) break;
    }
    for (size_t i = 0; i < w->n_in; i++) /* stopped early: the open matches end now */
        if (!w->in[i].eos_sent) close_input(w, &w->in[i], cb, user);
    free(emb);
    int failed = 0;
    for (size_t i = 0; i < w->n_in; i++) failed += w->in[i].state < 0;
    if (!rc && failed == (int)w->n_in) rc = APP_FAIL;
    return rc;
}

/* ---- life cycle ----------------------------------------------------------- */

int watch_start(clipdex_ctx *ctx, const clipdex_model *model, const char *const *uris, size_t n_inputs,
                const watch_prompt *prompts, size_t n_prompts, size_t dim, const watch_opts *o, watch **out)
{
    *out = NULL;
    watch *w = calloc(1, sizeof *w);
    if (!w || !(w->in = calloc(n_inputs, sizeof *w->in))) {
        free(w);
        report_error("out of memory");
        return APP_FAIL;
    }
    clipdex_model_info info;
    w->logit_scale = clipdex_model_get_info(model, &info) == CLIPDEX_OK ? info.logit_scale : 100.0f;
    w->ctx = ctx, w->model = model, w->n_p = n_prompts, w->dim = dim, w->o = *o;
    if (!(w->p = prompts_copy(prompts, n_prompts, dim))) {
        free(w->in);
        free(w);
        report_error("out of memory");
        return APP_FAIL;
    }
    w->n_in = n_inputs;
    w->focus = w->cand = -1;
    if (o->detector) {
        wperson_opts po;
        wperson_opts_default(&po);
        if (o->crop_every >= 0) po.every_s = o->crop_every;
        if (o->max_crops > 0) po.max_crops = o->max_crops;
        if (!(w->wp = wperson_new(o->detector, n_inputs, &po))) {
            free(w->p);
            free(w->in);
            free(w);
            report_error("out of memory");
            return APP_FAIL;
        }
    }
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    for (size_t i = 0; i < n_inputs; i++) {
        input *in = &w->in[i];
        *in = (input){.w = w, .idx = i, .uri = uris[i], .live = video_uri_is_live(uris[i]), .lead = -INFINITY};
        if (!(in->m = calloc(n_prompts ? n_prompts : 1, sizeof *in->m))) {
            report_error("out of memory");
            watch_free(w);
            return APP_FAIL;
        }
    }
    for (size_t i = 0; i < n_inputs; i++) {
        if (pthread_create(&w->in[i].th, NULL, decoder_main, &w->in[i]) != 0) {
            report_error("cannot start a decoder thread");
            watch_free(w);
            return APP_FAIL;
        }
        w->in[i].th_on = 1;
    }
    *out = w;
    return 0;
}

void watch_get_stats(const watch *w, size_t i, watch_stats *out)
{
    pthread_mutex_lock((pthread_mutex_t *)&w->mu);
    *out = w->in[i].st;
    pthread_mutex_unlock((pthread_mutex_t *)&w->mu);
}

void watch_get_times(const watch *w, double *embed_s, double *score_s, size_t *last_batch)
{
    *embed_s = w->embed_s;
    *score_s = w->score_s;
    if (last_batch) *last_batch = w->last_batch;
}

void watch_free(watch *w)
{
    if (!w) return;
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < w->n_in; i++) {
        input *in = &w->in[i];
        if (in->th_on) pthread_join(in->th, NULL);
        for (size_t k = 0; k < in->n; k++) wframe_free(&in->ring[(in->head + k) % RING]);
        free(in->m);
    }
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w->p);
    free(w->next_p);
    free(w->in);
    wperson_free(w->wp);
    free(w);
}

double watch_get_detect_s(const watch *w) { return w->detect_s; }
