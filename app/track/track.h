/*
 * track.h - a multi-object tracker for detector boxes (SORT: Bewley et al.
 * 2016): each track is a constant-velocity Kalman filter over the box centre,
 * area and aspect ratio; each frame the tracks are predicted, matched to the
 * frame's detections by IoU with an optimal assignment (Hungarian method),
 * updated, born from unmatched detections and removed after `max_age` frames
 * without a match. Pure arithmetic: no I/O, no threads, deterministic.
 */
#ifndef CLIPDEX_APP_TRACK_H
#define CLIPDEX_APP_TRACK_H

#include <stddef.h>

/* A box in pixels: left, top, right, bottom (x0 < x1, y0 < y1). */
typedef struct track_box {
    float x0, y0, x1, y1;
} track_box;

typedef struct track_params {
    int max_age;     /* frames a track survives without a match (default 5) */
    int min_hits;    /* matched frames before a track is reported (default 3) */
    float iou_min;   /* a match needs at least this IoU with the prediction (default 0.3) */
} track_params;

/* One track as reported after an update. */
typedef struct track_out {
    long id;         /* 1, 2, ... in order of birth; never reused */
    track_box box;   /* the filter's box after this frame's update (or its prediction if unmatched) */
    int det;         /* index of the detection matched this frame, -1 if none */
    int hits;        /* frames matched so far */
    int misses;      /* frames since the last match (0 when matched this frame) */
} track_out;

typedef struct tracker tracker;

track_params track_params_default(void);
/* NULL when out of memory. `p` may be NULL (defaults). */
tracker *tracker_new(const track_params *p);
void tracker_free(tracker *t); /* NULL ok */

/* Advances one frame with `n` detections (boxes that are empty or not
 * finite are ignored). Reports the confirmed tracks that are alive (misses
 * <= max_age), in birth order: a track is confirmed once it has been matched
 * in min_hits frames, or when it was born during the first min_hits frames
 * (as SORT does), and stays confirmed through later misses. Writes at most
 * `cap` of them into `out` (may be NULL with cap 0) and returns how many
 * there are in all (more than `cap` when it was too small), or -1 when out
 * of memory. A caller that wants only this frame's matches keeps det >= 0. */
long tracker_update(tracker *t, const track_box *dets, size_t n, track_out *out, size_t cap);

/* Intersection over union of two boxes (0 when either is empty). */
float track_iou(const track_box *a, const track_box *b);

/* Optimal assignment: rows r < nr to columns c < nc minimising the sum of
 * cost[r * nc + c] (Hungarian method, O(n^3), n = max(nr, nc)). Writes
 * col_of_row[r] (-1 for a row left out when nr > nc). Returns 0, -1 when out
 * of memory. */
int track_assign(const double *cost, size_t nr, size_t nc, int *col_of_row);

#endif
