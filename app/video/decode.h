/*
 * decode.h - video input for `clipdex index` and `clipdex watch`: opens a
 * file, a network stream (rtsp, rtmp, http(s), HLS, udp), a V4L2 camera
 * (/dev/video*) or "-" (a stream on stdin) with FFmpeg's libraries, and hands
 * out RGB24 frames sampled by presentation time. "rtsp-listen://HOST:PORT/PATH"
 * makes clipdex the RTSP server that an encoder or camera pushes to (RTSP
 * ANNOUNCE/RECORD, e.g. `ffmpeg ... -f rtsp rtsp://HOST:PORT/PATH`). Frames go to the engine as
 * pixels (clipdex_image_from_pixels); the engine never sees FFmpeg.
 *
 * Sampling: a frame is returned when its pts >= the last returned pts +
 * `every` (or, with `scene` > 0, when its scene-change score reaches
 * `scene`). Files are decoded in the caller's thread; live sources are read
 * by a thread of their own that decodes continuously and keeps only the
 * newest frame, so a slow caller drops frames instead of falling behind.
 * Every blocking FFmpeg call is bounded by `timeout_s` (interrupt callback),
 * so a dead network never hangs. A source is used by one thread at a time.
 */
#ifndef CLIPDEX_APP_VIDEO_DECODE_H
#define CLIPDEX_APP_VIDEO_DECODE_H

#include <stddef.h>
#include <stdint.h>

#ifndef VIDEO_MAX_SIDE
#define VIDEO_MAX_SIDE 16384
#endif
#ifndef VIDEO_DEFAULT_TIMEOUT
#define VIDEO_DEFAULT_TIMEOUT 10.0
#endif

typedef struct video_src video_src;

typedef struct video_opts {
    double every;     /* seconds between samples by pts; 0 = every decoded frame */
    int live;         /* -1 auto (rtsp/rtmp/http(s)/udp/v4l2 /dev/video*, "-" stdin => live), 0 file, 1 live */
    int max_side;     /* refuse streams wider or taller than this (0 = 16384) */
    int out_w, out_h; /* 0,0 = native size; else scaled down to fit inside, aspect kept (never enlarged) */
    double timeout_s; /* network open/read timeout (0 = 10) */
    double scene;     /* > 0: also return a frame whose scene score >= this (0 = off) */
} video_opts;

typedef struct video_frame {
    const uint8_t *rgb; /* h rows of 3*w bytes RGB24, `stride` bytes apart; valid until the next video_next/video_close */
    int w, h, stride;
    double pts;   /* the stream's presentation time, seconds (start_time subtracted, so a file starts near 0) */
    double wall;  /* CLOCK_REALTIME seconds when the frame was decoded */
    double scene; /* 0..1 scene-change score against the previous returned frame (0 for the first) */
} video_frame;

void video_opts_default(video_opts *o);
/* 0 ok, -1 error (message in err: "cannot open 'URI': ..."). */
int video_open(const char *uri, const video_opts *o, video_src **out, char *err, size_t errlen);
/* 1 frame, 0 end of stream, -1 error (message in err). */
int video_next(video_src *s, video_frame *f, char *err, size_t errlen);
double video_duration(const video_src *s); /* seconds, -1 when unknown */
int video_is_live(const video_src *s);
/* Decoded frames that were never returned (skipped by sampling or dropped
 * on a live source because the caller was slower than the stream). */
long video_dropped(const video_src *s);
void video_close(video_src *s); /* NULL ok */
/* By extension: mp4 m4v mkv webm mov avi mpg mpeg ts wmv flv 3gp. */
int video_path_is_video(const char *path);
/* The URI names a live source (the rule of video_opts.live = -1). */
int video_uri_is_live(const char *uri);

#endif
