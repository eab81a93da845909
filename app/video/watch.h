/*
 * watch.h - live matching of video inputs against text prompts (`clipdex
 * watch`): one decoder thread per input samples frames by presentation time
 * (video/decode.c; a live source drops frames rather than fall behind, and
 * is reopened with back-off when it breaks), the caller's thread batches the
 * frames of all inputs through the image tower, scores every frame against
 * every prompt, and turns the scores into events with hysteresis:
 *   - a prompt *matches* a frame when its score reaches its threshold and no
 *     negative prompt scores higher (a winning negative suppresses it);
 *   - a match *starts* when a prompt has matched for `dwell` seconds of the
 *     stream's time (the event carries the time of its first matching
 *     frame) and *ends* once it has not matched for `hold` seconds (the
 *     event carries the time of the first frame that did not match);
 *   - the *focus* (the most relevant input: the highest matching score of
 *     its latest frame) moves to another input only after that input has
 *     led for `focus_dwell` seconds.
 * Scores: "cosine" (the raw cosine) or "softmax" (over all prompts,
 * negatives included, at the model's logit scale). In person mode
 * (opts.detector) the frame is not embedded whole: its people are detected,
 * tracked and their crops embedded (video/wperson.h); each crop is a TRACK
 * event, and a frame's score for a prompt is the best of its tracks' (0 with
 * nobody scored). Nothing here prints: the caller gets events through a
 * callback.
 */
#ifndef CLIPDEX_APP_VIDEO_WATCH_H
#define CLIPDEX_APP_VIDEO_WATCH_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"

enum watch_score { WATCH_COSINE = 0, WATCH_SOFTMAX = 1 };

typedef struct watch_prompt {
    const char *text;  /* shown in events */
    const float *emb;  /* [dim], L2-normalized */
    int negative;      /* 1: suppresses the positives it beats, never matches */
    double threshold;  /* NAN: the global one */
} watch_prompt;

typedef struct watch_opts {
    double every;        /* seconds between samples by pts; 0: every frame */
    int score;           /* enum watch_score */
    double threshold;    /* global threshold */
    double dwell, hold;  /* seconds a match must hold to start / miss to end */
    double focus_dwell;  /* seconds an input must lead to take the focus */
    int batch;           /* frames per encoder call (all inputs together) */
    double timeout_s;    /* network timeout of the decoder */
    double retry_max;    /* longest back-off between reconnects, seconds */
    int retries;         /* reconnects before a live input is given up (-1: forever) */
    int max_side;        /* refuse larger streams (0: decoder default) */
    int thumbs;          /* 1: FRAME events carry a JPEG thumbnail of the frame */
    int thumb_side;      /* its longest side in pixels (0: 160) */
    clipdex_detector *detector; /* person mode (video/wperson.h) when set: the frame's
                                   score is the best of its tracked people's crops */
    double crop_every;   /* person mode: seconds between crops of one track (default 1) */
    int max_crops;       /* person mode: crops per frame (default 4) */
    int embed_frames;    /* person mode: embed the whole frame too (FRAME's emb; for --db) */
} watch_opts;

void watch_opts_default(watch_opts *o);

enum watch_event_kind {
    WATCH_FRAME,     /* a scored frame (every sample) */
    WATCH_START,     /* a prompt started matching on an input */
    WATCH_END,       /* it stopped */
    WATCH_FOCUS,     /* the most relevant input changed */
    WATCH_RECONNECT, /* a live input broke and is being reopened (msg says why) */
    WATCH_ERROR,     /* an input failed for good (msg); the others go on */
    WATCH_EOS,       /* an input ended */
    WATCH_TRACK      /* person mode: a tracked person's crop was scored */
};

typedef struct watch_event {
    int kind;            /* enum watch_event_kind */
    int input;           /* index of the input */
    const char *uri;
    int prompt;          /* START/END/FOCUS: the prompt; -1 otherwise */
    const char *prompt_text; /* its text (valid during the callback) */
    double score, cosine;/* START/END/FOCUS: the prompt's score and cosine at the event */
    double pts;          /* stream time, seconds */
    double wall;         /* CLOCK_REALTIME seconds of the frame (live inputs), else 0 */
    size_t n_prompts;    /* FRAME: the prompts' scores and cosines */
    const double *scores, *cosines;
    const float *emb;    /* FRAME: the frame's embedding [dim], L2-normalized */
    const uint8_t *thumb;/* FRAME with opts.thumbs: a JPEG of the frame (NULL if it failed) */
    size_t thumb_len;
    const char *msg;     /* RECONNECT/ERROR */
    long track_id;       /* person mode: TRACK: its track; FRAME/START/END/FOCUS: the
                            best-scoring track of the prompt (0: none) */
    float box[4];        /* TRACK: the crop's box in frame pixels (x0, y0, x1, y1) */
    float det_score;     /* TRACK: the detector's score of the box */
    uint32_t width, height; /* TRACK: the frame's size */
    size_t n_tracks;     /* FRAME in person mode: people tracked on the input */
} watch_event;

typedef void (*watch_cb)(void *user, const watch_event *ev);

/* Per-input counters for a status line and the summary. */
typedef struct watch_stats {
    long frames;     /* scored */
    long dropped;    /* decoded but never scored (sampling or a slow encoder) */
    long reconnects;
    double fps;      /* scored frames per second over the last few seconds */
    int done;        /* 1 ended, -1 failed */
    double decode_s; /* decoder thread: demuxing, decoding and scaling (video_next) */
    double prep_s;   /* decoder thread: frames to engine images (+ thumbnails) */
} watch_stats;

typedef struct watch watch;

/* Starts the decoder threads of `uris` (n_inputs >= 1; borrowed, they must
 * outlive the watch). The prompts are copied; dim is their length. Returns 0 or
 * APP_FAIL/APP_USAGE (reported). */
int watch_start(clipdex_ctx *ctx, const clipdex_model *model, const char *const *uris, size_t n_inputs,
                const watch_prompt *prompts, size_t n_prompts, size_t dim, const watch_opts *o, watch **out);
/* Scores frames until every input has ended or *stop is set, calling cb for
 * every event; open matches are ended at the last time of their input.
 * Returns 0, or APP_FAIL when every input failed (reported). */
int watch_run(watch *w, watch_cb cb, void *user, volatile sig_atomic_t *stop);
/* Replaces the prompts (copied) and, unless NAN, the global threshold,
 * from any thread: the caller's thread switches before its next batch,
 * ending the old prompts' open matches. 0, or -1 out of memory. */
int watch_set_prompts(watch *w, const watch_prompt *prompts, size_t n_prompts, double threshold);
/* Counters of input i (0 <= i < n_inputs). */
void watch_get_stats(const watch *w, size_t i, watch_stats *out);
/* Seconds the caller's thread spent in the image tower and in scoring, and
 * the frames of its latest image-tower call (NULL: not wanted). Call it from
 * the caller's thread (the event callback, or after watch_run). */
void watch_get_times(const watch *w, double *embed_s, double *score_s, size_t *last_batch);
/* Person mode: seconds in the detector (with the tracker and the crops). */
double watch_get_detect_s(const watch *w);
/* Stops the threads and frees everything (NULL ok). */
void watch_free(watch *w);

#endif
