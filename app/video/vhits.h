/*
 * vhits.h - search results over photos and video samples: the rows a scan
 * found (files.id for a photo, -frames.id for a video sample; see
 * docs/schema.md) become ranked hits, where adjacent samples of one video
 * are merged into one hit with a time range (docs/search.md).
 */
#ifndef CLIPDEX_APP_VIDEO_VHITS_H
#define CLIPDEX_APP_VIDEO_VHITS_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define VHITS_MERGE_DEFAULT 0.02

typedef struct vhit_row {
    int64_t id;  /* files.id (> 0) or -frames.id (< 0) */
    float score;
} vhit_row;

typedef struct vhit {
    int64_t file_id;     /* files.id of the photo or the video */
    char *path;          /* NUL-terminated (raw bytes) */
    size_t len;
    float score;         /* the best score of the hit */
    int is_video;
    double start, end;   /* video: time of the first and last merged sample, seconds */
    double best_t;       /* video: time of the best sample */
    int64_t best_frame;  /* video: frames.id of the best sample */
    size_t n_samples;    /* video: samples merged */
    int is_person;       /* a person in the photo or sample (`search --persons`) */
    float box[4];        /* person: x0, y0, x1, y1 in the image's pixels */
    float det_score;     /* person: the detector's score */
    uint32_t width, height; /* person: the image the box is in */
} vhit;

/* How many rows to scan for k hits: merged samples use up rows, so
 * 8 k + 64 (at most `max`, at least k). */
size_t vhits_rows(size_t k, size_t max);

/* Turns `rows` (best first) into at most k hits, best first. A sample joins
 * the hit of an adjacent sample of the same video (the previous or next in
 * the video's order) when it is among the rows and scores no more than
 * `merge` below that hit's best. Rows whose file or sample is gone are
 * skipped. Returns the number of hits (*out malloc'ed, vhits_free), or -1
 * (reported). */
long vhits_build(store *s, const vhit_row *rows, size_t n, size_t k, double merge, vhit **out);
void vhits_free(vhit *h, size_t n);

struct json_out;
/* Writes a video hit's range as JSON members ("start", "end", "best_time",
 * "samples"); nothing for a photo. */
void vhits_json_range(struct json_out *j, const vhit *h);

/* The JPEG thumbnail of a sample (malloc'ed), NULL when there is none. */
uint8_t *vhits_thumb(store *s, int64_t frame_id, size_t *len);

#endif
