/*
 * wperson.h - the person mode of `clipdex watch`: on each scored frame of
 * an input, the detector finds the people, a tracker per input follows
 * them (track/track.h), and a track's crop (padded to a square) is sent to
 * the image tower when the track is confirmed and then every `every_s`
 * seconds of stream time, at most `max_crops` per frame (never-embedded
 * tracks first, then the longest-waiting). A track keeps the scores of its
 * latest crop; a frame's score for a prompt is the best over the input's
 * live tracks, so the whole-frame rules (thresholds, negatives, dwell,
 * hold, focus) apply to "some person on this input". No I/O, no threads:
 * called from the watch's scoring thread only.
 */
#ifndef CLIPDEX_APP_VIDEO_WPERSON_H
#define CLIPDEX_APP_VIDEO_WPERSON_H

#include <stddef.h>

#include "clipdex.h"
#include "track/track.h"

typedef struct wperson_opts {
    double every_s;   /* seconds of stream time between crops of one track (default 1) */
    int max_crops;    /* crops per frame (default 4) */
    float min_score;  /* detector score (default 0.35) */
    int min_side;     /* boxes smaller than this many pixels on either side are ignored (default 16) */
} wperson_opts;

void wperson_opts_default(wperson_opts *o);
/* The detector score a box needs (wperson_opts_default's min_score). */
float wperson_default_min_score(void);

typedef struct wperson wperson;

/* The crop of a track to embed (its image is owned by the caller after
 * wperson_frame, to be freed with clipdex_image_free). */
typedef struct wperson_crop {
    clipdex_image *img;
    long track_id;
    track_box box;
    float score;      /* the detector's score of the box */
} wperson_crop;

/* One track as it stands after a frame. */
typedef struct wperson_track {
    long id;
    track_box box;
    int scored;           /* it has scores (a crop was embedded) */
    double scored_pts;    /* the time of that crop */
    const double *cos, *score; /* [n_prompts], valid until the next call */
} wperson_track;

/* det is borrowed; NULL when out of memory. */
wperson *wperson_new(clipdex_detector *det, size_t n_inputs, const wperson_opts *o);
void wperson_free(wperson *p);
/* Detects and tracks on input i's frame at pts; writes up to `cap` crops to
 * embed. Returns how many, or -1 (message in ctx) when detection failed. */
int wperson_frame(wperson *p, clipdex_ctx *ctx, size_t input, const clipdex_image *img, double pts,
                  wperson_crop *crops, size_t cap);
/* Stores the scores of track `id`'s crop of the latest frame (n prompts);
 * 0 or -1 out of memory. */
int wperson_scored(wperson *p, size_t input, long id, double pts, const double *cos, const double *score, size_t n);
/* The tracks of input i alive after its latest frame (borrowed). */
const wperson_track *wperson_tracks(const wperson *p, size_t input, size_t *n);
/* Drops every track's scores (the prompts changed). */
void wperson_reset_scores(wperson *p);

#endif
