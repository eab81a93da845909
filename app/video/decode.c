/*
 * decode.c - video input with FFmpeg (see decode.h): open, pick the best
 * video stream, decode, sample by pts, convert to RGB24 with swscale, score
 * scene changes on a 64x64 grey copy.
 *
 * Invariants: every blocking call (open, probe, read) runs under the
 * interrupt callback, which gives up after timeout_s without progress or
 * when the source is being closed. A file is decoded in the caller's thread;
 * a live source by a reader thread that keeps only the newest decoded frame
 * in `slot` (mutex + condition), so video_next never sees a backlog. The
 * RGB buffer and the grey copies belong to the caller's side only.
 */
#include "video/decode.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libavcodec/avcodec.h>
#include <libavdevice/avdevice.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>

#include "store/walk.h"

#define SCENE_SIDE 64
/* Consecutive packets that fail to decode before the stream is given up. */
#define VIDEO_MAX_BAD_PACKETS 64

struct video_src {
    char *uri;
    video_opts o;
    int live;
    AVFormatContext *fmt;
    AVCodecContext *dec;
    int vstream;
    double tb;          /* stream time base, seconds */
    int64_t start;      /* stream start time, time-base units (0 if unknown) */
    AVPacket *pkt;
    AVFrame *frame;     /* the frame being decoded (reader side) */
    int eof_sent;       /* the decoder was flushed */
    int n_bad;          /* consecutive packets that failed to decode */
    long n_frames;      /* frames decoded */
    double last_pts_dec;/* pts of the last decoded frame (for missing pts) */
    char dec_err[128];  /* the last decode error */

    double deadline;    /* interrupt: monotonic seconds */
    int stop;           /* atomic: the source is being closed */

    /* caller side */
    AVFrame *cur;       /* the frame being considered */
    struct SwsContext *sws, *sws_grey;
    uint8_t *rgb;
    int rgb_w, rgb_h, rgb_stride;
    uint8_t grey[2][SCENE_SIDE * SCENE_SIDE];
    int have_prev;      /* grey[0] holds the previous returned frame */
    double prev_mafd;
    double last_pts;    /* pts of the last returned frame */
    int have_last;
    long returned;
    long n_seen;        /* decoded frames the caller side has looked at */

    /* live: reader thread */
    pthread_t thread;
    int thread_on;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    AVFrame *slot;      /* newest decoded frame, not yet taken */
    double slot_wall;
    int slot_full;
    int reader_state;   /* 0 running, 1 end of stream, -1 error */
    char reader_err[256];
    long dropped_live;
};

static double now_mono(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static double now_wall(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void arm(video_src *s)
{
    s->deadline = now_mono() + s->o.timeout_s;
}

static int stopping(video_src *s)
{
    return __atomic_load_n(&s->stop, __ATOMIC_RELAXED);
}

static int interrupt_cb(void *opaque)
{
    video_src *s = opaque;
    return stopping(s) || now_mono() > s->deadline;
}

/* FFmpeg's own log lines never reach the terminal (only app/cli prints):
 * the last error line of each thread is kept and added to our messages. */
static _Thread_local char av_last_log[160];
static pthread_once_t log_once = PTHREAD_ONCE_INIT;

static void log_cb(void *avcl, int level, const char *fmt, va_list ap)
{
    if (level > AV_LOG_ERROR) return;
    vsnprintf(av_last_log, sizeof av_last_log, fmt, ap);
    size_t n = strlen(av_last_log);
    while (n && (av_last_log[n - 1] == '\n' || av_last_log[n - 1] == '.')) av_last_log[--n] = 0;
}

static void log_init(void)
{
    av_log_set_callback(log_cb);
}

/* FFmpeg's text for `rc`, with the last logged error when there is one. */
static void av_msg(int rc, char *buf, size_t n)
{
    char e[96];
    if (av_strerror(rc, e, sizeof e) < 0) snprintf(e, sizeof e, "error %d", rc);
    if (av_last_log[0])
        snprintf(buf, n, "%.60s (%.60s)", e, av_last_log);
    else
        snprintf(buf, n, "%.120s", e);
    av_last_log[0] = 0;
}

void video_opts_default(video_opts *o)
{
    memset(o, 0, sizeof *o);
    o->live = -1;
}

int video_uri_is_live(const char *uri)
{
    static const char *const schemes[] = {"rtsp:", "rtsps:", "rtmp:", "rtmps:", "http:", "https:",
                                          "udp:", "rtp:", "srt:", "tcp:", "hls:", "rtsp-listen:"};
    if (strcmp(uri, "-") == 0 || strncmp(uri, "/dev/video", 10) == 0) return 1;
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
        if (strncasecmp(uri, schemes[i], strlen(schemes[i])) == 0) return 1;
    return 0;
}

int video_path_is_video(const char *path)
{
    return walk_is_video_name(path);
}

/* Opens the container: stdin as "pipe:0", /dev/video* through V4L2. */
static int open_input(video_src *s, char *err, size_t errlen)
{
    const char *url = strcmp(s->uri, "-") == 0 ? "pipe:0" : s->uri;
    const AVInputFormat *ifmt = NULL;
    AVDictionary *opt = NULL;
    char listen_url[1024];
    if (strncmp(s->uri, "rtsp-listen://", 14) == 0) { /* be the RTSP server a camera or encoder pushes to */
        snprintf(listen_url, sizeof listen_url, "rtsp://%s", s->uri + 14);
        url = listen_url;
        av_dict_set(&opt, "rtsp_flags", "listen", 0);
    }
    if (strncmp(s->uri, "/dev/video", 10) == 0) {
        avdevice_register_all();
        ifmt = av_find_input_format("video4linux2");
    }
    if (strncasecmp(url, "rtsp", 4) == 0) av_dict_set(&opt, "rtsp_transport", "tcp", 0);
    pthread_once(&log_once, log_init);
    av_last_log[0] = 0;
    s->fmt = avformat_alloc_context();
    if (!s->fmt) {
        snprintf(err, errlen, "cannot open '%s': out of memory", s->uri);
        return -1;
    }
    s->fmt->interrupt_callback.callback = interrupt_cb;
    s->fmt->interrupt_callback.opaque = s;
    arm(s);
    int rc = avformat_open_input(&s->fmt, url, ifmt, &opt);
    av_dict_free(&opt);
    if (rc < 0) {
        char m[128];
        av_msg(rc, m, sizeof m);
        if (now_mono() > s->deadline)
            snprintf(m, sizeof m, "no answer within %.0f s", s->o.timeout_s);
        snprintf(err, errlen, "cannot open '%s': %s", s->uri, m);
        return -1;
    }
    arm(s);
    rc = avformat_find_stream_info(s->fmt, NULL);
    if (rc < 0) {
        char m[128];
        av_msg(rc, m, sizeof m);
        snprintf(err, errlen, "cannot read '%s': %s", s->uri, m);
        return -1;
    }
    return 0;
}

static int check_size(const video_src *s, int w, int h, char *err, size_t errlen)
{
    if (w <= 0 || h <= 0) {
        snprintf(err, errlen, "'%s': video stream has no valid size (%dx%d)", s->uri, w, h);
        return -1;
    }
    if (w > s->o.max_side || h > s->o.max_side) {
        snprintf(err, errlen, "'%s': video is %dx%d, over the %d-pixel limit", s->uri, w, h,
                 s->o.max_side);
        return -1;
    }
    return 0;
}

static int open_decoder(video_src *s, char *err, size_t errlen)
{
    const AVCodec *codec = NULL;
    int idx = av_find_best_stream(s->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (idx < 0 || !codec) {
        if (idx == AVERROR_DECODER_NOT_FOUND)
            snprintf(err, errlen, "'%s': no decoder for its video stream", s->uri);
        else
            snprintf(err, errlen, "'%s' has no video stream", s->uri);
        return -1;
    }
    AVStream *st = s->fmt->streams[idx];
    if (check_size(s, st->codecpar->width, st->codecpar->height, err, errlen)) return -1;
    s->vstream = idx;
    s->tb = av_q2d(st->time_base);
    s->start = st->start_time != AV_NOPTS_VALUE ? st->start_time : 0;
    s->dec = avcodec_alloc_context3(codec);
    if (!s->dec || avcodec_parameters_to_context(s->dec, st->codecpar) < 0) {
        snprintf(err, errlen, "'%s': cannot set up the %s decoder", s->uri, codec->name);
        return -1;
    }
    s->dec->max_pixels = (int64_t)s->o.max_side * s->o.max_side;
    s->dec->thread_count = s->live ? 1 : 0;
    int rc = avcodec_open2(s->dec, codec, NULL);
    if (rc < 0) {
        char m[128];
        av_msg(rc, m, sizeof m);
        snprintf(err, errlen, "'%s': cannot open the %s decoder: %s", s->uri, codec->name, m);
        return -1;
    }
    for (unsigned i = 0; i < s->fmt->nb_streams; i++)
        if ((int)i != idx) s->fmt->streams[i]->discard = AVDISCARD_ALL;
    return 0;
}

/* The frame's pts in seconds from the stream's start; frames without a pts
 * follow the last one by the frame rate (or 1/25 s). */
static double frame_pts(video_src *s, const AVFrame *f)
{
    int64_t p = f->best_effort_timestamp;
    double t;
    if (p != AV_NOPTS_VALUE) {
        t = (double)(p - s->start) * s->tb;
    } else {
        AVRational fr = s->fmt->streams[s->vstream]->avg_frame_rate;
        double step = fr.num > 0 && fr.den > 0 ? av_q2d(av_inv_q(fr)) : 0.04;
        t = s->n_seen ? s->last_pts_dec + step : 0.0;
    }
    s->last_pts_dec = t;
    s->n_seen++;
    return t;
}

/* Decodes the next frame into s->frame: 1 frame, 0 end, -1 error. */
static int decode_one(video_src *s, char *err, size_t errlen)
{
    for (;;) {
        int rc = avcodec_receive_frame(s->dec, s->frame);
        if (rc == 0) {
            s->n_bad = 0;
            if (check_size(s, s->frame->width, s->frame->height, err, errlen)) return -1;
            s->n_frames++;
            return 1;
        }
        if (rc == AVERROR_EOF) break;
        if (rc != AVERROR(EAGAIN)) av_msg(rc, s->dec_err, sizeof s->dec_err);
        if (s->eof_sent) break;
        arm(s);
        rc = av_read_frame(s->fmt, s->pkt);
        if (rc == AVERROR_EOF || (rc < 0 && !s->live && avio_feof(s->fmt->pb))) {
            avcodec_send_packet(s->dec, NULL);
            s->eof_sent = 1;
            continue;
        }
        if (rc < 0) {
            char m[128];
            av_msg(rc, m, sizeof m);
            if (stopping(s)) return 0;
            if (now_mono() > s->deadline)
                snprintf(m, sizeof m, "no data for %.0f s", s->o.timeout_s);
            snprintf(err, errlen, "cannot read '%s': %s", s->uri, m);
            return -1;
        }
        if (s->pkt->stream_index == s->vstream) {
            rc = avcodec_send_packet(s->dec, s->pkt);
            if (rc < 0 && rc != AVERROR(EAGAIN)) {
                av_msg(rc, s->dec_err, sizeof s->dec_err);
                if (++s->n_bad >= VIDEO_MAX_BAD_PACKETS) {
                    av_packet_unref(s->pkt);
                    snprintf(err, errlen, "'%s': %d packets in a row fail to decode: %s", s->uri,
                             s->n_bad, s->dec_err);
                    return -1;
                }
            }
        }
        av_packet_unref(s->pkt);
    }
    if (s->n_frames == 0) {
        snprintf(err, errlen, "'%s': no video frame could be decoded%s%s", s->uri,
                 s->dec_err[0] ? ": " : "", s->dec_err);
        return -1;
    }
    return 0;
}

/* Reader thread of a live source: decode continuously, keep the newest. */
static void *reader_main(void *arg)
{
    video_src *s = arg;
    char err[256] = "";
    for (;;) {
        int rc = decode_one(s, err, sizeof err);
        pthread_mutex_lock(&s->mu);
        if (rc <= 0 || stopping(s)) {
            s->reader_state = rc < 0 && !stopping(s) ? -1 : 1;
            snprintf(s->reader_err, sizeof s->reader_err, "%s", err);
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return NULL;
        }
        if (s->slot_full) s->dropped_live++;
        av_frame_unref(s->slot);
        av_frame_move_ref(s->slot, s->frame);
        s->slot_wall = now_wall();
        s->slot_full = 1;
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
}

int video_open(const char *uri, const video_opts *o, video_src **out, char *err, size_t errlen)
{
    *out = NULL;
    video_src *s = calloc(1, sizeof *s);
    if (!s || !(s->uri = strdup(uri))) {
        free(s);
        snprintf(err, errlen, "cannot open '%s': out of memory", uri);
        return -1;
    }
    if (o) s->o = *o; else video_opts_default(&s->o);
    if (s->o.max_side <= 0) s->o.max_side = VIDEO_MAX_SIDE;
    if (s->o.timeout_s <= 0) s->o.timeout_s = VIDEO_DEFAULT_TIMEOUT;
    if (s->o.every < 0) s->o.every = 0;
    s->live = s->o.live < 0 ? video_uri_is_live(uri) : s->o.live != 0;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->pkt = av_packet_alloc();
    s->frame = av_frame_alloc();
    s->cur = av_frame_alloc();
    s->slot = av_frame_alloc();
    if (!s->pkt || !s->frame || !s->cur || !s->slot) {
        snprintf(err, errlen, "cannot open '%s': out of memory", uri);
        video_close(s);
        return -1;
    }
    if (open_input(s, err, errlen) || open_decoder(s, err, errlen)) {
        video_close(s);
        return -1;
    }
    if (s->live) {
        if (pthread_create(&s->thread, NULL, reader_main, s) != 0) {
            snprintf(err, errlen, "cannot open '%s': cannot start a thread", uri);
            video_close(s);
            return -1;
        }
        s->thread_on = 1;
    }
    *out = s;
    return 0;
}

/* The next decoded frame into s->cur with its wall time: 1, 0 end, -1. */
static int next_decoded(video_src *s, double *wall, char *err, size_t errlen)
{
    if (!s->live) {
        int rc = decode_one(s, err, errlen);
        if (rc <= 0) return rc;
        av_frame_unref(s->cur);
        av_frame_move_ref(s->cur, s->frame);
        *wall = now_wall();
        return 1;
    }
    pthread_mutex_lock(&s->mu);
    while (!s->slot_full && s->reader_state == 0) pthread_cond_wait(&s->cv, &s->mu);
    int rc = 1;
    if (s->slot_full) {
        av_frame_unref(s->cur);
        av_frame_move_ref(s->cur, s->slot);
        *wall = s->slot_wall;
        s->slot_full = 0;
    } else if (s->reader_state < 0) {
        snprintf(err, errlen, "%s", s->reader_err);
        rc = -1;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Output size: fit inside out_w x out_h (0 = no bound), never enlarged. */
static void out_size(const video_src *s, int w, int h, int *ow, int *oh)
{
    double k = 1.0;
    if (s->o.out_w > 0 && s->o.out_w < w * k) k = (double)s->o.out_w / w;
    if (s->o.out_h > 0 && s->o.out_h < h * k) k = (double)s->o.out_h / h;
    *ow = k < 1.0 ? (int)fmax(1.0, floor(w * k + 0.5)) : w;
    *oh = k < 1.0 ? (int)fmax(1.0, floor(h * k + 0.5)) : h;
}

/* The JPEG-range YUV formats as their plain twins (swscale deprecates
 * them); the range then comes from the frame. */
static enum AVPixelFormat plain_format(enum AVPixelFormat f, int *full)
{
    static const enum AVPixelFormat j[][2] = {
        {AV_PIX_FMT_YUVJ420P, AV_PIX_FMT_YUV420P}, {AV_PIX_FMT_YUVJ422P, AV_PIX_FMT_YUV422P},
        {AV_PIX_FMT_YUVJ444P, AV_PIX_FMT_YUV444P}, {AV_PIX_FMT_YUVJ440P, AV_PIX_FMT_YUV440P},
        {AV_PIX_FMT_YUVJ411P, AV_PIX_FMT_YUV411P}};
    for (size_t i = 0; i < sizeof j / sizeof *j; i++)
        if (f == j[i][0]) {
            *full = 1;
            return j[i][1];
        }
    return f;
}

/* Grey SCENE_SIDE^2 copy of s->cur into grey[1]. */
static int make_grey(video_src *s)
{
    AVFrame *f = s->cur;
    int full = 0;
    s->sws_grey = sws_getCachedContext(s->sws_grey, f->width, f->height,
                                       plain_format(f->format, &full), SCENE_SIDE,
                                       SCENE_SIDE, AV_PIX_FMT_GRAY8, SWS_AREA, NULL, NULL, NULL);
    if (!s->sws_grey) return -1;
    uint8_t *dst[4] = {s->grey[1]};
    int ls[4] = {SCENE_SIDE};
    sws_scale(s->sws_grey, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, ls);
    return 0;
}

/* FFmpeg's scene score (the select filter's): the mean absolute difference
 * to the previous returned frame, less what the frame before already had
 * (so a steady motion is not a cut), over 100, clipped to 0..1. */
static double scene_score(video_src *s, double *mafd_out)
{
    if (!s->have_prev) {
        *mafd_out = 0;
        return 0;
    }
    long sad = 0;
    for (int i = 0; i < SCENE_SIDE * SCENE_SIDE; i++) sad += abs(s->grey[0][i] - s->grey[1][i]);
    double mafd = (double)sad / (SCENE_SIDE * SCENE_SIDE);
    double diff = fabs(mafd - s->prev_mafd);
    *mafd_out = mafd;
    return fmin(1.0, fmax(0.0, fmin(mafd, diff) / 100.0));
}

/* A scaler for frame `f` to RGB24 ow x oh, with the frame's YUV matrix and
 * range (as FFmpeg's scale filter does), bicubic. */
static struct SwsContext *rgb_scaler(struct SwsContext *c, const AVFrame *f, int ow, int oh)
{
    int full = f->color_range == AVCOL_RANGE_JPEG;
    enum AVPixelFormat fmt = plain_format(f->format, &full);
    c = sws_getCachedContext(c, f->width, f->height, fmt, ow, oh, AV_PIX_FMT_RGB24, SWS_BICUBIC,
                             NULL, NULL, NULL);
    if (!c) return NULL;
    int *inv, src_range, *tab, dst_range, bright, contrast, sat;
    if (sws_getColorspaceDetails(c, &inv, &src_range, &tab, &dst_range, &bright, &contrast, &sat) >=
        0) {
        const int *coef = sws_getCoefficients(f->colorspace == AVCOL_SPC_UNSPECIFIED
                                                  ? SWS_CS_DEFAULT
                                                  : (int)f->colorspace);
        sws_setColorspaceDetails(c, coef, full, tab, dst_range, bright, contrast, sat);
    }
    return c;
}

static int to_rgb(video_src *s, char *err, size_t errlen)
{
    AVFrame *f = s->cur;
    int ow, oh;
    out_size(s, f->width, f->height, &ow, &oh);
    s->sws = rgb_scaler(s->sws, f, ow, oh);
    if (!s->sws) {
        snprintf(err, errlen, "'%s': cannot convert %s frames to RGB", s->uri,
                 av_get_pix_fmt_name(f->format) ? av_get_pix_fmt_name(f->format) : "these");
        return -1;
    }
    if (ow != s->rgb_w || oh != s->rgb_h) {
        free(s->rgb);
        s->rgb_stride = (3 * ow + 31) & ~31;
        s->rgb = malloc((size_t)s->rgb_stride * oh + 32);
        if (!s->rgb) {
            s->rgb_w = s->rgb_h = 0;
            snprintf(err, errlen, "'%s': out of memory for a %dx%d frame", s->uri, ow, oh);
            return -1;
        }
        s->rgb_w = ow;
        s->rgb_h = oh;
    }
    uint8_t *dst[4] = {s->rgb};
    int ls[4] = {s->rgb_stride};
    sws_scale(s->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, ls);
    return 0;
}

int video_next(video_src *s, video_frame *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    for (;;) {
        double wall = 0;
        int rc = next_decoded(s, &wall, err, errlen);
        if (rc <= 0) return rc;
        double pts = frame_pts(s, s->cur);
        int due = !s->have_last || pts >= s->last_pts + s->o.every || pts < s->last_pts - 1.0;
        double score = 0, mafd = 0;
        if (due || s->o.scene > 0) {
            if (make_grey(s)) {
                snprintf(err, errlen, "'%s': cannot scale this frame format", s->uri);
                return -1;
            }
            score = scene_score(s, &mafd);
        }
        if (!due && !(s->o.scene > 0 && score >= s->o.scene)) {
            s->prev_mafd = mafd;
            continue;
        }
        if (to_rgb(s, err, errlen)) return -1;
        memcpy(s->grey[0], s->grey[1], sizeof s->grey[0]);
        s->have_prev = 1;
        s->prev_mafd = 0;
        s->have_last = 1;
        s->last_pts = pts;
        s->returned++;
        *f = (video_frame){s->rgb, s->rgb_w, s->rgb_h, s->rgb_stride, pts, wall, score};
        return 1;
    }
}

double video_duration(const video_src *s)
{
    if (!s || !s->fmt) return -1;
    AVStream *st = s->fmt->streams[s->vstream];
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) return (double)st->duration * s->tb;
    if (s->fmt->duration != AV_NOPTS_VALUE && s->fmt->duration > 0)
        return (double)s->fmt->duration / AV_TIME_BASE;
    return -1;
}

int video_is_live(const video_src *s)
{
    return s ? s->live : 0;
}

long video_dropped(const video_src *s)
{
    if (!s) return 0;
    video_src *m = (video_src *)s;
    pthread_mutex_lock(&m->mu);
    long live = m->dropped_live;
    pthread_mutex_unlock(&m->mu);
    return s->n_seen - s->returned + live;
}

void video_close(video_src *s)
{
    if (!s) return;
    if (s->thread_on) {
        __atomic_store_n(&s->stop, 1, __ATOMIC_RELAXED);
        pthread_join(s->thread, NULL);
    }
    av_packet_free(&s->pkt);
    av_frame_free(&s->frame);
    av_frame_free(&s->cur);
    av_frame_free(&s->slot);
    avcodec_free_context(&s->dec);
    avformat_close_input(&s->fmt);
    sws_freeContext(s->sws);
    sws_freeContext(s->sws_grey);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s->rgb);
    free(s->uri);
    free(s);
}
