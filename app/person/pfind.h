/*
 * pfind.h - the people of one still image for the index (`clipdex index
 * --detector person`): the detector's person boxes, each crop padded to a
 * square and embedded by the image tower, exactly as the person mode of
 * `watch` crops a track. Shared by photos (cmd_index.c) and video samples
 * (video/vindex.c); the database side is person/pstore.h.
 */
#ifndef CLIPDEX_APP_PERSON_PFIND_H
#define CLIPDEX_APP_PERSON_PFIND_H

#include <stddef.h>
#include <stdint.h>

#include "clipdex.h"

#define PFIND_MAX_DEFAULT 16    /* people kept per image, best first */
#define PFIND_MAX 128
#define PFIND_MIN_SIDE 16       /* smaller boxes (either side, pixels) are ignored */

typedef struct pfind {
    clipdex_detector *det;      /* borrowed; one per thread */
    const clipdex_model *model; /* borrowed */
    float min_score;            /* detector score (default 0.35) */
    int max_persons;            /* 1..PFIND_MAX (default PFIND_MAX_DEFAULT) */
    uint8_t keep[256];          /* the person class */
    size_t dim;                 /* the model's embed_dim */
} pfind;

/* One person found: the box in the image's pixels and the detector score. */
typedef struct pfind_person {
    float x0, y0, x1, y1, score;
} pfind_person;

/* The people of one image and their crops' embeddings ([n, dim]). */
typedef struct pfind_result {
    pfind_person *p;
    float *emb;
    size_t n;
    uint32_t width, height;     /* the image the boxes are in */
} pfind_result;

/* Sets up a finder; 0, or -1 when the detector has no "person" class. */
int pfind_init(pfind *f, clipdex_detector *det, const clipdex_model *model, float min_score,
               int max_persons);

/* Finds the people of img and embeds their square-padded crops. Returns 0
 * (r filled, pfind_result_free), or a clipdex status (message in ctx). */
int pfind_run(const pfind *f, clipdex_ctx *ctx, const clipdex_image *img, pfind_result *r);
void pfind_result_free(pfind_result *r);

/* The identity of a detector and the settings that decide its boxes, as the
 * database records it (meta `detector`): "sha256:<hex of the folder's
 * .json and .bin files> min_score=S min_side=N max=K". 0, or -1 with the
 * reason in err. */
int pfind_identity(const char *path, const pfind *f, char *out, size_t cap, char *err, size_t errlen);

#endif
