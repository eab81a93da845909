/*
 * wperson.c - the person mode of `clipdex watch` (see wperson.h): detector,
 * one SORT tracker per input, and the choice of which tracks' crops go to
 * the image tower on each frame. Track state lives in a small array per
 * input, keyed by track id; a track the tracker no longer reports is
 * dropped with its scores.
 */
#include "video/wperson.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DETS 128
#define MAX_TRACKS 256

typedef struct tstate {
    long id;
    track_box box;  /* the filter's box */
    track_box det;  /* this frame's matched detection (when matched) */
    float det_score; /* its score */
    int matched;
    int scored;
    double scored_pts;
    double *cos, *score;
    size_t n_p;     /* prompts of cos and score */
} tstate;

typedef struct pin {
    tracker *t;
    tstate *s;
    size_t n, cap;
    wperson_track *view;
} pin;

struct wperson {
    clipdex_detector *det;
    wperson_opts o;
    pin *in;
    size_t n_in;
    uint8_t keep[256];
    clipdex_detection dets[MAX_DETS];
    track_box boxes[MAX_DETS];
    float scores[MAX_DETS]; /* the detector's score of each box */
    track_out outs[MAX_TRACKS];
};

void wperson_opts_default(wperson_opts *o)
{
    o->every_s = 1.0;
    o->max_crops = 4;
    o->min_score = 0.35f;
    o->min_side = 16;
}

float wperson_default_min_score(void)
{
    wperson_opts o;
    wperson_opts_default(&o);
    return o.min_score;
}

wperson *wperson_new(clipdex_detector *det, size_t n_inputs, const wperson_opts *o)
{
    wperson *p = calloc(1, sizeof *p);
    if (!p || !(p->in = calloc(n_inputs ? n_inputs : 1, sizeof *p->in))) {
        free(p);
        return NULL;
    }
    p->det = det;
    p->n_in = n_inputs;
    if (o) p->o = *o;
    else wperson_opts_default(&p->o);
    int person = clipdex_detector_class_id(det, "person");
    if (person >= 0 && person < 256) p->keep[person] = 1;
    for (size_t i = 0; i < n_inputs; i++)
        if (!(p->in[i].t = tracker_new(NULL))) {
            wperson_free(p);
            return NULL;
        }
    return p;
}

static void tstate_clear(tstate *s)
{
    free(s->cos);
    s->cos = s->score = NULL;
    s->scored = 0;
}

void wperson_free(wperson *p)
{
    if (!p) return;
    for (size_t i = 0; i < p->n_in; i++) {
        for (size_t k = 0; k < p->in[i].n; k++) tstate_clear(&p->in[i].s[k]);
        free(p->in[i].s);
        free(p->in[i].view);
        tracker_free(p->in[i].t);
    }
    free(p->in);
    free(p);
}

static tstate *find(pin *in, long id)
{
    for (size_t k = 0; k < in->n; k++)
        if (in->s[k].id == id) return &in->s[k];
    return NULL;
}

/* Brings input `in`'s states in line with the tracker's report. */
static int sync_tracks(pin *in, const track_out *outs, size_t n, const track_box *boxes, const float *scores)
{
    if (n > in->cap) {
        tstate *s = realloc(in->s, n * sizeof *s);
        wperson_track *v = realloc(in->view, n * sizeof *v);
        if (s) in->s = s;
        if (v) in->view = v;
        if (!s || !v) return -1;
        in->cap = n;
    }
    /* drop the states of tracks no longer reported */
    size_t kept = 0;
    for (size_t k = 0; k < in->n; k++) {
        int alive = 0;
        for (size_t j = 0; j < n && !alive; j++) alive = outs[j].id == in->s[k].id;
        if (alive) in->s[kept++] = in->s[k];
        else tstate_clear(&in->s[k]);
    }
    in->n = kept;
    for (size_t j = 0; j < n; j++) {
        tstate *s = find(in, outs[j].id);
        if (!s) {
            s = &in->s[in->n++];
            memset(s, 0, sizeof *s);
            s->id = outs[j].id;
        }
        s->box = outs[j].box;
        s->matched = outs[j].det >= 0;
        if (s->matched) s->det = boxes[outs[j].det], s->det_score = scores[outs[j].det];
    }
    return 0;
}

/* Whether track a should be cropped before track b. */
static int before(const tstate *a, const tstate *b)
{
    if (a->scored != b->scored) return !a->scored;
    return a->scored_pts < b->scored_pts;
}

int wperson_frame(wperson *p, clipdex_ctx *ctx, size_t input, const clipdex_image *img, double pts,
                  wperson_crop *crops, size_t cap)
{
    pin *in = &p->in[input];
    clipdex_detect_params dp = clipdex_detect_params_default();
    dp.min_score = p->o.min_score;
    dp.classes = p->keep;
    dp.max_detections = MAX_DETS;
    size_t nd = 0, nb = 0;
    if (clipdex_detect(ctx, p->det, img, &dp, p->dets, MAX_DETS, &nd)) return -1;
    for (size_t k = 0; k < nd; k++) {
        const clipdex_detection *d = &p->dets[k];
        if (d->x1 - d->x0 < p->o.min_side || d->y1 - d->y0 < p->o.min_side) continue;
        p->scores[nb] = d->score;
        p->boxes[nb++] = (track_box){d->x0, d->y0, d->x1, d->y1};
    }
    long nt = tracker_update(in->t, p->boxes, nb, p->outs, MAX_TRACKS);
    if (nt < 0 || sync_tracks(in, p->outs, nt > MAX_TRACKS ? MAX_TRACKS : (size_t)nt, p->boxes, p->scores)) return -1;
    /* the tracks due for a crop, best first (selection by `before`) */
    size_t max = cap < (size_t)p->o.max_crops ? cap : (size_t)p->o.max_crops, nc = 0;
    char *taken = calloc(in->n ? in->n : 1, 1);
    if (!taken) return -1;
    while (nc < max) {
        long best = -1;
        for (size_t k = 0; k < in->n; k++) {
            const tstate *s = &in->s[k];
            if (taken[k] || !s->matched || (s->scored && pts - s->scored_pts < p->o.every_s)) continue;
            if (best < 0 || before(s, &in->s[best])) best = (long)k;
        }
        if (best < 0) break;
        taken[best] = 1;
        const tstate *s = &in->s[best];
        wperson_crop *c = &crops[nc];
        c->track_id = s->id;
        c->box = s->det;
        c->score = s->det_score;
        if (clipdex_image_crop_box(ctx, img, s->det.x0, s->det.y0, s->det.x1, s->det.y1, 1, &c->img)) continue;
        nc++;
    }
    free(taken);
    return (int)nc;
}

int wperson_scored(wperson *p, size_t input, long id, double pts, const double *cos, const double *score, size_t n)
{
    pin *in = &p->in[input];
    tstate *s = find(in, id);
    if (!s) return 0;
    if (!s->cos || s->n_p != n) {
        free(s->cos);
        if (!(s->cos = malloc(2 * (n ? n : 1) * sizeof *s->cos))) return -1;
        s->score = s->cos + n;
        s->n_p = n;
    }
    memcpy(s->cos, cos, n * sizeof *cos);
    memcpy(s->score, score, n * sizeof *score);
    s->scored = 1;
    s->scored_pts = pts;
    return 0;
}

const wperson_track *wperson_tracks(const wperson *p, size_t input, size_t *n)
{
    const pin *in = &p->in[input];
    for (size_t k = 0; k < in->n; k++) {
        const tstate *s = &in->s[k];
        in->view[k] = (wperson_track){s->id, s->box, s->scored, s->scored_pts, s->cos, s->score};
    }
    *n = in->n;
    return in->view;
}

void wperson_reset_scores(wperson *p)
{
    for (size_t i = 0; i < p->n_in; i++)
        for (size_t k = 0; k < p->in[i].n; k++) tstate_clear(&p->in[i].s[k]);
}
